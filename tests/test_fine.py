"""--fine: any angle, from the main face's eye line; fix --fine levels the face."""

from __future__ import annotations

import json

import pytest
from conftest import faceup_cli
from PIL import Image

from faceup import geometry


def turned_by(img: Image.Image, angle: float) -> Image.Image:
    rot = geometry.rotate(img, angle, expand=True)
    return rot.crop(geometry.crop_box_inscribed(img.width, img.height, angle))


def angle_of(path) -> float:
    res = faceup_cli("predict", "--json", "--fine", str(path))
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["angle"] is not None and 0 <= obj["angle"] < 360
    assert obj["rotation"] == int(round(obj["angle"] / 90)) % 4 * 90
    return obj["angle"]


def circular_diff(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


@pytest.mark.parametrize("angle", [17.0, 128.0, 140.0, 250.0, 313.0, 333.0])  # 140, 313: between two quarters
def test_fine_angle_follows_the_turn(tmp_path, astronaut, angle):
    up = tmp_path / "up.png"
    astronaut.save(up)
    level = angle_of(up)  # the astronaut's own head tilt, a few degrees
    assert circular_diff(level, 0) < 12
    p = tmp_path / "turned.png"
    turned_by(astronaut, angle).save(p)
    # measured precision of the landmark roll is a few degrees (README)
    assert circular_diff(angle_of(p), angle + level) < 6


def test_fix_fine_levels_the_face_and_crops_no_empty_corners(tmp_path, astronaut):
    p = tmp_path / "turned.jpg"
    turned_by(astronaut, 200).save(p, quality=92)
    out = tmp_path / "fixed.jpg"
    res = faceup_cli("fix", "--fine", str(p), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert circular_diff(angle_of(out), 0) < 12
    # cropped to the largest upright rectangle for the angle found (no empty corners)
    src_w, src_h = Image.open(p).size
    pred = json.loads(faceup_cli("predict", "--json", "--fine", str(p)).stdout)
    x0, y0, x1, y1 = geometry.crop_box_inscribed(src_w, src_h, pred["angle"])
    assert Image.open(out).size == (x1 - x0, y1 - y0)


def test_fix_fine_expand_fills_the_corners(tmp_path, astronaut_small):
    p = tmp_path / "turned.png"
    turned_by(astronaut_small, 40).save(p)
    out = tmp_path / "fixed.png"
    res = faceup_cli("fix", "--fine", "--expand", "--fill", "#00ff00", str(p), "-o", str(out))
    assert res.returncode == 0, res.stderr
    img = Image.open(out).convert("RGB")
    assert img.size[0] > Image.open(p).size[0]
    assert img.getpixel((0, 0)) == (0, 255, 0)


def test_a_bad_fill_is_a_clear_error(tmp_path, astronaut_small):
    p = tmp_path / "a.png"
    astronaut_small.save(p)
    res = faceup_cli("fix", "--fine", "--expand", "--fill", "not-a-colour", str(p), "-o", str(tmp_path / "o.png"))
    assert res.returncode == 2 and "fill" in res.stderr


def test_a_clear_face_overrules_a_confidently_wrong_quarter_turn(astronaut):
    """A face turned near 45 degrees can be put in the wrong quarter by the
    classifier, confidently; the face's own clear reading decides then (it used
    to be thrown away, 150 degrees off). The classifier's wrong decision is given
    here as it comes from estimate_many; the face is found by the real detectors."""
    from faceup import faces, imageio, orientation, pipeline

    turned = turned_by(astronaut.resize((384, 384)), 35.0)
    picture = imageio.read(turned)
    view = imageio.eight_bit(picture.image)
    small = view.copy()
    small.thumbnail((pipeline.FINE_SIDE, pipeline.FINE_SIDE))
    roll = faces.fine_angle(small, hint_cw=180)
    assert roll is not None and roll.quality >= pipeline.FACE_DECIDES_QUALITY and circular_diff(roll.angle, 35) < 5
    wrong = orientation.Orientation(rotation=180, confidence=0.99, scores=(0.0, 0.0, 0.99, 0.01))
    pred = pipeline._estimate(picture, pipeline.Options(fine=True), None, wrong)
    assert pred.rotation == 0 and circular_diff(pred.angle, 35) < 5, pred


def test_fine_always_asks_the_classifier_for_the_four_turns(astronaut_small, monkeypatch):
    from faceup import pipeline
    from faceup.models.orientation import OrientationModel

    asked = []
    real = OrientationModel.scores_many

    def spy(self, pictures, tta=None, squares=None):
        asked.append(tta)
        return real(self, pictures, tta, squares)

    monkeypatch.setattr(OrientationModel, "scores_many", spy)
    pipeline.predict(astronaut_small, pipeline.Options(fine=True))
    pipeline.predict(astronaut_small)
    pipeline.predict(astronaut_small, pipeline.Options(fine=True, tta=False))
    assert asked == [True, None, False]  # --fine: four turns; otherwise the cascade; a given tta wins


def test_the_face_mesh_reads_the_eye_line_of_a_tilted_face(astronaut):
    """The last correction of --fine: the eye outlines of MediaPipe's face mesh. A
    face crop turned by a known angle reads that much more tilt (the eye line is
    measured, not guessed from the crop), mirrored it reads the opposite, and a crop
    with no face is not read at all."""
    from faceup import faces
    from faceup.models import get
    from faceup.models.facemesh import FaceMeshModel

    mesh = get(FaceMeshModel)
    d = faces.largest_face(astronaut)
    cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
    half = 0.75 * (d.box[2] - d.box[0])
    crop = astronaut.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))
    level = mesh.eye_roll(crop)
    assert level is not None and abs(level) < 10
    for turn in (-12.0, 8.0):
        tilted = crop.rotate(-turn, resample=Image.Resampling.BICUBIC)  # PIL turns counter-clockwise
        assert abs(mesh.eye_roll(tilted) - (level + turn)) < 1.5
    assert abs(mesh.eye_roll(crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)) + level) < 1.5
    assert mesh.eye_roll(Image.new("RGB", crop.size, (120, 160, 200))) is None


def test_fine_takes_its_last_correction_from_the_face_mesh(astronaut, monkeypatch):
    """--fine's last step reads the mesh (on the view and its mirror image); with the
    mesh unable to see a face, the BlazeFace readings stand."""
    from faceup import faces
    from faceup.models.facemesh import FaceMeshModel

    read = []
    real = FaceMeshModel.eye_roll

    def spy(self, crop):
        read.append(real(self, crop))
        return read[-1]

    monkeypatch.setattr(FaceMeshModel, "eye_roll", spy)
    turned = turned_by(astronaut.resize((384, 384)), 25.0)
    roll = faces.fine_angle(turned)
    assert len(read) >= 2 and None not in read and circular_diff(roll.angle, 25) < 6  # the crop and its mirror
    monkeypatch.setattr(FaceMeshModel, "eye_roll", lambda self, crop: None)
    without = faces.fine_angle(turned)
    assert circular_diff(without.angle, 25) < 6 and without.angle != roll.angle
