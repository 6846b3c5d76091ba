"""One vectorised Faces type that every stage passes along: detected, shifted,
merged, unturned, clipped, scaled, given attributes, written as JSON."""

import numpy as np
import pytest
from conftest import turn

from faceup import faces, geometry
from faceup.faces import Faces
from faceup.models.blazeface import Detection


def two() -> Faces:
    kp = np.arange(24, dtype=np.float64).reshape(2, 6, 2)
    return Faces(np.array([[10.0, 20, 50, 60], [12, 22, 52, 62]]), kp, np.array([0.9, 0.6]))


def test_faces_move_as_one():
    f = two().with_attributes(landmarks=np.ones((2, 5, 2)), smile=np.array([0.1, 0.8]))
    s = f.shifted(5, -2).scaled(2.0)
    assert s.boxes.tolist() == [[30.0, 36, 110, 116], [34, 40, 114, 120]]
    assert np.allclose(s.keypoints, (f.keypoints + [5, -2]) * 2)
    assert np.allclose(s.attributes["landmarks"], (1 + np.array([5, -2])) * 2)  # a point attribute moves
    assert s.attributes["smile"].tolist() == [0.1, 0.8]  # a number does not
    c = f.clipped(40, 40)
    assert c.boxes.tolist() == [[10, 20, 40, 40], [12, 22, 40, 40]]
    assert len(Faces.none()) == 0 and not Faces.none() and Faces.none().largest() is None


def test_merged_keeps_one_face_per_place_weighted_by_score():
    m = two().merged()
    assert len(m) == 1 and m.scores.tolist() == [0.9]
    assert np.allclose(m.boxes[0], (0.9 * np.array([10, 20, 50, 60]) + 0.6 * np.array([12, 22, 52, 62])) / 1.5)
    far = Faces.joined([[two()[0]], Faces.of([two()[1]]).shifted(500, 0)])
    assert len(far.merged()) == 2


def test_each_face_is_a_detection_with_its_attributes():
    f = two().with_attributes(gender=np.array(["female", "male"], dtype=object))
    d = f[1]
    assert isinstance(d, Detection) and d.box == (12.0, 22.0, 52.0, 62.0) and d.score == 0.6
    assert d.gender == "male" and d.smile is None and d.width == 40.0
    assert [x.gender for x in f] == ["female", "male"]


@pytest.mark.parametrize("quarters", [1, 2, 3])
def test_unturned_boxes_hold_the_same_face_in_the_picture(astronaut_small, quarters):
    """In a picture turned by quarter turns, the face found in the view turned back
    to upright, unturned, lies where the upright face's box lands in that picture."""
    w, h = astronaut_small.size
    upright = faces.detect_all(astronaut_small).largest()
    turned = turn(astronaut_small, 90 * quarters)
    view = geometry.quarter_turn(turned, -90 * quarters)  # upright again
    back = faces.Faces.of(faces.detector().detect(view)).unturned(quarters, *turned.size).largest()
    expected = geometry.map_box(upright.box, w, h, 90 * quarters)
    assert back is not None
    assert np.abs(np.array(back.box) - np.array(expected)).max() < 0.12 * upright.width, (back.box, expected)


def test_analysis_faces_are_faces_and_json_as_before(astronaut_small):
    from faceup import pipeline

    res = pipeline.analyze(turn(astronaut_small, 90))
    assert isinstance(res.faces, Faces) and len(res.faces) == 1
    (face,) = res.to_json()["faces"]
    assert list(face) == ["box", "score", "landmarks", "smile", "age", "gender", "gender_score", "whole_picture"]
    assert face["whole_picture"] is False  # a face was found
    assert len(face["landmarks"]) == 5 and face["gender"] in ("female", "male")
    x0, y0, x1, y1 = face["box"]
    w, h = res.upright_size
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
