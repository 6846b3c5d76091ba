"""faceup analyze: the orientation fix first, then every face in the upright picture's coordinates."""

from __future__ import annotations

import json

import httpx
import pytest
from PIL import Image

from conftest import faceup_cli, jpeg_bytes, turn
from test_server import server  # noqa: F401 - the real server fixture

FACE_KEYS = ["box", "score", "landmarks", "smile", "age", "gender", "gender_score"]
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
    assert faces._detect(crop, faces.DETECT_MIN_SCORE) == []  # the case this is about
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
    assert faces.detect_all(scene, tiling="whole") == []  # too small for the detector's 192 px view
    found = faces.detect_all(scene)  # the default looks at 2 x 2 tiles too
    assert len(found) == 1
    x0, y0, x1, y1 = found[0].box
    assert 295 <= x0 and x1 <= 350 and 95 <= y0 and y1 <= 155
