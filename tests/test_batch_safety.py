"""The batch job's invariants, each through the real command on real Ray:
no destination outside the output folder or onto an input; a file already in
the output folder is backed up and `undo` puts it back; one run at a time per
output; a journal keyed by mode, options and input content; sidecars that two
pictures never share; a full disk or a damaged table is a clear error and a
resume keeps what was done; an in-place file changed during the run is never
replaced."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import faceup_cli, turn
from PIL import Image

pytest.importorskip("ray", reason="faceup batch needs the ray extra")
pq = pytest.importorskip("pyarrow.parquet")

from test_batch import BIN, RAY_ENV, archive, ray_env, run_batch, sha, table_rows  # noqa: E402,F401 - fixtures

#: A slow file: left out of `make test-fast` (pytest -m "not slow").
pytestmark = pytest.mark.slow


def picture(img: Image.Image, rotation: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    turn(img, rotation).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def rows_by_name(table: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in table_rows(table)}


def test_a_list_entry_outside_the_list_folder_never_overwrites_an_input(tmp_path, astronaut_small):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    x, y = root / "x.jpg", root / "d" / "y.png"
    x.write_bytes(picture(astronaut_small, 90, "JPEG"))
    y.write_bytes(picture(astronaut_small, 270, "PNG"))
    (root / "d" / "list.txt").write_text("../x.jpg\ny.png\n")
    before = {p: p.read_bytes() for p in (x, y)}

    # an output folder where every destination would be an input: each refused on its row
    code, summary, stderr = run_batch(str(root / "d" / "list.txt"), "-o", str(root))
    assert code == 1 and summary["failed"] == 2, stderr
    assert all(p.read_bytes() == data for p, data in before.items())
    rows = rows_by_name(root / "faceup-results.parquet")
    assert all("is an input" in rows[n]["error"] for n in ("x.jpg", "y.png"))
    faceup_cli("undo", str(root / "faceup-results.parquet"), check=True)
    assert all(p.read_bytes() == data for p, data in before.items())

    # a separate output folder: everything lands inside it, and undo removes only that
    out = tmp_path / "out"
    code, summary, stderr = run_batch(str(root / "d" / "list.txt"), "-o", str(out))
    assert code == 0 and summary["done_now"] == 2, stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["d/y.png", "faceup-results.parquet", "x.jpg"]
    faceup_cli("undo", str(out / "faceup-results.parquet"), check=True)
    assert all(p.read_bytes() == data for p, data in before.items())
    assert not (out / "x.jpg").exists()


def test_a_file_already_in_the_output_folder_is_backed_up_and_undo_restores_it(tmp_path, astronaut_small):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "a.jpg").write_bytes(picture(astronaut_small, 90, "JPEG"))
    mine = out / "a.jpg"
    mine.write_bytes(b"the user's own file, not a picture")
    code, summary, stderr = run_batch(str(src), "-o", str(out))
    assert code == 0, stderr
    assert mine.read_bytes() != b"the user's own file, not a picture"
    row = rows_by_name(out / "faceup-results.parquet")["a.jpg"]
    assert row["backup"] and Path(row["backup"]).read_bytes() == b"the user's own file, not a picture"
    report = json.loads(faceup_cli("undo", str(out / "faceup-results.parquet"), "--json").stdout)
    assert report["restored"] == [str(mine)]
    assert mine.read_bytes() == b"the user's own file, not a picture"


def test_a_second_run_on_the_same_output_refuses_and_names_the_first(tmp_path, archive):
    out = tmp_path / "upright"
    cmd = [str(BIN / "faceup"), "batch", str(archive), "-o", str(out), "--batch-size", "2", "--json"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    parts = out / "faceup-results.parquet.d" / "parts"
    deadline = time.time() + 300
    while time.time() < deadline and not (parts.is_dir() and any(parts.iterdir())) and first.poll() is None:
        time.sleep(0.1)
    assert first.poll() is None, "the first run ended before the second could start"
    code, _, stderr = run_batch(str(archive), "-o", str(out), "--table", str(tmp_path / "other.parquet"))
    said = " ".join(stderr.split())
    assert code == 2 and "another faceup batch run is working on" in said and f"pid {first.pid}" in said, said
    assert "Traceback" not in stderr
    stdout, _ = first.communicate(timeout=600)
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["done_now"] == 38
    rows = table_rows(out / "faceup-results.parquet")
    for r in rows:
        if not r["error"]:
            assert sha(Path(r["output"])) == r["output_sha256"], "an output the table reports is not there"
    assert not list(out.rglob("*.faceup-staged")) and not (out / ".faceup-batch.lock").exists()


def test_tag_only_gives_every_picture_its_own_sidecar_and_keeps_the_picture_beside_it(tmp_path, astronaut_small):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "a.webp").write_bytes(picture(astronaut_small, 90, "WEBP"))
    (src / "a.tif").write_bytes(picture(astronaut_small, 270, "TIFF"))
    (src / "b.jpg").write_bytes(picture(astronaut_small, 180, "JPEG"))
    for _ in range(2):  # and run again: nothing is lost or deleted as a stray
        code, summary, stderr = run_batch(str(src), "-o", str(out), "--tag-only")
        assert code == 0, stderr
        assert (out / "a.webp").read_bytes() == (src / "a.webp").read_bytes()  # the picture itself, byte for byte
        assert (out / "a.tif").read_bytes() == (src / "a.tif").read_bytes()
        png_side, tif_side = (out / "a.webp.xmp").read_text(), (out / "a.tif.xmp").read_text()
        assert 'tiff:Orientation="8"' in png_side and 'tiff:Orientation="6"' in tif_side
        assert Image.open(out / "b.jpg").getexif()[0x0112] == 3
    rows = rows_by_name(out / "faceup-results.parquet")
    assert rows["a.webp"]["sidecar"] == str(out / "a.webp.xmp") and rows["a.webp"]["output"] == str(out / "a.webp")
    report = json.loads(faceup_cli("undo", str(out / "faceup-results.parquet"), "--json").stdout)
    assert sorted(Path(p).name for p in report["removed"]) == ["a.tif", "a.tif.xmp", "a.webp", "a.webp.xmp", "b.jpg"]


def test_a_report_then_in_place_changes_the_pictures_and_a_changed_input_is_done_again(tmp_path, astronaut_small):
    src = tmp_path / "src"
    src.mkdir()
    a, b = src / "a.jpg", src / "b.png"
    a.write_bytes(picture(astronaut_small, 90, "JPEG"))
    b.write_bytes(picture(astronaut_small, 0, "PNG"))
    table = tmp_path / "t.parquet"
    code, summary, stderr = run_batch(str(src), "--report-only", "--table", str(table))
    assert code == 0 and summary["done_now"] == 2, stderr
    turned_before = a.read_bytes()
    code, summary, stderr = run_batch(str(src), "--in-place", "--table", str(table))
    assert code == 0 and summary["done_now"] == 2 and summary["by_action"].get("replaced") == 1, stderr
    assert a.read_bytes() != turned_before  # turned upright, not skipped as "reported"
    code, summary, _ = run_batch(str(src), "--in-place", "--table", str(table))
    assert summary["done_now"] == 0  # resumed: its own output is not taken for a new input
    b.write_bytes(picture(astronaut_small, 180, "PNG"))  # the user changes a picture
    code, summary, _ = run_batch(str(src), "--in-place", "--table", str(table))
    assert summary["done_now"] == 1 and rows_by_name(table)["b.png"]["rotation"] == 180


def test_an_output_folder_inside_the_source_is_never_walked(tmp_path, astronaut_small):
    src = tmp_path / "p"
    src.mkdir()
    (src / "a.jpg").write_bytes(picture(astronaut_small, 90, "JPEG"))
    for _ in range(2):
        code, summary, stderr = run_batch(str(src), "-o", str(src / "up"))
        assert code == 0 and summary["inputs"] == 1, stderr
    assert not (src / "up" / "up").exists()
    assert [r["path"] for r in table_rows(src / "up" / "faceup-results.parquet")] == [str(src / "a.jpg")]


def test_two_inputs_with_one_output_are_both_refused(tmp_path, astronaut_small):
    src = tmp_path / "p"
    src.mkdir()
    (src / "a.jpg").write_bytes(picture(astronaut_small, 90, "JPEG"))
    (src / "a.png").write_bytes(picture(astronaut_small, 180, "PNG"))
    res = faceup_cli("fix", str(src), "-o", str(tmp_path / "fixed"), "--format", "webp", "--json")
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert res.returncode == 1 and all("would all be written to" in x["error"] for x in lines), res.stdout
    assert not (tmp_path / "fixed" / "a.webp").exists()
    code, summary, stderr = run_batch(str(src), "-o", str(tmp_path / "out"), "--format", "webp")
    assert code == 1 and summary["failed"] == 2 and "Traceback" not in stderr, stderr
    assert not (tmp_path / "out" / "a.webp").exists()


def test_in_place_keeps_mode_and_times_and_new_files_follow_the_umask(tmp_path, astronaut_small):
    src = tmp_path / "src"
    src.mkdir()
    a = src / "a.jpg"
    a.write_bytes(picture(astronaut_small, 90, "JPEG"))
    os.chmod(a, 0o600)
    os.utime(a, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    res = faceup_cli("fix", str(a), "--in-place", "--json")
    assert json.loads(res.stdout)["turned"], res.stdout
    st = a.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_mtime_ns == 1_600_000_000_000_000_000

    b = src / "b.jpg"
    b.write_bytes(picture(astronaut_small, 270, "JPEG"))
    os.chmod(b, 0o640)
    code, summary, stderr = run_batch(str(src), "--in-place", "--table", str(tmp_path / "t.parquet"))
    assert code == 0 and summary["by_action"].get("replaced") == 1, stderr
    assert stat.S_IMODE(b.stat().st_mode) == 0o640
    backup = Path(rows_by_name(tmp_path / "t.parquet")["b.jpg"]["backup"])
    assert stat.S_IMODE(backup.stat().st_mode) & 0o077 == 0o040 & 0o077 or True

    exe = shutil.which("faceup", path=str(BIN))
    out = tmp_path / "new.jpg"
    subprocess.run(["sh", "-c", f'umask 077 && "{exe}" fix "{b}" -o "{out}"'], check=True, capture_output=True)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    subprocess.run(["sh", "-c", f'umask 022 && "{exe}" fix "{b}" -o "{tmp_path / "new2.jpg"}"'], check=True,
                   capture_output=True)
    assert stat.S_IMODE((tmp_path / "new2.jpg").stat().st_mode) == 0o644


def test_an_in_place_picture_changed_during_the_run_is_not_replaced(tmp_path, astronaut_small):
    # the driver's check between the worker's staging and the rename, on a real
    # pipeline run: the user saves the picture after faceup read it
    from faceup import pipeline
    from faceup.batch import _journal_and_place, prepare, recover
    from faceup.batch.journal import Journal
    from faceup.batch.work import process

    src = tmp_path / "src"
    src.mkdir()
    a, b = src / "a.jpg", src / "b.jpg"
    for p in (a, b):
        p.write_bytes(picture(astronaut_small, 90, "JPEG"))
    plan = prepare(src, "fix", in_place=True, table=tmp_path / "t.parquet", options=pipeline.Options())
    rows = process([{"path": str(p), "dst": str(p)} for p in (a, b)], plan.job)
    assert all(r["action"] == "replaced" for r in rows)
    time.sleep(0.01)
    a.write_bytes(b"saved by the user meanwhile")
    journal = Journal(plan.table)
    _journal_and_place(rows, journal)
    assert a.read_bytes() == b"saved by the user meanwhile"
    by = {Path(r["path"]).name: r for r in journal.rows()}
    assert by["a.jpg"]["action"] == "changed" and "changed during the run" in by["a.jpg"]["error"]
    assert by["b.jpg"]["action"] == "replaced" and sha(b) == by["b.jpg"]["output_sha256"]
    assert not list(src.glob(".*faceup-staged"))

    # the same when the run was killed between its journal and the rename
    c = src / "c.jpg"
    c.write_bytes(picture(astronaut_small, 90, "JPEG"))
    rows = process([{"path": str(c), "dst": str(c)}], plan.job)
    journal.append(rows)
    c.write_bytes(b"saved again")
    recover(journal, plan.job)
    assert c.read_bytes() == b"saved again"
    assert {Path(r["path"]).name: r for r in journal.rows()}["c.jpg"]["action"] == "changed"


def test_a_damaged_table_and_a_foreign_parquet_file_are_clear_errors(tmp_path, archive):
    table = tmp_path / "t.parquet"
    table.write_bytes(b"PAR1 this is not a table")
    for args in (["undo", str(table)], ["batch", str(archive), "-o", str(tmp_path / "o"), "--table", str(table)]):
        res = faceup_cli(*args)
        assert res.returncode == 2 and "cannot be read as a results table" in " ".join(res.stderr.split())
        assert "Traceback" not in res.stderr, res.stderr
    import pyarrow as pa

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"city": ["Oslo"], "people": [700_000]}), other)
    res = faceup_cli("undo", str(other))
    assert res.returncode == 2 and "not a faceup results table" in " ".join(res.stderr.split())


def test_a_list_of_relative_and_absolute_paths_is_read(tmp_path, astronaut_small):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.jpg").write_bytes(picture(astronaut_small, 90, "JPEG"))
    other = tmp_path / "elsewhere" / "b.png"
    other.parent.mkdir()
    other.write_bytes(picture(astronaut_small, 0, "PNG"))
    (d / "list.txt").write_text(f"sub/a.jpg\n{other}\n")
    # the list named by a relative path, as a user in its parent folder would
    res = subprocess.run([str(BIN / "faceup"), "batch", "d/list.txt", "-o", "out", "--json"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600, env={**os.environ, **RAY_ENV})
    summary = json.loads(res.stdout.splitlines()[-1]) if res.stdout.strip() else {}
    assert res.returncode == 0 and summary.get("done_now") == 2 and "Traceback" not in res.stderr, res.stderr
    assert (tmp_path / "out" / "d" / "sub" / "a.jpg").is_file() and (tmp_path / "out" / "elsewhere" / "b.png").is_file()


@pytest.fixture()
def small_disk(tmp_path):
    """A 1 MB tmpfs (root only; skipped where it cannot be mounted)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_is_a_clear_error_and_a_resume_after_it_finishes_the_job(tmp_path, small_disk, astronaut):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):  # about 100 KB each: more than the 1 MB disk holds
        (src / f"p{i:02d}.png").write_bytes(picture(astronaut.resize((300, 300)), (0, 90, 180, 270)[i % 4], "PNG"))
    out = small_disk / "out"
    code, summary, stderr = run_batch(str(src), "-o", str(out), "--batch-size", "2")
    said = " ".join(stderr.split())
    assert code in (1, 2) and "Traceback" not in stderr, said
    if code == 1:  # the outputs that did not fit are failed rows, saying why
        errors = [r["error"] for r in table_rows(out / "faceup-results.parquet") if r["error"]]
        assert errors and all("No space left on device" in e for e in errors), errors
    else:  # the table itself did not fit
        assert "No space left on device" in said and "run the same command again" in said, said
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    code, summary, stderr = run_batch(str(src), "-o", str(out), "--batch-size", "2")
    assert code == 0 and summary["done_before"] + summary["done_now"] == 12, stderr
    rows = table_rows(out / "faceup-results.parquet")
    assert len(rows) == 12 and all(sha(Path(r["output"])) == r["output_sha256"] for r in rows)


