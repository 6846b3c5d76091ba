"""Hostile and careless input: every picture is turned faithfully or refused with
faceup's own error; a batch never stops at a bad file; nothing is written wrong.
The CLI runs in a subprocess, the HTTP checks against a real server process."""

from __future__ import annotations

import io
import json
import os
import select
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import faceup_cli, jpeg_bytes, mean_abs_diff, turn
from PIL import Image
from conftest import start_server

from faceup import imageio, pipeline
from faceup.errors import DecompressionBombError, FaceupError, TruncatedPictureError, UnfaithfulWriteError


def saved(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def portrait(astronaut) -> Image.Image:
    """Non-square (320x224), so a turn that keeps the old size is caught."""
    return astronaut.resize((320, 320)).crop((0, 0, 320, 224))


def animation(frames: int, side: int) -> bytes:
    ims = [Image.new("P", (side, side), i % 200) for i in range(frames)]
    return saved(ims[0], "GIF", save_all=True, append_images=ims[1:], duration=40)


# ---------------------------------------------------------------- frames, pages, budgets


def test_an_animation_above_the_pixel_budget_is_refused_before_its_frames_are_decoded():
    gif = animation(60, 2000)  # 235 KB, 240 MP in all
    assert len(gif) < 300_000
    with pytest.raises(DecompressionBombError, match="60 frames.*`max_pixels`"):
        imageio.read(gif, keep_frames=True)
    # predicting reads the first frame only, which is within the budget
    assert pipeline.predict(gif).error is None


def test_a_later_page_above_the_limit_is_refused(portrait):
    big = Image.new("RGB", (1500, 1500), "grey")
    tif = saved(portrait, "TIFF", save_all=True, append_images=[big])
    with pytest.raises(DecompressionBombError, match="2 frames or pages"):
        imageio.read(tif, keep_frames=True, max_pixels=1_000_000)


@pytest.mark.parametrize("compression", [None, "tiff_adobe_deflate", "tiff_lzw"])
def test_a_non_square_tiff_is_written_at_its_turned_size(portrait, compression):
    kw = {"compression": compression} if compression else {}
    tif = saved(turn(portrait, 90), "TIFF", **kw)
    fixed = pipeline.fix(tif)
    assert fixed.prediction.turned and fixed.prediction.rotation == 90
    out = Image.open(io.BytesIO(fixed.data))
    out.load()
    assert out.size == portrait.size
    assert mean_abs_diff(out, portrait) < 1.0


def test_every_page_of_a_multi_page_tiff_is_turned(portrait):
    pages = [turn(portrait, 90), turn(portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 90), turn(portrait, 90)]
    tif = saved(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    fixed = pipeline.fix(tif)
    assert fixed.prediction.turned
    out = Image.open(io.BytesIO(fixed.data))
    assert out.n_frames == 3
    for i, want in enumerate([portrait, portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT), portrait]):
        out.seek(i)
        assert mean_abs_diff(out.convert("RGB"), want) < 1.0, f"page {i + 1}"


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_every_frame_of_an_animation_is_turned_with_its_timing(portrait, fmt):
    frames = []
    for i in range(3):  # frames that differ (a writer merges identical ones)
        f = portrait.copy()
        f.paste((255, 0, 0), (40 * i, 0, 40 * i + 40, 40))
        f = turn(f, 90)
        frames.append(f.convert("P", palette=Image.Palette.ADAPTIVE) if fmt == "GIF" else f)
    data = saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=[80, 120, 200], loop=0,
                 **({"lossless": True} if fmt == "WEBP" else {}))
    assert Image.open(io.BytesIO(data)).n_frames == 3
    for opts in (pipeline.Options(), pipeline.Options(fine=True, expand=True, fill="white")):
        fixed = pipeline.fix(data, opts)
        out = Image.open(io.BytesIO(fixed.data))
        assert out.format == fmt and out.n_frames == 3
        assert fixed.prediction.turned
        assert out.size == portrait.size if not opts.fine else out.width > out.height  # upright: landscape again
        timing = []
        for i in range(3):
            out.seek(i)
            out.load()
            timing.append(out.info.get("duration"))
        assert timing == [80, 120, 200]
        if not opts.fine:
            out.seek(2)
            want = portrait.copy()
            want.paste((255, 0, 0), (80, 0, 120, 40))
            assert mean_abs_diff(out.convert("RGB"), want) < 6.0


