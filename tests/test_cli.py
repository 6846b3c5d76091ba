"""The command line end to end, through the installed `faceup` command, on real photos."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, faceup_cli, jpeg_bytes, mean_abs_diff, turn

CONTRACT_KEYS = ["path", "rotation", "confidence", "confident", "angle", "exif_orientation", "error"]


@pytest.fixture()
def turned_dir(tmp_path, astronaut):
    """A small archive: the astronaut turned every way, in a nested tree, plus a bad file."""
    root = tmp_path / "archive"
    (root / "a" / "b").mkdir(parents=True)
    for r, where in [(0, root), (90, root / "a"), (180, root / "a" / "b"), (270, root / "a" / "b")]:
        (where / f"astro-{r}.jpg").write_bytes(jpeg_bytes(turn(astronaut, r)))
    (root / "a" / "broken.jpg").write_bytes(jpeg_bytes(astronaut)[:3000])
    return root


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_predict_json_follows_the_contract(tmp_path, astronaut, rotation):
    p = tmp_path / f"turned-{rotation}.jpg"
    p.write_bytes(jpeg_bytes(turn(astronaut, rotation)))
    res = faceup_cli("predict", "--json", str(p))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert list(obj) == CONTRACT_KEYS
    assert obj["path"] == str(p)
    assert obj["rotation"] == rotation
    assert isinstance(obj["confidence"], float) and 0.25 <= obj["confidence"] <= 1.0
    assert obj["confident"] is True
    assert obj["angle"] is None
    assert obj["exif_orientation"] == 1
    assert obj["error"] is None


def test_predict_walks_directories_and_reports_bad_files(turned_dir):
    flat = faceup_cli("predict", "--json", "--no-recursive", str(turned_dir))
    assert [json.loads(line)["path"] for line in flat.stdout.splitlines()] == [str(turned_dir / "astro-0.jpg")]
    res = faceup_cli("predict", "--json", str(turned_dir))
    assert res.returncode == 1  # one file could not be read
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(objs) == 5
    by_name = {Path(o["path"]).name: o for o in objs}
    bad = by_name["broken.jpg"]
    assert list(bad) == CONTRACT_KEYS
    assert bad["rotation"] is None and bad["confidence"] is None and "truncated" in bad["error"]
    for r in (0, 90, 180, 270):
        assert by_name[f"astro-{r}.jpg"]["rotation"] == r


def test_predict_reports_exif_orientation(tmp_path, astronaut_small):
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "exif6.jpg"
    astronaut_small.transpose(Image.Transpose.ROTATE_90).save(p, quality=92, exif=exif.tobytes())
    obj = json.loads(faceup_cli("predict", "--json", str(p)).stdout)
    assert obj["exif_orientation"] == 6
    assert obj["rotation"] == 0  # as displayed, it is upright


def test_fix_turns_a_picture_back_and_keeps_the_input(tmp_path, astronaut):
    src = tmp_path / "in.jpg"
    data = jpeg_bytes(turn(astronaut, 90))
    src.write_bytes(data)
    out = tmp_path / "out.jpg"
    res = faceup_cli("fix", str(src), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "turned back" in res.stdout
    assert src.read_bytes() == data
    assert mean_abs_diff(Image.open(out), astronaut) < 4


def test_fix_without_output_writes_beside_the_input(tmp_path, astronaut_small):
    src = tmp_path / "photo.jpg"
    src.write_bytes(jpeg_bytes(turn(astronaut_small, 180)))
    assert faceup_cli("fix", str(src)).returncode == 0
    assert (tmp_path / "photo.upright.jpg").exists()


def test_fix_refuses_to_overwrite_the_input_unless_in_place(tmp_path, astronaut_small):
    src = tmp_path / "photo.jpg"
    data = jpeg_bytes(turn(astronaut_small, 270))
    src.write_bytes(data)
    res = faceup_cli("fix", str(src), "-o", str(src))
    assert res.returncode == 2 and "in-place" in res.stderr
    assert src.read_bytes() == data
    assert faceup_cli("fix", "--in-place", str(src)).returncode == 0
    assert mean_abs_diff(Image.open(src), astronaut_small) < 4
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]  # no temp files left


def test_fix_directory_mirrors_the_tree_and_goes_past_a_bad_file(turned_dir, tmp_path, astronaut):
    dest = tmp_path / "upright"
    res = faceup_cli("fix", str(turned_dir), "-o", str(dest))
    assert res.returncode == 1
    assert "4 of 5 pictures written" in res.stdout
    assert "broken.jpg" in res.stderr
    for rel in ["astro-0.jpg", "a/astro-90.jpg", "a/b/astro-180.jpg", "a/b/astro-270.jpg"]:
        assert mean_abs_diff(Image.open(dest / rel), astronaut) < 4, rel
    assert not (dest / "a" / "broken.jpg").exists()


def test_fix_json_lines(tmp_path, astronaut_small):
    src = tmp_path / "t.png"
    turn(astronaut_small, 90).save(src)
    res = faceup_cli("fix", "--json", str(src), "-o", str(tmp_path / "t-up.png"))
    obj = json.loads(res.stdout)
    assert obj["rotation"] == 90 and obj["turned"] is True and obj["output"].endswith("t-up.png")


def test_min_confidence_one_leaves_pictures_as_they_are(tmp_path, astronaut_small):
    src = tmp_path / "t.png"
    turn(astronaut_small, 90).save(src)
    out = tmp_path / "o.png"
    res = faceup_cli("fix", "--min-confidence", "1.0", str(src), "-o", str(out))
    assert res.returncode == 0 and "left as it is" in res.stdout
    assert mean_abs_diff(Image.open(out), turn(astronaut_small, 90)) == 0


@pytest.mark.parametrize("content,needle", [(b"", "empty"), (b"hello, I am text" * 50, "not a picture")])
def test_bad_input_is_a_clear_message_not_a_traceback(tmp_path, content, needle):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    res = faceup_cli("fix", str(p), "-o", str(tmp_path / "o.jpg"))
    assert res.returncode == 1
    assert needle in res.stderr and "Traceback" not in res.stderr + res.stdout


def test_evaluate_prints_accuracy_and_confusion(tmp_path, astronaut):
    (tmp_path / "faces").mkdir()
    astronaut.save(tmp_path / "faces" / "astro.png")
    res = faceup_cli("evaluate", "--json", str(tmp_path), "--confusion", str(tmp_path / "cm.png"),
                     "--reliability", str(tmp_path / "rel.png"))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    overall = report["overall"]
    assert overall["cases"] == 4
    assert overall["accuracy"] == 1.0
    assert sum(map(sum, overall["confusion"])) == 4
    assert overall["pictures_per_second"] > 0
    assert Image.open(tmp_path / "cm.png").size[0] > 100
    table = faceup_cli("evaluate", str(tmp_path))
    assert "100.00%" in table.stdout and "confusion" in table.stdout


def test_evaluate_trims_each_picture_before_turning_it(tmp_path, astronaut):
    """--trim: as the outside check does, a few pixels off each edge (1..N, seeded),
    so no turned copy keeps the upright file's block grid or edges."""
    import random

    from faceup.evaluate import trimmed

    for seed in range(20):
        out = trimmed(astronaut, 6, random.Random(seed))
        w, h = astronaut.size
        assert w - 12 <= out.size[0] <= w - 2 and h - 12 <= out.size[1] <= h - 2
        assert np.array_equal(np.asarray(out), np.asarray(trimmed(astronaut, 6, random.Random(seed))))
    assert trimmed(astronaut, 0, random.Random(0)) is astronaut
    assert trimmed(Image.new("RGB", (5, 5)), 6, random.Random(0)).size == (3, 3)  # never empty
    (tmp_path / "faces").mkdir()
    astronaut.save(tmp_path / "faces" / "astro.png")
    res = faceup_cli("evaluate", "--json", "--trim", "6", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["overall"]["cases"] == 4
    res = faceup_cli("evaluate", "--task", "angle", "--trim", "6", str(tmp_path))
    assert res.returncode == 2 and "--trim is for --task orientation" in res.stderr


def test_make_run_samples_are_all_handled(tmp_path):
    res = faceup_cli("fix", str(REPO / "src" / "faceup" / "samples"), "-o", str(tmp_path / "out"), "--json")
    assert res.returncode == 0, res.stderr
    objs = {Path(json.loads(line)["path"]).name: json.loads(line) for line in res.stdout.splitlines()}
    assert objs["astronaut-turned-90.jpg"]["rotation"] == 90
    assert objs["astronaut-exif-6.jpg"]["rotation"] == 0 and objs["astronaut-exif-6.jpg"]["exif_orientation"] == 6


def test_evaluate_angle_task_reports_errors(tmp_path, coffee):
    (tmp_path / "scenes").mkdir()
    for i in range(3):
        coffee.save(tmp_path / "scenes" / f"c{i}.jpg")
    res = faceup_cli("evaluate", "--task", "angle", "--json", str(tmp_path))
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)["sources"][0]
    assert row["cases"] == 3 and 0 <= row["mean_error"] <= 180 and 0 <= row["within_10"] <= 1
    res = faceup_cli("evaluate", "--task", "angle", "--json", "--draws", "2", str(tmp_path))
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)["sources"][0]
    assert row["cases"] == 6 and row["draws"] == 2


