"""`faceup batch` on real Ray: a local instance started by the job itself, killed
(driver, then a worker) and resumed; a two-node cluster started here with
`ray start`; in place and undone; tags instead of pixels. The CLI runs in a
subprocess, as a user runs it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import faceup_cli, jpeg_bytes, turn
from PIL import Image

#: A slow file: left out of `make test-fast` (pytest -m "not slow").
pytestmark = pytest.mark.slow

pytest.importorskip("ray", reason="faceup batch needs the ray extra")
pq = pytest.importorskip("pyarrow.parquet")

#: A local test cluster: no token (loopback only), no usage report, no dashboard.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
BIN = Path(sys.executable).parent


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def ray_env():
    old = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture()
def archive(tmp_path, astronaut_small, chelsea, coffee) -> Path:
    """40 pictures in a tree, turned every way, in four formats, and two bad files."""
    root = tmp_path / "archive"
    for i in range(36):
        img = [astronaut_small, chelsea.resize((150, 100)), coffee.resize((160, 120))][i % 3]
        rot = (0, 90, 180, 270)[i % 4]
        folder = root / f"box{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        fmt = ["JPEG", "PNG", "WEBP", "JPEG"][i % 4]
        buf = io.BytesIO()
        turn(img, rot).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        (folder / f"p{i:02d}.{fmt.lower()}").write_bytes(buf.getvalue())
    (root / "box1" / "broken.jpg").write_bytes(jpeg_bytes(astronaut_small)[:700])
    (root / "notes.jpg").write_text("not a picture")
    return root


def run_batch(*args: str, env: dict | None = None) -> tuple[int, dict, str]:
    exe = BIN / "faceup"
    res = subprocess.run([str(exe), "batch", *args, "--json"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, **(env or {})})
    lines = [x for x in res.stdout.splitlines() if x.startswith("{")]
    return res.returncode, json.loads(lines[-1]) if lines else {}, res.stderr


def started(cmd: list[str], parts: Path, n: int, **kw) -> subprocess.Popen:
    """The batch command in the background, once its journal holds `n` parts."""
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, **kw)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(parts.glob("*.parquet"))) < n and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    return proc


def table_rows(table: Path) -> list[dict]:
    return pq.read_table(table).to_pylist()


def check_exactly_once(archive: Path, out: Path, before: dict[str, str]) -> list[dict]:
    rows = table_rows(out / "faceup-results.parquet")
    inputs = sorted(str(p) for p in archive.rglob("*") if p.is_file())
    assert sorted(r["path"] for r in rows) == inputs  # one row per input, none twice, none missing
    assert not list(out.rglob("*.faceup-staged")), "staged files left behind"
    for r in rows:
        src = Path(r["path"])
        assert sha(src) == before[str(src)], "an input was changed"
        if r["error"]:
            assert r["action"] == "failed" and r["output"] is None
            continue
        dst = Path(r["output"])
        assert r["action"] == "written" and dst.is_file()
        assert sha(dst) == r["output_sha256"]
        Image.open(dst).load()  # whole, decodable
    return rows


def test_a_local_run_killed_and_resumed_handles_every_input_once_like_fix(tmp_path, archive):
    before = {str(p): sha(p) for p in archive.rglob("*") if p.is_file()}
    out = tmp_path / "upright"
    cmd = [str(BIN / "faceup"), "batch", str(archive), "-o", str(out), "--batch-size", "2", "--json"]
    parts = out / "faceup-results.parquet.d" / "parts"
    proc = started(cmd, parts, 3, stdout=subprocess.DEVNULL, start_new_session=True)
    from faceup.batch.watchdog import _below, _table

    its_ray = _below(proc.pid, _table())
    os.kill(proc.pid, signal.SIGKILL)  # the driver, at any moment
    proc.wait()
    rows = pq.read_table(parts).to_pylist() if parts.is_dir() else []
    done_before = sum(1 for r in rows if not r["error"])  # failed rows are tried again
    assert 0 < len(rows) < 38
    # the user types the command again once the killed run's local Ray is gone (its
    # watchdog ends it within a second or two)
    deadline = time.time() + 30
    while time.time() < deadline and any(p in _table() and _table()[p][1] == t for p, t in its_ray.items()):
        time.sleep(0.2)

    code, summary, stderr = run_batch(str(archive), "-o", str(out), "--batch-size", "2")
    assert code == 1 and summary, stderr  # two bad files
    assert summary["done_before"] >= done_before and summary["done_before"] + summary["done_now"] == 38
    rows = check_exactly_once(archive, out, before)
    assert {Path(r["path"]).name for r in rows if r["error"]} == {"broken.jpg", "notes.jpg"}

    # the same answers as `faceup fix`, picture for picture, byte for byte
    ref = tmp_path / "ref"
    res = faceup_cli("fix", str(archive), "-o", str(ref), "--json")
    fixed = {json.loads(x)["path"]: json.loads(x) for x in res.stdout.splitlines()}
    for r in rows:
        if r["error"]:
            continue
        assert fixed[r["path"]]["rotation"] == r["rotation"] and fixed[r["path"]]["turned"] == r["turned"]
        assert sha(Path(fixed[r["path"]]["output"])) == r["output_sha256"]

    # started again when all is done: only the two files that failed are tried again
    code, summary, _ = run_batch(str(archive), "-o", str(out))
    assert summary["done_now"] == 2 and summary["done_before"] == 36


def test_a_killed_worker_is_replaced_and_the_run_completes(tmp_path, archive):
    before = {str(p): sha(p) for p in archive.rglob("*") if p.is_file()}
    out = tmp_path / "upright"
    cmd = [str(BIN / "faceup"), "batch", str(archive), "-o", str(out), "--batch-size", "2", "--json"]
    proc = started(cmd, out / "faceup-results.parquet.d" / "parts", 1, stdout=subprocess.PIPE, text=True)
    workers = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()
    assert workers, "no Ray worker found to kill"
    os.kill(int(workers[0]), signal.SIGKILL)
    stdout, _ = proc.communicate(timeout=600)
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["done_now"] == 38
    # many batches of 2: the rate once Ray is up, and the time it took to come up
    assert summary["per_second_once_up"] > 0 and 0 < summary["start_seconds"] < summary["seconds"]
    check_exactly_once(archive, out, before)


def test_a_two_node_cluster_started_here_runs_the_job_by_address(tmp_path, archive):
    ray = str(BIN / "ray")
    port = "6391"
    subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)
    try:
        subprocess.run([ray, "start", "--head", "--num-cpus", "1", "--port", port, "--disable-usage-stats",
                        "--include-dashboard=false"], check=True, capture_output=True, timeout=180)
        subprocess.run([ray, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1"], check=True,
                       capture_output=True, timeout=180)
        before = {str(p): sha(p) for p in archive.rglob("*") if p.is_file()}
        out = tmp_path / "upright"
        code, summary, stderr = run_batch(str(archive), "-o", str(out), "--address", f"127.0.0.1:{port}",
                                          "--batch-size", "4")
        assert summary.get("nodes") == 2, stderr
        assert summary["done_now"] == 38
        check_exactly_once(archive, out, before)
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


def test_in_place_changes_only_what_is_turned_and_undo_restores_it(tmp_path, archive):
    before = {str(p): p.read_bytes() for p in archive.rglob("*") if p.is_file()}
    table = tmp_path / "run.parquet"
    code, summary, stderr = run_batch(str(archive), "--in-place", "--table", str(table))
    assert summary["done_now"] == 38, stderr
    rows = {r["path"]: r for r in table_rows(table)}
    changed = [p for p, data in before.items() if Path(p).read_bytes() != data]
    assert changed and sorted(changed) == sorted(p for p, r in rows.items() if r["action"] == "replaced")
    for p in changed:
        assert rows[p]["turned"] and Image.open(p).size  # turned back, decodable
    res = faceup_cli("undo", str(table), "--json")
    report = json.loads(res.stdout)
    assert sorted(report["restored"]) == sorted(changed)
    for p, data in before.items():
        assert Path(p).read_bytes() == data, f"{p} not restored"
    again = json.loads(faceup_cli("undo", str(table), "--json").stdout)  # undo twice: nothing more to do
    assert not again["restored"] and all(s["why"] == "already restored" for s in again["skipped"])


def test_tag_only_writes_tags_and_sidecars_not_pixels_and_dry_run_writes_nothing(tmp_path, archive):
    out = tmp_path / "tagged"
    code, summary, stderr = run_batch(str(archive), "-o", str(out), "--tag-only")
    assert summary["done_now"] == 38, stderr
    rows = {Path(r["path"]).name: r for r in table_rows(out / "faceup-results.parquet")}
    jpeg = next(r for n, r in rows.items() if n.endswith(".jpeg") and r["turned"])
    src, dst = Image.open(jpeg["path"]), Image.open(jpeg["output"])
    assert np.array_equal(np.asarray(src), np.asarray(dst))  # the same pixels ...
    assert dst.getexif()[0x0112] in (3, 6, 8)  # ... shown upright by the tag
    png = next(r for n, r in rows.items() if n.endswith(".png") and r["turned"])
    assert png["action"] == "tagged" and Image.open(png["output"]).getexif()[0x0112] in (3, 6, 8)
    webp = next(r for n, r in rows.items() if n.endswith(".webp") and r["turned"])
    assert webp["action"] == "sidecar" and 'tiff:Orientation="' in Path(webp["sidecar"]).read_text()
    assert Path(webp["output"]).read_bytes() == Path(webp["path"]).read_bytes()  # the picture beside it, as it was

    dry = tmp_path / "dry"
    table = tmp_path / "dry.parquet"
    code, summary, _ = run_batch(str(archive), "-o", str(dry), "--dry-run", "--table", str(table))
    assert summary["done_now"] == 38 and not dry.exists()
    assert {r["action"] for r in table_rows(table)} == {"planned", "failed"}


def test_without_the_ray_extra_the_message_names_it(tmp_path, archive):
    fake = tmp_path / "blocked" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed', name='ray')\n")
    env = {"PYTHONPATH": str(tmp_path / "blocked")}
    code, _, stderr = run_batch(str(archive), "-o", str(tmp_path / "o"), env=env)
    assert code == 2 and "pip install 'faceup[ray]'" in " ".join(stderr.split())
    shutil.rmtree(tmp_path / "blocked")


def test_an_address_where_no_cluster_answers_is_refused_at_once(tmp_path, archive):
    # given such an address Ray retries without end; faceup says what to do, and writes nothing
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    for address, said in ((f"127.0.0.1:{port}", "no Ray cluster answers at"), ("no-port-here", "takes HOST:PORT")):
        t = time.perf_counter()
        code, _, err = run_batch(str(archive), "-o", str(out), "--address", address)
        assert code == 2
        assert time.perf_counter() - t < 60
        assert said in " ".join(err.split()) and "Traceback" not in err
    assert not out.exists() or not any(out.rglob("*.jpg"))
