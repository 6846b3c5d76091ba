"""`faceup batch` on object storage: a real S3 server process (moto's server mode)
on 127.0.0.1, started here, reached over HTTP through the same code a user's
bucket takes (endpoint and credentials from the standard AWS variables). The
batch job runs in a subprocess on real Ray, as a user runs it: bucket to bucket,
killed and resumed; a bad object of every kind a row with an error; in place and
undone; tags; a folder to a bucket; the store going away mid-run; a cluster
started with `ray start` reading the bucket."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import faceup_cli, turn
from PIL import Image

pytestmark = pytest.mark.slow

pytest.importorskip("ray", reason="faceup batch needs the ray extra")
pq = pytest.importorskip("pyarrow.parquet")
boto3 = pytest.importorskip("boto3", reason="the S3 tests need the test extra (moto[server])")

BIN = Path(sys.executable).parent
SECRET = "faceup-test-secret-0123456789"
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A TCP relay in front of the S3 server, so a test can take the store away
    (connections refused) and bring it back, as a network outage does."""

    def __init__(self, target: int):
        self.target, self.port = target, free_port()
        self.server: socket.socket | None = None
        self.open: list[socket.socket] = []
        self.start()

    def start(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for s in self.open:  # connections kept alive end too
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b, server), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket, server: socket.socket) -> None:
        try:
            while server is self.server and (data := a.recv(65536)):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture(scope="module")
