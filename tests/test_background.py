"""Background replacement: the picture is made upright first, the people are kept,
what is behind them is replaced (library, CLI)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from conftest import faceup_cli, jpeg_bytes, turn
from faceup import pipeline
from faceup.background import Replacement
from faceup.errors import BadOptionError, NotAPictureError

# astronaut (512x512, upright): her face, and the top-right corner (flag and sky,
# no person); checked on the mask below rather than assumed
FACE = (200, 80, 260, 150)
CORNER = (440, 0, 512, 60)


def region(img: Image.Image, box) -> np.ndarray:
    return np.asarray(img.crop(box), dtype=np.float32)


def test_the_mask_finds_the_person_and_has_soft_edges(astronaut):
    from faceup.background import person_mask

    m = np.asarray(person_mask(astronaut), dtype=np.float32)
    assert m.shape == (512, 512)
    assert m[FACE[1]:FACE[3], FACE[0]:FACE[2]].mean() > 240
    assert m[CORNER[1]:CORNER[3], CORNER[0]:CORNER[2]].mean() < 15
    soft = ((m > 20) & (m < 235)).mean()
    assert 0.001 < soft < 0.2  # a band of partial values along the outline, not a hard cut


def test_colour_background_on_a_turned_picture(astronaut):
    res = pipeline.background(jpeg_bytes(turn(astronaut, 90)), Replacement(color="#2040c0"))
    assert res.prediction.rotation == 90 and res.format == "JPEG"
    out = Image.open(io.BytesIO(res.data)).convert("RGB")
    assert out.size == (512, 512)
    corner = region(out, CORNER).reshape(-1, 3).mean(0)
    assert np.abs(corner - [0x20, 0x40, 0xC0]).max() < 12
    # the face is kept, upright (compared with the original upright picture)
    assert np.abs(region(out, FACE) - region(astronaut, FACE)).mean() < 8


def test_transparent_background_is_png_with_alpha(astronaut):
    res = pipeline.background(jpeg_bytes(turn(astronaut, 180)), Replacement(transparent=True))
    assert res.format == "PNG"
    out = Image.open(io.BytesIO(res.data))
    assert out.mode == "RGBA"
    alpha = np.asarray(out.getchannel("A"), dtype=np.float32)
    assert alpha[FACE[1]:FACE[3], FACE[0]:FACE[2]].mean() > 240
    assert alpha[CORNER[1]:CORNER[3], CORNER[0]:CORNER[2]].mean() < 15


def test_picture_and_blur_backgrounds(astronaut, coffee):
    buf = io.BytesIO()
    coffee.save(buf, "PNG")
    res = pipeline.background(jpeg_bytes(astronaut), Replacement(image=buf.getvalue()), pipeline.Options(format="png"))
    out = Image.open(io.BytesIO(res.data)).convert("RGB")
    from PIL import ImageOps

    fitted = ImageOps.fit(coffee, out.size, Image.Resampling.LANCZOS)
    assert np.abs(region(out, CORNER) - region(fitted, CORNER)).mean() < 10
    assert np.abs(region(out, FACE) - region(astronaut, FACE)).mean() < 8

    blurred = Image.open(io.BytesIO(pipeline.background(jpeg_bytes(astronaut), Replacement(blur=12)).data))
    # the corner loses its detail (the flag's stripes), the face keeps it
    detail = lambda img, box: np.abs(np.diff(region(img.convert("L"), box), axis=0)).mean()  # noqa: E731
    assert detail(blurred, CORNER) < 0.5 * detail(astronaut, CORNER)
    assert detail(blurred, FACE) > 0.7 * detail(astronaut, FACE)


@pytest.mark.parametrize("kwargs", [{}, {"color": "red", "blur": 3.0}, {"color": "not-a-colour"}, {"blur": -1.0},
                                    {"image": b""}])
def test_bad_choices_are_refused_before_any_work(kwargs):
    with pytest.raises(BadOptionError):
        Replacement(**kwargs)


def test_transparent_jpeg_is_refused(astronaut_small):
    with pytest.raises(BadOptionError, match="transparent"):
        pipeline.background(jpeg_bytes(astronaut_small), Replacement(transparent=True), pipeline.Options(format="jpeg"))


def test_a_bad_background_picture_says_which_file_is_wrong(astronaut_small):
    with pytest.raises(NotAPictureError, match="background picture"):
        pipeline.background(jpeg_bytes(astronaut_small), Replacement(image=b"not a picture at all" * 10))


def test_cli_background_writes_png_and_keeps_the_input(tmp_path, astronaut_small):
    src = tmp_path / "in.jpg"
    src.write_bytes(jpeg_bytes(turn(astronaut_small, 270)))
    before = src.read_bytes()
    res = faceup_cli("background", str(src), "--transparent", "--json")
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["rotation"] == 270 and obj["output"].endswith("in.background.png")
    assert Image.open(obj["output"]).mode == "RGBA"
    assert src.read_bytes() == before


def test_cli_background_output_name_chooses_the_format(tmp_path, astronaut_small):
    src = tmp_path / "in.jpg"
    src.write_bytes(jpeg_bytes(astronaut_small))
    res = faceup_cli("background", str(src), "-o", str(tmp_path / "out.webp"), "--color", "white")
    assert res.returncode == 0, res.stderr
    assert Image.open(tmp_path / "out.webp").format == "WEBP"
    bad = faceup_cli("background", str(src), "-o", str(tmp_path / "out.jpg"), "--transparent")
    assert bad.returncode == 2 and "transparent" in bad.stderr
    assert not (tmp_path / "out.jpg").exists()


def test_cli_background_goes_on_past_a_bad_file(tmp_path, astronaut_small):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_bytes(astronaut_small))
    (folder / "broken.jpg").write_bytes(b"no picture here")
    res = faceup_cli("background", str(folder), "-o", str(tmp_path / "out"), "--blur", "0")
    assert res.returncode == 1
    assert (tmp_path / "out" / "a.jpg").exists() and not (tmp_path / "out" / "broken.jpg").exists()
    assert "broken.jpg" in res.stderr and "1 of 2 pictures written" in res.stdout


def test_cli_transparent_folder_writes_png_files(tmp_path, astronaut_small):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg_bytes(astronaut_small))
    res = faceup_cli("background", str(folder), "-o", str(tmp_path / "out"), "--transparent")
    assert res.returncode == 0, res.stderr
    out = Image.open(tmp_path / "out" / "a.png")
    assert out.format == "PNG" and out.mode == "RGBA"
    assert not (tmp_path / "out" / "a.jpg").exists()


def test_every_preset_renders_at_the_pictures_size_the_same_each_time():
    from faceup import presets

    seen = set()
    for name in presets.NAMES:
        a = presets.render(name, (120, 90))
        assert a.size == (120, 90) and a.mode == "RGB"
        assert a.tobytes() == presets.render(name, (120, 90)).tobytes()  # deterministic
        seen.add(a.resize((8, 6)).tobytes())
    assert len(seen) >= 7  # they differ (auto without a picture is studio-grey)


def test_preset_parameters_are_read_and_checked():
    from faceup import presets
    from faceup.errors import BadOptionError

    red = presets.render("gradient:top=#ff0000,bottom=#ff0000", (10, 10))
    assert red.getpixel((5, 5)) == (255, 0, 0)
    for bad in ("nope", "gradient:top=notacolour", "rainbow:hue=3", "bokeh:count=-1"):
        with pytest.raises(BadOptionError):
            presets.parse(bad)


def test_auto_takes_the_colour_of_the_pictures_background():
    from faceup import presets

    picture = Image.new("RGB", (100, 100), (200, 30, 30))  # a red room
    mask = Image.new("L", (100, 100), 0)
    top = presets.render("auto", (50, 50), picture, mask).getpixel((25, 0))
    assert top[0] > top[1] + 40 and top[0] > top[2] + 40  # reddish


def test_background_with_a_preset_on_the_cli(tmp_path, astronaut_small):
    src = tmp_path / "in.jpg"
    src.write_bytes(jpeg_bytes(astronaut_small))
    out = tmp_path / "out.png"
    res = faceup_cli("background", str(src), "-o", str(out), "--preset", "sunset")
    assert res.returncode == 0, res.stderr
    corner = Image.open(out).convert("RGB").getpixel((250, 2))
    assert corner[0] > 200 and corner[2] < 160  # amber sky, not the photo's grey
    res = faceup_cli("background", str(src), "-o", str(out), "--preset", "nope")
    assert res.returncode == 2 and "one of" in res.stderr
