"""What no request can do to the server: hold its connections with slow headers
or a slow body, ask for more pixels or parts than one request may, send a field
twice, keep it working for a client that has gone, or keep it from stopping.
A real server process on 127.0.0.1, small limits set through its environment."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading
import time

import httpx
import pytest
from PIL import Image

from conftest import jpeg_bytes, turn
from conftest import start_server

LIMITS = {"FACEUP_HEADER_TIMEOUT": "2", "FACEUP_BODY_TIMEOUT": "3", "FACEUP_MAX_PARTS": "4",
          "FACEUP_MAX_REQUEST_PIXELS": "30000000"}


@pytest.fixture(scope="module")
def limited():
    proc, url = start_server(LIMITS)
    yield proc, url
    proc.terminate()
    proc.wait(20)


def lossless_webp(width: int, height: int) -> bytes:
    """A few KB that decode to width x height pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 130, 140)).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sends before it closes the connection, or None if it
    is still open after `seconds`."""
    sock.settimeout(seconds)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        return got


def test_a_client_that_sends_its_headers_slowly_is_cut_off(limited):
    _, url = limited
    socks = []
    for _ in range(8):  # eight connections that never finish their headers
        s = connect(url)
        s.sendall(b"POST /fix HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    t = time.monotonic()
    for s in socks:
        assert closed_within(s, 10) is not None, "a connection with unfinished headers was held open"
        s.close()
    assert time.monotonic() - t < 10
    assert httpx.get(url + "/health", timeout=5).status_code == 200


def test_a_body_that_does_not_arrive_in_time_gets_408(limited):
    _, url = limited
    s = connect(url)
    s.sendall(b"POST /fix HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 100000\r\n\r\n--b\r\n")
    answer = closed_within(s, 15)
    s.close()
    assert answer is not None, "a body that never came held the connection open"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_the_same_field_twice_is_refused(limited, astronaut_small):
    _, url = limited
    data = jpeg_bytes(astronaut_small)
    files = [("file", ("a.jpg", data, "image/jpeg")), ("file", ("b.jpg", data, "image/jpeg"))]
    r = httpx.post(url + "/fix", files=files, timeout=60)
    assert r.status_code == 422 and "more than once" in r.json()["error"]
    r = httpx.post(url + "/fix", files=[("file", ("a.jpg", data, "image/jpeg")), ("format", (None, "png")),
                                        ("format", (None, "webp"))], timeout=60)
    assert r.status_code == 422 and "format" in r.json()["error"]
    r = httpx.post(url + "/predict", files=files, timeout=60)  # several pictures: the one field that may repeat
    assert r.status_code == 200 and len(r.json()) == 2


def test_a_request_is_bounded_in_parts_and_in_pixels_not_only_each_picture(limited, astronaut_small):
    _, url = limited
    small = jpeg_bytes(astronaut_small)
    r = httpx.post(url + "/predict", files=[("file", (f"{i}.jpg", small, "image/jpeg")) for i in range(5)],
                   timeout=60)
    assert r.status_code == 413 and "limit of 4" in r.json()["error"]
    big = lossless_webp(4000, 4000)  # 16 MP each, in a few KB: within the picture budget, two above the request's
    assert len(big) < 20_000
    t = time.monotonic()
    r = httpx.post(url + "/predict", files=[("file", (f"{i}.webp", big, "image/webp")) for i in range(2)],
                   timeout=60)
    assert r.status_code == 413 and "for one request" in r.json()["error"]
    assert time.monotonic() - t < 5  # refused from the headers, before any decoding
    r = httpx.post(url + "/predict", files={"file": ("one.webp", big, "image/webp")}, timeout=60)
    assert r.status_code == 200 and r.json()["error"] is None


def test_every_model_is_loaded_before_the_first_request(limited):
    _, url = limited
    models = httpx.get(url + "/info", timeout=10).json()["models"]
    assert len(models) >= 5 and all(m["loaded"] for m in models), [m["name"] for m in models if not m["loaded"]]


def noisy_webp(side: int) -> bytes:
    """A lossless WebP of side x side pixels of repeated noise: small, slow to judge."""
    import numpy as np

    tile = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.tile(tile, (side // 64, side // 64, 1))).save(buf, "WEBP", lossless=True, method=0)
    return buf.getvalue()


def test_work_stops_when_the_client_goes(limited):
    proc, url = limited
    body = {"file": ("a.webp", noisy_webp(5376), "image/webp")}  # 29 MP in 36 KB
    before = cpu_seconds(proc.pid)
    assert httpx.post(url + "/predict", files=body, timeout=60).status_code == 200
    one = cpu_seconds(proc.pid) - before  # the CPU one such picture costs

    def post(results: list):
        try:
            httpx.post(url + "/predict", files=body, timeout=0.1)
            results.append("answered")
        except httpx.TimeoutException:
            results.append("gone")

    results: list = []
    before = cpu_seconds(proc.pid)
    threads = [threading.Thread(target=post, args=(results,)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(max(3.0, 6 * one))
    spent = cpu_seconds(proc.pid) - before
    answered = results.count("answered")
    # sixteen clients that go at once: the two inference threads finish what they had
    # started, the pictures still waiting are never judged (all sixteen: 16 x `one`)
    assert spent < (4 + answered) * one + 0.5, (
        f"{spent:.1f} s of CPU for 16 requests, {answered} answered (one picture: {one:.2f} s)")


def test_sigterm_stops_the_server_within_seconds_even_while_it_works():
    proc, url = start_server({"FACEUP_SHUTDOWN_TIMEOUT": "2", "FACEUP_MAX_PARTS": "64",
                              "FACEUP_MAX_REQUEST_PIXELS": "10000000000"})
    big = noisy_webp(5376)

    def post():  # one request of sixteen 29 MP pictures: well over ten seconds of work
        try:
            httpx.post(url + "/predict", files=[("file", (f"{i}.webp", big, "image/webp")) for i in range(16)],
                       timeout=60)
        except httpx.HTTPError:
            pass

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    t = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - t < 8
    for th in threads:
        th.join()


def test_nan_is_refused_as_a_confidence_everywhere(tmp_path, astronaut_small, limited):
    from conftest import faceup_cli

    _, url = limited
    pic = tmp_path / "a.jpg"
    pic.write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    for cmd in ("predict", "fix", "analyze"):
        res = faceup_cli(cmd, str(pic), "--min-confidence", "nan")
        assert res.returncode == 2 and "nan" in res.stderr and "Traceback" not in res.stderr, (cmd, res.stderr)
    r = httpx.post(url + "/fix", files={"file": ("a.jpg", pic.read_bytes(), "image/jpeg")},
                   data={"min_confidence": "nan"}, timeout=60)
    assert r.status_code == 422, r.text
    from faceup import pipeline
    from faceup.errors import BadOptionError

    with pytest.raises(BadOptionError):
        pipeline.Options(min_confidence=float("nan"))
    assert json.dumps(r.json())