def test_fix_output_name_chooses_the_format(tmp_path, astronaut_small):
    src = tmp_path / "in.jpg"
    src.write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    res = faceup_cli("fix", str(src), "-o", str(tmp_path / "out.png"))
    assert res.returncode == 0, res.stderr
    assert Image.open(tmp_path / "out.png").format == "PNG"


def test_without_the_heic_extra_heic_is_read_and_writing_it_names_the_extra(tmp_path, astronaut):
    # pillow-heif (the heic extra, with the HEVC encoder) blocked: pi-heif of the core install reads HEIC
    pytest.importorskip("pillow_heif", reason="making the HEIC input needs the heic extra")
    fake = tmp_path / "blocked" / "pillow_heif"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed', name='pillow_heif')\n")
    src = tmp_path / "in.heic"
    turn(astronaut, 90).save(src, "HEIF", quality=90)
    before = src.read_bytes()
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{tmp_path / 'blocked'}:{env_path}"
    try:
        pred = faceup_cli("predict", "--json", str(src))
        fixed = faceup_cli("fix", str(src), "-o", str(tmp_path / "out.heic"))
        as_jpeg = faceup_cli("fix", str(src), "-o", str(tmp_path / "out.jpg"))
    finally:
        os.environ["PYTHONPATH"] = env_path
    assert pred.returncode == 0, pred.stderr
    assert json.loads(pred.stdout)["rotation"] == 90
    assert fixed.returncode != 0
    assert "pip install 'faceup[heic]'" in " ".join(fixed.stderr.split())
    assert "Traceback" not in fixed.stderr
    assert not (tmp_path / "out.heic").exists() and src.read_bytes() == before
    assert as_jpeg.returncode == 0, as_jpeg.stderr
    assert Image.open(tmp_path / "out.jpg").size == astronaut.size