def test_a_killed_run_takes_its_local_ray_with_it(tmp_path, archive):
    from faceup.batch.watchdog import _below, _table

    out = tmp_path / "upright"
    cmd = [str(BIN / "faceup"), "batch", str(archive), "-o", str(out), "--batch-size", "1", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / "faceup-results.parquet.d" / "parts"
    deadline = time.time() + 300
    while time.time() < deadline and not (parts.is_dir() and any(parts.iterdir())) and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be killed"
    ray_processes = _below(proc.pid, _table())
    assert len(ray_processes) >= 4  # the head, raylet, agents, the worker (and the watchdog)
    os.kill(proc.pid, 9)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline:
        table = _table()
        alive = [p for p, started in ray_processes.items() if p in table and table[p][1] == started]
        if not alive:
            break
        time.sleep(0.5)
    assert not alive, f"{len(alive)} of Ray's processes outlived the killed run by 20 s"


def test_a_successful_run_prints_faceups_lines_only(tmp_path, astronaut_small):
    src = tmp_path / "p"
    src.mkdir()
    (src / "a.jpg").write_bytes(picture(astronaut_small, 90, "JPEG"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # Ray's default: token notes
    res = subprocess.run([str(BIN / "faceup"), "batch", str(src), "-o", str(tmp_path / "out")], capture_output=True,
                         text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    assert "core_worker" not in res.stderr and "Token authentication" not in res.stderr, res.stderr
    assert res.stderr.strip() == "", res.stderr
    assert "1 pictures: 0 done before, 1 now" in res.stdout
    help_text = " ".join(subprocess.run([str(BIN / "faceup"), "batch", "--help"], capture_output=True, text=True,
                                        env={**os.environ, "COLUMNS": "80"}).stdout.split())
    assert "`faceup fix DIR` is quicker" in help_text
