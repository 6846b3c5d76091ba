"""What a new user meets in the first hour, through the real command: a missing
extra, a folder with pictures faceup is not sure of, its own outputs beside the
inputs, standard input and output, --version and -h."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, faceup_cli, jpeg_bytes, turn
from PIL import Image

EXE = Path(sys.executable).parent / "faceup"
SAMPLES = REPO / "src" / "faceup" / "samples"


def blocked(tmp_path: Path, *modules: str) -> dict:
    """An environment where these modules cannot be imported (as without the extra)."""
    shadow = tmp_path / "blocked"
    for name in modules:
        (shadow / name).mkdir(parents=True, exist_ok=True)
        (shadow / name / "__init__.py").write_text(f"raise ImportError('not installed', name={name!r})\n")
    return {**os.environ, "PYTHONPATH": str(shadow), "COLUMNS": "200"}


@pytest.mark.parametrize("args, modules, extra", [
    (["batch", "{d}", "-o", "{o}"], ["ray", "pyarrow"], "ray"),
    (["undo", "{d}/t.parquet"], ["ray", "pyarrow"], "ray"),
    (["train", "--task", "smile", "--out", "{o}"], ["torch", "onnx"], "train"),
    (["evaluate", "{d}", "--confusion", "{o}/c.png"], ["matplotlib"], "plots"),
    (["fix", "{d}/a.jpg", "-o", "{o}/a.heic"], ["pillow_heif"], "heic"),
], ids=["batch", "undo", "train", "evaluate-plots", "fix-heic"])
def test_a_command_without_its_extra_says_how_to_install_it(tmp_path, astronaut_small, args, modules, extra):
    d, o = tmp_path / "d", tmp_path / "o"
    d.mkdir()
    (d / "a.jpg").write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    (d / "t.parquet").write_bytes(b"PAR1")
    res = subprocess.run([str(EXE), *[a.format(d=d, o=o) for a in args]], capture_output=True, text=True,
                         timeout=300, env=blocked(tmp_path, *modules))
    said = " ".join((res.stdout + res.stderr).split())
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert f"pip install 'faceup[{extra}]'" in said and f"pip install -e '.[{extra}]'" in said, said
    assert res.returncode in (1, 2)


def test_a_folder_run_names_the_pictures_left_as_they_were_and_why(tmp_path):
    out = tmp_path / "up"
    res = faceup_cli("fix", str(SAMPLES), "-o", str(out))
    last = res.stdout.strip().splitlines()
    summary = next(line for line in last if "pictures written" in line)
    lines = [json.loads(x) for x in faceup_cli("fix", str(SAMPLES), "-o", str(tmp_path / "j"), "--json").stdout
             .splitlines()]
    unsure = [x for x in lines if x["status"] == "not sure"]
    assert f"{len(unsure)} not sure" in summary
    for x in unsure:  # by name, with the reason
        assert any(Path(x["path"]).name in line and "below" in line for line in last if "not sure" in line)
        assert x["confident"] is False and x["turned"] is False
    assert {x["status"] for x in lines} <= {"turned", "upright", "not sure"}
    assert sum(x["status"] == "turned" for x in lines) == sum(x["turned"] for x in lines)


def test_fix_fine_on_a_tilted_face_never_says_already_upright(tmp_path, astronaut):
    tilted = tmp_path / "tilted.jpg"
    astronaut.rotate(-40, expand=True, fillcolor="white").save(tilted, quality=92)  # 40 degrees clockwise
    pred = json.loads(faceup_cli("predict", "--json", "--fine", str(tilted)).stdout)
    assert 30 < pred["angle"] < 50
    res = faceup_cli("fix", "--fine", str(tilted), "-o", str(tmp_path / "level.jpg"))
    assert "already upright" not in res.stdout
    assert ("looks turned 4" in res.stdout) != pred["confident"], res.stdout


def test_faceups_own_outputs_are_not_taken_as_inputs(tmp_path, astronaut_small):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.jpg").write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    assert faceup_cli("fix", str(d / "a.jpg")).returncode == 0  # d/a.upright.jpg, beside it
    assert faceup_cli("background", str(d / "a.jpg"), "--color", "white").returncode == 0
    assert faceup_cli("explain", str(d / "a.jpg"), "-o", str(d / "a.why.png")).returncode == 0
    names = lambda res: sorted(Path(json.loads(x)["path"]).name for x in res.stdout.splitlines())  # noqa: E731
    assert names(faceup_cli("predict", "--json", str(d))) == ["a.jpg"]
    assert len(names(faceup_cli("predict", "--json", "--include-outputs", str(d)))) == 4
    res = faceup_cli("fix", str(d / "a.upright.jpg"))
    assert res.returncode == 2 and "own output" in res.stderr
    assert not (d / "a.upright.upright.jpg").exists()


def test_standard_input_and_output(tmp_path, astronaut_small):
    data = jpeg_bytes(turn(astronaut_small, 270))
    res = subprocess.run([str(EXE), "fix", "-", "-o", "-"], input=data, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    from io import BytesIO

    fixed = Image.open(BytesIO(res.stdout))
    assert fixed.format == "JPEG" and b"turned back" in res.stderr
    res = subprocess.run([str(EXE), "predict", "--json", "-"], input=data, capture_output=True, timeout=120)
    assert json.loads(res.stdout)["rotation"] == 270


def test_version_short_help_and_subfolders_by_default(tmp_path, astronaut_small):
    from faceup import __version__

    assert faceup_cli("--version").stdout.strip() == f"faceup {__version__}"
    assert faceup_cli("fix", "-h").stdout.startswith("Usage: faceup fix")
    (tmp_path / "sub").mkdir()
    (tmp_path / "top.jpg").write_bytes(jpeg_bytes(astronaut_small))
    (tmp_path / "sub" / "deep.jpg").write_bytes(jpeg_bytes(astronaut_small))
    for cmd in ("predict", "analyze"):
        deep = faceup_cli(cmd, "--json", str(tmp_path)).stdout.splitlines()
        flat = faceup_cli(cmd, "--json", "--no-recursive", str(tmp_path)).stdout.splitlines()
        assert (len(deep), len(flat)) == (2, 1), cmd


def exiftool_orientation(path: Path, tag: str = "Orientation") -> int | None:
    import shutil

    if not shutil.which("exiftool"):
        pytest.skip("Debian's exiftool is not installed (make test installs it as root)")
    res = subprocess.run(["exiftool", "-j", "-n", f"-{tag}", str(path)], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)[0].get(tag.split(":")[-1])


@pytest.mark.parametrize("fmt, rotation, value", [("JPEG", 90, 8), ("PNG", 180, 3), ("JPEG", 270, 6)])
def test_tag_only_sets_the_orientation_a_real_reader_sees_and_keeps_the_pixels(tmp_path, astronaut, fmt, rotation,
                                                                               value):
    src = tmp_path / f"a.{fmt.lower()}"
    turn(astronaut.resize((320, 320)), rotation).save(src, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    out = tmp_path / f"tagged.{fmt.lower()}"
    res = faceup_cli("fix", "--tag-only", str(src), "-o", str(out), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["turned"], res.stdout + res.stderr
    assert exiftool_orientation(out) == value
    import numpy as np

    assert np.array_equal(np.asarray(Image.open(src)), np.asarray(Image.open(out)))  # the same stored pixels
    from PIL import ImageOps

    shown = ImageOps.exif_transpose(Image.open(out))
    assert shown.size == astronaut.resize((320, 320)).size


def test_tag_only_refuses_a_format_it_cannot_tag_and_writes_a_sidecar_when_asked(tmp_path, astronaut_small):
    src = tmp_path / "a.tif"
    turn(astronaut_small, 90).save(src, "TIFF")
    before = src.read_bytes()
    res = faceup_cli("fix", "--tag-only", "--in-place", str(src))
    assert res.returncode == 1 and "--sidecar" in res.stderr and src.read_bytes() == before
    res = faceup_cli("fix", "--tag-only", "--sidecar", "--in-place", str(src), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["sidecar"] == str(tmp_path / "a.tif.xmp")
    assert src.read_bytes() == before
    assert exiftool_orientation(tmp_path / "a.tif.xmp", "XMP-tiff:Orientation") == 8


def test_the_server_sets_the_tag_too(astronaut_small):
    import io

    import httpx
    from conftest import start_server

    proc, url = start_server()
    try:
        buf = io.BytesIO()
        turn(astronaut_small, 90).save(buf, "JPEG", quality=90)
        r = httpx.post(url + "/fix", files={"file": ("a.jpg", buf.getvalue(), "image/jpeg")},
                       data={"tag_only": "true"}, timeout=60)
        assert r.status_code == 200 and r.headers["X-Faceup-Turned"] == "true", r.text
        got = Image.open(io.BytesIO(r.content))
        assert got.getexif()[0x0112] == 8 and got.size == (256, 256)  # the stored pixels, not turned
    finally:
        proc.terminate()
        proc.wait(20)


def test_explain_draws_only_what_moves_the_answer_writes_only_what_is_asked_and_rounds(tmp_path):
    import numpy as np

    src = tmp_path / "cameraman.png"
    src.write_bytes((SAMPLES / "cameraman-upside-down.png").read_bytes())
    res = faceup_cli("explain", "--json", str(src))
    obj = json.loads(res.stdout)
    assert obj["output"] is None and sorted(p.name for p in tmp_path.iterdir()) == ["cameraman.png"]  # no file
    flat = [v for row in obj["occlusion"] for v in row]
    assert all(len(repr(v)) <= 7 for v in flat), flat  # rounded: no 9.999999747378752e-05, no -0.0
    assert "-0.0," not in res.stdout and "-0.0]" not in res.stdout
    from faceup.explain import NOTHING

    assert max(abs(v) for v in flat) < NOTHING  # a sure picture: nothing here changes the answer ...
    why = tmp_path / "why.png"
    assert faceup_cli("explain", str(src), "-o", str(why)).returncode == 0
    drawn = np.asarray(Image.open(why).convert("RGB"), dtype=np.int16)
    shown = Image.open(src).convert("RGB")
    shown = np.asarray(shown.resize((512, round(shown.height * 512 / shown.width))), dtype=np.int16)
    assert np.abs(drawn[:shown.shape[0], :512] - shown).mean() < 2  # ... so no red or blue is drawn over it
    assert (drawn[-4:] == 255).all()  # the legend's last line is inside the picture, a white margin below it
    assert (drawn[shown.shape[0]:-4] < 100).any()  # and there is text


def test_explain_colours_a_picture_where_parts_move_the_answer(tmp_path):
    import numpy as np

    why = tmp_path / "why.png"
    src = SAMPLES / "rocket-turned-90.jpg"
    obj = json.loads(faceup_cli("explain", "--json", str(src), "-o", str(why)).stdout)
    assert obj["output"] == str(why) and why.is_file()
    if max(abs(v) for row in obj["occlusion"] for v in row) >= 0.1:
        drawn = np.asarray(Image.open(why).convert("RGB"), dtype=np.int16)
        shown = Image.open(src).convert("RGB")
        h = round(shown.height * 512 / max(shown.size))
        w = round(shown.width * 512 / max(shown.size))
        plain = np.asarray(shown.resize((w, h)), dtype=np.int16)
        assert np.abs(drawn[:h, :w] - plain).max() > 40  # the map is drawn