def test_an_animation_is_not_flattened_into_a_one_frame_format(portrait):
    frames = [turn(portrait, 90).convert("P"), turn(portrait, 90).convert("P").transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
    gif = saved(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(UnfaithfulWriteError, match="2 frames.*JPEG holds one"):
        pipeline.fix(gif, pipeline.Options(format="jpeg"))


def test_fix_fine_writes_a_tiff_that_decodes(portrait):
    tif = saved(portrait.rotate(-20, expand=True, fillcolor="white"), "TIFF", compression="tiff_adobe_deflate")
    fixed = pipeline.fix(tif, pipeline.Options(fine=True))
    out = Image.open(io.BytesIO(fixed.data))
    out.load()
    assert out.format == "TIFF" and out.info.get("compression") == "tiff_adobe_deflate"
    assert fixed.prediction.turned and abs(fixed.prediction.angle - 20) < 5  # levelled by about 20 degrees
    assert out.size != Image.open(io.BytesIO(tif)).size  # cropped to the upright rectangle


# ---------------------------------------------------------------- bit depths


def test_a_16_bit_grey_png_is_seen_and_written_at_16_bits(astronaut):
    grey16 = Image.fromarray(np.asarray(astronaut.convert("L"), dtype=np.uint16) * 257)
    assert grey16.mode == "I;16"
    png = saved(turn(grey16, 90), "PNG")
    pred = pipeline.predict(png)
    assert pred.rotation == 90 and pred.confident, pred
    fixed = pipeline.fix(png)
    out = Image.open(io.BytesIO(fixed.data))
    assert out.mode == "I;16" and out.size == grey16.size
    assert np.array_equal(np.asarray(out), np.asarray(grey16))


def test_a_16_bit_colour_png_is_refused_rather_than_narrowed(astronaut):
    rgb16 = np.asarray(astronaut.resize((64, 64)), dtype=np.uint16) * 257
    # a 16-bit RGB PNG, written by hand (Pillow writes colour at 8 bits only)
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    pic = imageio.read(png)
    assert pic.narrowed == "16-bit PNG"
    with pytest.raises(UnfaithfulWriteError, match="16-bit PNG"):
        imageio.encode(pic, turn=Image.Transpose.ROTATE_90)


# ---------------------------------------------------------------- damaged containers


@pytest.mark.parametrize("kw", [{"quality": 90}, {"quality": 100, "subsampling": 0}, {"progressive": True}])
def test_a_jpeg_whose_header_claims_more_than_it_holds_is_damaged(astronaut, kw):
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8))
    for img in (astronaut, Image.blend(astronaut, noisy, 0.3)):  # 512x512, up to a dense 500 KB
        data = bytearray(saved(img, "JPEG", **kw))
        sof = data.find(b"\xff\xc2" if kw.get("progressive") else b"\xff\xc0")
        data[sof + 5:sof + 9] = (9000).to_bytes(2, "big") * 2
        with pytest.raises(TruncatedPictureError, match="9000x9000"):
            imageio.read(bytes(data))
    # a real picture with no detail at all (the least data a block can take) is not refused
    flat = saved(Image.new("L", (3000, 3000), 128), "JPEG", quality=75)
    assert imageio.read(flat, max_pixels=10**8).size == (3000, 3000)


