"""faceup analyze: the orientation fix first, then every face in the upright picture's coordinates."""

from __future__ import annotations

import json

import httpx
import pytest
from PIL import Image

from conftest import faceup_cli, jpeg_bytes, turn

FACE_KEYS = ["box", "score", "landmarks", "smile", "age", "gender", "gender_score", "whole_picture"]
# where the astronaut's face is in the upright 512x512 picture (BlazeFace, checked by eye)
ASTRONAUT_FACE = (177, 81, 272, 175)


@pytest.fixture(scope="module")
def group(astronaut):
    """Two people side by side: the astronaut and her mirror image, 1024x512."""
    img = Image.new("RGB", (1024, 512))
    img.paste(astronaut, (0, 0))
    img.paste(astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    return img


def expected_boxes():
    x0, y0, x1, y1 = ASTRONAUT_FACE
    return [ASTRONAUT_FACE, (1024 - x1, y0, 1024 - x0, y1)]


def close(box, ref, tol=20):
    return all(abs(a - b) <= tol for a, b in zip(box, ref))


def test_group_photo_upside_down_comes_back_upright_with_every_face_boxed(tmp_path, group):
    p = tmp_path / "group.jpg"
    p.write_bytes(jpeg_bytes(turn(group, 180)))
    res = faceup_cli("analyze", "--json", str(p))
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["rotation"] == 180 and obj["confident"] is True
    faces = sorted(obj["faces"], key=lambda f: f["box"][0])
    assert len(faces) == 2
    for face, ref in zip(faces, expected_boxes()):
        assert list(face) == FACE_KEYS
        assert close(face["box"], ref), (face["box"], ref)
        assert len(face["landmarks"]) == 5
        (rx, ry), (lx, ly) = face["landmarks"][:2]
        assert rx < lx and ry < face["landmarks"][2][1]  # upright: right eye left of left eye, eyes above nose
        assert 0 <= face["smile"] <= 1 and 0 < face["age"] < 110
        assert face["gender"] in ("male", "female") and 0.5 <= face["gender_score"] <= 1


def test_astronaut_smiles(tmp_path, astronaut):
    p = tmp_path / "a.png"
    astronaut.save(p)
    obj = json.loads(faceup_cli("analyze", "--json", "--only", "faces,smile", str(p)).stdout)
    assert len(obj["faces"]) == 1
    face = obj["faces"][0]
    assert face["smile"] > 0.5
    assert face["age"] is None and face["gender"] is None  # not asked


def test_a_picture_without_faces_answers_an_empty_list(tmp_path):
    from skimage import data

    p = tmp_path / "rocket.jpg"
    p.write_bytes(jpeg_bytes(Image.fromarray(data.rocket())))
    res = faceup_cli("analyze", "--json", str(p))
    assert res.returncode == 0
    assert json.loads(res.stdout)["faces"] == []


def test_unknown_analysis_is_a_usage_error(tmp_path, coffee):
    p = tmp_path / "coffee.jpg"
    p.write_bytes(jpeg_bytes(coffee))
    res = faceup_cli("analyze", "--only", "race", str(p))
    assert res.returncode == 2 and "--only" in res.stderr


def test_analyze_endpoint(server, group):  # noqa: F811
    r = httpx.post(server + "/analyze", files={"file": ("g.jpg", jpeg_bytes(turn(group, 90)))}, timeout=60)
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["rotation"] == 90 and len(obj["faces"]) == 2
    bad = httpx.post(server + "/analyze", files={"file": ("t.jpg", b"text, not a picture" * 30)}, timeout=30)
    assert bad.status_code == 415 and "error" in bad.json()


def test_a_picture_that_is_all_face_still_gets_its_face(tmp_path, astronaut):
    """A tight 64x64 face crop (as face datasets ship them): the detectors alone
    miss it; faceup looks again with room around it."""
    from faceup import faces

    crop = astronaut.crop((185, 80, 265, 170)).resize((64, 64), Image.Resampling.LANCZOS)
    assert len(faces._detect(crop, faces.DETECT_MIN_SCORE)) == 0  # the case this is about
    p = tmp_path / "face.jpg"
    p.write_bytes(jpeg_bytes(crop))
    res = faceup_cli("analyze", "--json", str(p))
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)["faces"]
    assert len(found) == 1
    x0, y0, x1, y1 = found[0]["box"]
    assert 0 <= x0 < 10 and 0 <= y0 < 10 and 54 < x1 <= 64 and 54 < y1 <= 64  # inside the picture
    assert found[0]["smile"] is not None and found[0]["gender"] in ("female", "male")


def test_a_small_face_in_a_wide_picture_is_found_by_looking_at_tiles(astronaut, coffee):
    from faceup import faces

    face = astronaut.crop((150, 20, 330, 220)).resize((44, 49))
    scene = coffee.resize((480, 360))
    scene.paste(face, (300, 100))
    assert len(faces.detect_all(scene, tiling="whole")) == 0  # too small for the detector's 192 px view
    found = faces.detect_all(scene)  # the default looks at 2 x 2 tiles too
    assert len(found) == 1
    x0, y0, x1, y1 = found[0].box
    assert 295 <= x0 and x1 <= 350 and 95 <= y0 and y1 <= 155