@pytest.mark.parametrize("blocked, args, extra", [
    ("matplotlib", ["evaluate", "{dir}", "--confusion", "{dir}/cm.png"], "plots"),
    ("torch", ["train", "--task", "smile", "--out", "{dir}/run"], "train"),
])
def test_a_missing_extra_is_named_with_its_install_command(tmp_path, astronaut, blocked, args, extra):
    # a package that cannot be imported, first on the path: as if the extra were not installed
    fake = tmp_path / "blocked" / blocked
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"raise ImportError('not installed', name={blocked!r})\n")
    astronaut.save(tmp_path / "a.jpg")
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{tmp_path / 'blocked'}:{env_path}"
    try:
        res = faceup_cli(*[a.format(dir=tmp_path) for a in args])
    finally:
        os.environ["PYTHONPATH"] = env_path
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"pip install 'faceup[{extra}]'" in " ".join(res.stderr.split())
    assert "Traceback" not in res.stderr


def test_predict_json_imports_only_what_its_path_needs(tmp_path, astronaut_small):
    # start-up is most of `faceup predict --json one.jpg`: no rich (tables, bars), HEIF plugin
    # (a JPEG), jpegtran (nothing is turned), server or training code on that path
    import subprocess
    import sys

    src = tmp_path / "in.jpg"
    src.write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    code = ("import sys\nfrom faceup.cli import main\nsys.argv = ['faceup', 'predict', '--json', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules}), file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", code, str(src)], capture_output=True, text=True, timeout=120,
                         check=True)
    assert json.loads(res.stdout)["rotation"] == 90
    loaded = set(eval(res.stderr.strip().splitlines()[-1]))  # our own printed list
    assert loaded.isdisjoint({"rich", "pillow_heif", "pi_heif", "jpegtran", "fastapi", "torch", "matplotlib", "ray"})
    assert {"numpy", "onnxruntime", "PIL"} <= loaded


def test_the_bytecode_list_is_one_list_and_it_imports():
    # the Makefile and the Dockerfile write the bytecode of the same modules at install time
    import importlib
    import re

    make = re.search(r"^WARM := (\S+)$", (REPO / "Makefile").read_text(), flags=re.MULTILINE).group(1)
    docker = re.search(r"^ARG WARM=(\S+)$", (REPO / "Dockerfile").read_text(), flags=re.MULTILINE).group(1)
    assert make == docker
    for name in make.split(","):
        importlib.import_module(name)