def s3():
    """The S3 server process and the environment a user would set for it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    proxy = Proxy(port)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}", "AWS_ACCESS_KEY_ID": "faceup-test",
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1", **RAY_ENV}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
    yield {"env": env, "client": client, "proxy": proxy}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proxy.stop()
    proc.terminate()
    proc.wait(timeout=30)
    subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, timeout=120)


_bucket_number = iter(range(1000))


@pytest.fixture()
def bucket(s3) -> str:
    name = f"photos-{next(_bucket_number)}"
    s3["client"].create_bucket(Bucket=name)
    return name


def pictures(astronaut_small, chelsea, coffee, n: int) -> dict[str, bytes]:
    """n small pictures turned every way, in three formats, keys with spaces and
    non-Latin letters among them."""
    out = {}
    for i in range(n):
        img = [astronaut_small, chelsea, coffee][i % 3].resize((96, 64) if i % 3 else (64, 64))
        fmt = ["JPEG", "PNG", "WEBP"][i % 3]
        buf = io.BytesIO()
        turn(img, (0, 90, 180, 270)[i % 4]).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        name = [f"p{i:03d}", f"holiday {i:03d}", f"фото-{i:03d}"][i % 3 if i < 6 else 0]
        out[f"box{i % 4}/{name}.{fmt.lower()}"] = buf.getvalue()
    return out


def upload(client, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


def bad_objects(client, bucket: str, prefix: str) -> set[str]:
    """Not a picture, zero bytes, and an object that cannot be read (archived: a
    GET is refused until it is restored)."""
    client.put_object(Bucket=bucket, Key=f"{prefix}/notes.jpg", Body=b"not a picture")
    client.put_object(Bucket=bucket, Key=f"{prefix}/empty.png", Body=b"")
    client.put_object(Bucket=bucket, Key=f"{prefix}/cold/archived.jpg", Body=b"x" * 100, StorageClass="GLACIER")
    return {f"s3://{bucket}/{prefix}/{k}" for k in ("notes.jpg", "empty.png", "cold/archived.jpg")}


def get(client, uri: str) -> bytes:
    bucket, key = uri[len("s3://"):].split("/", 1)
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def run_batch(*args: str) -> tuple[int, dict, str, str]:
    res = subprocess.run([str(BIN / "faceup"), "batch", *args, "--json"], capture_output=True, text=True,
                         timeout=600, env=os.environ.copy())
    lines = [x for x in res.stdout.splitlines() if x.startswith("{")]
    return res.returncode, json.loads(lines[-1]) if lines else {}, res.stderr, res.stdout


def table_rows(client, uri: str) -> list[dict]:
    return pq.read_table(io.BytesIO(get(client, uri))).to_pylist()


def test_bucket_to_bucket_killed_and_resumed_writes_each_object_once_like_fix(tmp_path, s3, bucket, astronaut_small,
                                                                              chelsea, coffee):
    client = s3["client"]
    files = pictures(astronaut_small, chelsea, coffee, 400)
    upload(client, bucket, "in", files)
    bad = bad_objects(client, bucket, "in")
    src, out = f"s3://{bucket}/in", f"s3://{bucket}/out"
    cmd = [str(BIN / "faceup"), "batch", src, "-o", out, "--batch-size", "16", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(keys(client, bucket, "out/faceup-results.parquet.d/parts/")) < 3:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its local Ray, at any moment
    proc.wait()
    parts = keys(client, bucket, "out/faceup-results.parquet.d/parts/")
    journaled = sum(len(pq.read_table(io.BytesIO(get(client, f"s3://{bucket}/{k}")))) for k in parts)
    assert 0 < journaled < 403

    code, summary, stderr, _ = run_batch(src, "-o", out, "--batch-size", "16")
    assert code == 1 and summary, stderr  # three bad objects
    assert summary["done_before"] > 0 and summary["done_before"] + summary["done_now"] == 403
    rows = table_rows(client, f"{out}/faceup-results.parquet")
    inputs = {f"{src}/{k}" for k in files} | bad
    assert sorted(r["path"] for r in rows) == sorted(inputs)  # every input once
    failed = {r["path"]: r["error"] for r in rows if r["error"]}
    assert set(failed) == bad, failed
    assert "cannot be read" in failed[f"{src}/cold/archived.jpg"]
    assert not [k for k in keys(client, bucket) if k.endswith(".faceup-staged")], "staged objects left behind"
    assert not [k for k in keys(client, bucket) if "lock" in k], "a lock object left behind"
    for key, data in files.items():  # inputs untouched
        assert get(client, f"{src}/{key}") == data

    # outputs readable and byte for byte what `faceup fix` writes from the same pictures
    local = tmp_path / "in"
    for key, data in files.items():
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(data)
    res = faceup_cli("fix", str(local), "-o", str(tmp_path / "ref"), "--json")
    fixed = {Path(j["path"]).relative_to(local).as_posix(): j for j in map(json.loads, res.stdout.splitlines())}
    for r in rows:
        if r["error"]:
            continue
        key = r["path"][len(src) + 1:]
        assert r["output"] == f"{out}/{key}" and r["action"] == "written"
        written = get(client, r["output"])
        Image.open(io.BytesIO(written)).load()
        assert hashlib.sha256(written).hexdigest() == r["output_sha256"]
        assert written == Path(fixed[key]["output"]).read_bytes(), key
        assert r["rotation"] == fixed[key]["rotation"]

    # nothing secret in the table or the output
    table_bytes = get(client, f"{out}/faceup-results.parquet")
    assert SECRET.encode() not in table_bytes and SECRET not in stderr


def test_in_place_on_a_bucket_keeps_originals_and_undo_restores_them(s3, bucket, astronaut_small, chelsea, coffee):
    client = s3["client"]
    files = pictures(astronaut_small, chelsea, coffee, 12)
    upload(client, bucket, "album", files)
    table = f"s3://{bucket}/runs/album.parquet"
    code, summary, stderr, _ = run_batch(f"s3://{bucket}/album", "--in-place", "--table", table)
    assert code == 0, stderr
    rows = table_rows(client, table)
    turned = {r["path"] for r in rows if r["turned"]}
    assert turned and summary["by_action"]["replaced"] == len(turned)
    for r in rows:
        now = get(client, r["path"])
        original = files[r["path"].split("/album/", 1)[1]]
        if r["path"] in turned:
            assert now != original and get(client, r["backup"]) == original
            assert r["backup"].startswith(f"s3://{bucket}/runs/album.parquet.d/originals/")
        else:
            assert now == original
    # run again: nothing is done twice (the replaced objects are known by their content)
    code, summary, _, _ = run_batch(f"s3://{bucket}/album", "--in-place", "--table", table)
    assert code == 0 and summary["done_now"] == 0 and summary["done_before"] == 12

    res = subprocess.run([str(BIN / "faceup"), "undo", table, "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert sorted(json.loads(res.stdout)["restored"]) == sorted(turned)
    for key, data in files.items():
        assert get(client, f"s3://{bucket}/album/{key}") == data


def test_tag_only_from_a_folder_to_a_bucket_and_from_a_bucket_to_a_folder(tmp_path, s3, bucket, astronaut_small,
                                                                          chelsea, coffee):
    client = s3["client"]
    files = pictures(astronaut_small, chelsea, coffee, 8)
    local = tmp_path / "in"
    for key, data in files.items():
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(data)
    code, summary, stderr, _ = run_batch(str(local), "-o", f"s3://{bucket}/tagged", "--tag-only")
    assert code == 0, stderr
    rows = table_rows(client, f"s3://{bucket}/tagged/faceup-results.parquet")
    assert len(rows) == 8
    for r in rows:
        key = Path(r["path"]).relative_to(local).as_posix()
        if r["action"] == "sidecar":  # the picture byte for byte, the turn in its XMP sidecar
            assert get(client, f"s3://{bucket}/tagged/{key}") == files[key]
            assert b"tiff:Orientation" in get(client, r["sidecar"])
        elif r["action"] == "tagged":  # the orientation tag set, same pixels
            tagged = Image.open(io.BytesIO(get(client, r["output"])))
            assert tagged.getexif().get(0x0112) in (3, 6, 8)
        else:
            assert r["action"] == "written" and get(client, r["output"]) == files[key]
    assert {r["action"] for r in rows} & {"sidecar", "tagged"}

    upload(client, bucket, "in", files)
    code, summary, stderr, _ = run_batch(f"s3://{bucket}/in", "-o", str(tmp_path / "out"))
    assert code == 0 and summary["done_now"] == 8, stderr
    rows = pq.read_table(tmp_path / "out" / "faceup-results.parquet").to_pylist()
    for r in rows:
        Image.open(r["output"]).load()
        assert r["path"].startswith(f"s3://{bucket}/in/")


def test_the_store_going_away_stops_the_run_with_a_message_and_a_rerun_resumes(s3, bucket, astronaut_small,
                                                                               chelsea, coffee):
    client = s3["client"]
    files = pictures(astronaut_small, chelsea, coffee, 120)
    upload(client, bucket, "in", files)
    src, out = f"s3://{bucket}/in", f"s3://{bucket}/out"
    cmd = [str(BIN / "faceup"), "batch", src, "-o", out, "--batch-size", "8"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(keys(client, bucket, "out/faceup-results.parquet.d/parts/")) < 2:
        assert proc.poll() is None, "the run ended before the store could go away"
        time.sleep(0.1)
    s3["proxy"].stop()
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        s3["proxy"].start()
    assert proc.returncode == 2, stderr
    assert "cannot be reached" in stderr and "run the same command again" in stderr
    assert SECRET not in stderr

    code, summary, stderr, _ = run_batch(src, "-o", out, "--batch-size", "8")
    assert code == 0, stderr
    assert summary["done_before"] > 0 and summary["done_before"] + summary["done_now"] == 120
    rows = table_rows(client, f"{out}/faceup-results.parquet")
    assert sorted(r["path"] for r in rows) == sorted(f"{src}/{k}" for k in files)
    assert all(r["action"] == "written" and not r["error"] for r in rows)
    assert not [k for k in keys(client, bucket) if k.endswith(".faceup-staged")]


def test_a_cluster_started_with_ray_start_reads_the_bucket(s3, bucket, astronaut_small, chelsea, coffee):
    client = s3["client"]
    files = pictures(astronaut_small, chelsea, coffee, 24)
    upload(client, bucket, "in", files)
    ray, port = str(BIN / "ray"), str(free_port())
    subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)
    try:  # the nodes get the AWS variables from their environment, as a real cluster's nodes do
        subprocess.run([ray, "start", "--head", "--num-cpus", "2", "--port", port, "--disable-usage-stats",
                        "--include-dashboard=false"], check=True, capture_output=True, timeout=180)
        code, summary, stderr, _ = run_batch(f"s3://{bucket}/in", "-o", f"s3://{bucket}/out",
                                             "--address", f"127.0.0.1:{port}", "--batch-size", "4")
        assert code == 0 and summary["done_now"] == 24, stderr
        rows = table_rows(client, f"s3://{bucket}/out/faceup-results.parquet")
        assert len(rows) == 24 and all(r["action"] == "written" for r in rows)
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


def test_an_s3_path_with_credentials_in_it_is_refused_without_echoing_them(s3, bucket):
    code, summary, stderr, stdout = run_batch(f"s3://AKIAX:{SECRET}@{bucket}/in", "-o", f"s3://{bucket}/out")
    assert code == 2 and "AWS variables" in stderr
    assert SECRET not in stderr and SECRET not in stdout


def test_a_whole_bucket_needs_an_output_and_a_missing_prefix_is_named(s3, bucket, astronaut_small, chelsea, coffee):
    upload(s3["client"], bucket, "in", pictures(astronaut_small, chelsea, coffee, 2))
    code, _, stderr, _ = run_batch(f"s3://{bucket}")
    assert code == 2 and "whole bucket" in stderr and "--output" in stderr
    code, _, stderr, _ = run_batch(f"s3://{bucket}/nothing-here", "-o", f"s3://{bucket}/out")
    assert code == 2 and f"s3://{bucket}/nothing-here does not exist" in stderr