def test_a_damaged_heic_is_faceups_own_error(astronaut_small):
    heic = saved(astronaut_small, "HEIF", quality=80)
    broken = [heic[: len(heic) // 2], heic[:200] + b"\xff" * 64 + heic[264:], heic[:40] + os.urandom(400)]
    for data in broken:  # each refused with faceup's own error, never read as something else
        with pytest.raises(FaceupError):
            imageio.read(data, keep_frames=True)


def test_a_cli_batch_goes_past_damaged_files(tmp_path, portrait, astronaut_small):
    good = jpeg_bytes(turn(astronaut_small, 90))
    pages = saved(portrait, "TIFF", save_all=True, append_images=[portrait, portrait])
    files = {
        "a_good.jpg": good,
        "b_damaged_pages.tif": pages[: len(pages) * 2 // 3],
        "c_big_animation.gif": animation(60, 2000),
        "d_liar.jpg": bytes(bytearray(good).replace(b"\xff\xc0\x00\x11\x08\x01\x00\x01\x00",
                                                     b"\xff\xc0\x00\x11\x08\x23\x28\x23\x28")),
        "e_good.jpg": good,
    }
    src = tmp_path / "in"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    res = faceup_cli("fix", str(src), "-o", str(tmp_path / "out"), "--json")
    assert "Traceback" not in res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [Path(x["path"]).name for x in lines] == sorted(files)
    by = {Path(x["path"]).name: x for x in lines}
    assert by["a_good.jpg"]["error"] is None and by["e_good.jpg"]["error"] is None
    assert by["e_good.jpg"]["turned"]
    for bad in ("b_damaged_pages.tif", "c_big_animation.gif", "d_liar.jpg"):
        assert by[bad]["error"], bad
        assert not (tmp_path / "out" / bad).exists()
    assert res.returncode == 1
    for name, data in files.items():  # no input touched
        assert (src / name).read_bytes() == data


def test_max_pixels_above_pillows_own_limit_is_honoured():
    big = Image.new("L", (10000, 9500), 128)  # 95 MP: above Pillow's 89.5 MP warning limit
    png = saved(big, "PNG")
    del big
    pic = imageio.read(png, max_pixels=100_000_000)
    assert pic.size == (10000, 9500)
    with pytest.raises(DecompressionBombError, match="`max_pixels`"):
        imageio.read(png, max_pixels=50_000_000)
    big = Image.new("L", (14000, 14000), 128)  # 196 MP: above Pillow's hard 179 MP limit
    png = saved(big, "PNG")
    del big
    assert imageio.read(png, max_pixels=200_000_000).size == (14000, 14000)


def test_a_file_name_that_is_not_utf8_gives_strict_json(tmp_path, astronaut_small):
    name = os.fsencode(tmp_path) + b"/caf\xe9.jpg"
    with open(name, "wb") as f:
        f.write(jpeg_bytes(astronaut_small))
    res = faceup_cli("predict", "--json", str(tmp_path))
    assert res.returncode == 0, res.stderr
    line = res.stdout.strip()
    assert "\\ud" not in line  # no escaped lone surrogate
    obj = json.loads(line)
    obj["path"].encode("utf-8")  # strict: would raise on a lone surrogate
    assert obj["path"].endswith("caf\\xe9.jpg")


# ---------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def small_server():
    """A server with a 1 MiB upload limit and an API key."""
    proc, url = start_server({"FACEUP_MAX_UPLOAD_BYTES": str(1 << 20), "FACEUP_API_KEY": "k3y"})
    yield url
    proc.terminate()
    proc.wait(10)


def chunked_upload(url: str, headers: dict[str, str], total: int) -> tuple[int, int | None]:
    """Stream a multipart body with Transfer-Encoding: chunked over a raw socket,
    64 KiB at a time, until the server answers or `total` bytes are sent.
    Returns (bytes sent, HTTP status or None)."""
    host, port = url.removeprefix("http://").split(":")
    boundary = "b0undary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode()
    lines = ["POST /fix HTTP/1.1", f"Host: {host}", "Transfer-Encoding: chunked",
             f"Content-Type: multipart/form-data; boundary={boundary}", *(f"{k}: {v}" for k, v in headers.items())]
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent, status, piece = 0, None, b"\xff" * 65536
    deadline = time.time() + 60
    try:
        body = head
        while sent < total and time.time() < deadline:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(f"{len(body):x}\r\n".encode() + body + b"\r\n")
            sent += len(body)
            body = piece
    except OSError:
        pass  # the server closed the connection: it stopped reading
    try:
        sock.settimeout(10)
        reply = sock.recv(65536).decode("latin-1")
        status = int(reply.split(" ", 2)[1]) if reply.startswith("HTTP/") else None
    except OSError:
        pass
    sock.close()
    return sent, status


def test_a_chunked_upload_is_cut_off_at_the_limit(small_server):
    sent, status = chunked_upload(small_server, {"X-API-Key": "k3y"}, 200 << 20)
    assert status == 413
    assert sent < 16 << 20, f"{sent:,} bytes were taken before the refusal (limit 1 MiB)"


def test_a_chunked_upload_without_the_key_is_refused_before_its_body(small_server):
    sent, status = chunked_upload(small_server, {}, 200 << 20)
    assert status == 401
    assert sent < 16 << 20
    # and a wrong key of another length is refused the same way
    _, status = chunked_upload(small_server, {"X-API-Key": "k3y-and-more"}, 1 << 20)
    assert status == 401


def test_a_download_name_outside_latin1_is_given_in_rfc6266_form(small_server, astronaut_small):
    r = httpx.post(small_server + "/fix", headers={"X-API-Key": "k3y"}, timeout=60,
                   files={"file": ("照片 😀.jpg", jpeg_bytes(turn(astronaut_small, 90)), "image/jpeg")})
    assert r.status_code == 200, r.text
    cd = r.headers["content-disposition"]
    assert "filename*=UTF-8''%E7%85%A7%E7%89%87%20%F0%9F%98%80.upright.jpg" in cd
    cd.encode("latin-1")


def test_an_error_does_not_echo_a_huge_value(small_server, astronaut_small):
    r = httpx.post(small_server + "/fix", headers={"X-API-Key": "k3y"}, timeout=60,
                   data={"fine": "true", "expand": "true", "fill": "x" * 100_000},
                   files={"file": ("in.jpg", jpeg_bytes(astronaut_small), "image/jpeg")})
    assert r.status_code == 422
    assert len(r.content) < 1000 and "fill" in r.json()["error"]


def test_a_hostile_animation_upload_is_refused_and_the_server_goes_on(small_server, astronaut_small):
    r = httpx.post(small_server + "/fix", headers={"X-API-Key": "k3y"}, timeout=60,
                   files={"file": ("anim.gif", animation(60, 2000), "image/gif")})
    assert r.status_code == 413 and "frames" in r.json()["error"]
    r = httpx.post(small_server + "/fix", headers={"X-API-Key": "k3y"}, timeout=60,
                   files={"file": ("in.jpg", jpeg_bytes(turn(astronaut_small, 90)), "image/jpeg")})
    assert r.status_code == 200