def test_the_gender_chip_puts_the_eyes_where_the_network_expects_them():
    """A tilted face: a red dot at the detector's right-eye keypoint (image left) and a
    green one at the left eye land on the template's eye centres of the 150 px chip,
    each on its own side, level, whatever the tilt and scale; nothing else is bright."""
    import numpy as np

    from faceup import faces
    from faceup.models.attributes import CHIP_EYES, GENDER_CHIP
    from faceup.models.blazeface import Detection

    img = Image.new("RGB", (400, 300), (40, 40, 40))
    right_eye, left_eye = (150.0, 170.0), (230.0, 120.0)  # tilted by 32 degrees
    for (x, y), colour in ((right_eye, (255, 0, 0)), (left_eye, (0, 255, 0))):
        img.paste(colour, (int(x) - 2, int(y) - 2, int(x) + 3, int(y) + 3))
    d = Detection(box=(120, 90, 280, 250), score=0.9,
                  keypoints=np.array([right_eye, left_eye, (200, 180), (210, 210), (100, 150), (280, 120)]))
    chip = faces.aligned_chip(img, d)
    assert chip.shape == (3, GENDER_CHIP, GENDER_CHIP) and chip.dtype == np.float32
    for channel, (cx, cy) in zip((0, 1), CHIP_EYES):
        ys, xs = np.nonzero(chip[channel] > 128)
        assert len(xs), channel
        assert abs(xs.mean() - cx) < 1.5 and abs(ys.mean() - cy) < 1.5, (channel, xs.mean(), ys.mean(), cx, cy)
        assert xs.max() - xs.min() < 10 and ys.max() - ys.min() < 10  # one dot, not smeared
    assert (chip[2] < 60).all()  # no blue: nothing but the two dots and the dark picture


def test_gender_reads_the_astronaut_and_her_mirror_image_alike(tmp_path, group):
    """Eileen Collins (the astronaut), and her mirror image beside her: the same answer
    for both, and a score that says how sure (the gender read-out of the face network)."""
    p = tmp_path / "group.png"
    group.save(p)
    found = sorted(json.loads(faceup_cli("analyze", "--json", "--only", "gender", str(p)).stdout)["faces"],
                   key=lambda f: f["box"][0])
    assert [f["gender"] for f in found] == ["female", "female"]
    assert all(f["gender_score"] > 0.7 for f in found)
    assert all(f["age"] is None and f["smile"] is None for f in found)


def test_a_child_gets_the_age_gender_models_gender_an_adult_the_face_networks(monkeypatch, astronaut):
    """Below faces.CNN_GENDER_BELOW_AGE (as the age/gender CNN reads the age), the CNN's
    gender is the answer; above it, the face network's read-out."""
    from faceup import faces
    from faceup.models import get_model

    assert faces.gender_of((5.0, "male", 0.8), ("female", 0.9)) == ("male", 0.8)
    assert faces.gender_of((30.0, "male", 0.8), ("female", 0.9)) == ("female", 0.9)
    cnn = get_model("agegender")
    real = cnn.predict
    readout = get_model("gender").predict([faces.aligned_chip(astronaut, faces.detect_all(astronaut)[0])])[0]
    for age in (6.0, 40.0):
        # the CNN's reading with its age replaced, and its gender the opposite of the read-out's
        other = "male" if readout[0] == "female" else "female"
        monkeypatch.setattr(cnn, "predict", lambda crops, age=age, other=other: [(age, other, 0.66) for _ in real(crops)])
        (face,) = faces.analyze(astronaut, ("gender",))
        assert (face.gender, round(face.gender_score, 2)) == ((other, 0.66) if age < 13 else
                                                              (readout[0], round(readout[1], 2)))


def tight_face_crop(astronaut) -> Image.Image:
    """The astronaut's face cut tight (brow to chin, no hair, no ears), 64 px: a
    picture that is itself a face, in which the detectors find none as it is."""
    from faceup import faces

    x0, y0, x1, y1 = faces.detect_all(astronaut).largest().box
    w, h = x1 - x0, y1 - y0
    return astronaut.crop((int(x0 + w / 4), int(y0 + h / 4), int(x1 - w / 4), int(y1 - h / 4))).resize((64, 64))


def test_a_picture_that_is_a_face_crop_is_analysed_as_one_face_and_says_so(tmp_path, astronaut):
    from faceup import faces

    crop = tight_face_crop(astronaut)
    assert len(faces.detect_all(crop)) == 0  # the detectors alone see no face in it
    p = tmp_path / "face.png"
    crop.save(p)
    res = faceup_cli("analyze", "--json", str(p))
    assert res.returncode == 0, res.stderr
    (face,) = json.loads(res.stdout)["faces"]
    assert face["whole_picture"] is True
    x0, y0, x1, y1 = face["box"]
    assert (x1 - x0) * (y1 - y0) >= 0.25 * 64 * 64
    assert face["smile"] is not None and face["age"] is not None and face["gender"] in ("female", "male")


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_a_small_square_picture_without_a_face_gets_no_face(tmp_path, request, name):
    # shaped like a face crop (small, near square), but a cat and a cup: the witness says no
    from faceup import faces

    img = request.getfixturevalue(name).resize((90, 60))
    assert len(faces.detect_all(img)) == 0
    assert faces.whole_picture_face(img, witness=False) is not None  # the detectors' low-score look alone would fire
    p = tmp_path / f"{name}.png"
    img.save(p)
    res = faceup_cli("analyze", "--json", str(p))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["faces"] == []
