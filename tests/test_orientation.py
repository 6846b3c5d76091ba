"""The decision: test-time augmentation, calibration, the rotation convention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import faceup
from conftest import faceup_cli, jpeg_bytes, turn
from faceup import calibration, orientation, pipeline
from faceup.models.orientation import realign, tta_batch


def test_realign_maps_each_turned_copy_back():
    # A fake model that is perfectly sure: copy j of a picture with class k answers (k - j) mod 4.
    for k in range(4):
        logits = np.full((4, 4), -10.0)
        for j in range(4):
            logits[j, (k - j) % 4] = 10.0
        assert int(np.argmax(realign(logits))) == k


def test_tta_copies_are_counter_clockwise_turns():
    sq = np.zeros((4, 4, 3), dtype=np.uint8)
    sq[0] = 255
    batch = tta_batch(sq)
    expected = np.asarray(Image.fromarray(sq).transpose(Image.Transpose.ROTATE_90))
    assert np.array_equal(batch[1], expected)


def test_scores_are_a_distribution_and_follow_the_turn(astronaut_small):
    for r in (0, 90, 180, 270):
        est = orientation.estimate(turn(astronaut_small, r))
        assert abs(sum(est.scores) - 1) < 1e-5
        assert est.rotation == r
        assert est.confidence == max(est.scores)


def test_temperature_fit_recovers_an_overconfident_model():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 4000)
    true_logits = rng.normal(0, 1, (4000, 4))
    true_logits[np.arange(4000), labels] += 1.5
    # sample labels from the softmax of true_logits, then make the model 3x overconfident
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    t = calibration.fit_temperature(true_logits * 3, y)
    assert 2.5 < t < 3.5


def test_min_confidence_keeps_upright_turns_within_budget():
    conf = np.array([0.99, 0.97, 0.95, 0.9, 0.8, 0.7] + [0.99] * 194)
    pred = np.array([90, 180, 270, 90, 90, 90] + [0] * 194)
    thr = calibration.choose_min_confidence(conf, pred, max_turned=0.01)
    turned = ((pred != 0) & (conf >= thr)).mean()
    assert turned <= 0.01
    assert thr > 0.95


@pytest.mark.parametrize("angle", [100.0, 200.0, 305.0])
def test_scene_angle_reads_any_turn_of_a_clear_scene(angle):
    """The rocket on its launch pad (public domain): a scene with a clear vertical."""
    from skimage import data as skdata

    from faceup import geometry
    from faceup.models import get_model

    img = Image.fromarray(skdata.rocket())
    w, h = img.size
    turned = geometry.rotate(img, angle, expand=True).crop(geometry.crop_box_inscribed(w, h, angle))
    est, concentration = get_model("angle").predict(turned)
    assert abs((est - angle + 180) % 360 - 180) < 10
    assert 0.0 <= concentration <= 1.0


def test_sector_keeps_only_the_mass_near_an_angle():
    import numpy as np

    from faceup.models.angle import BINS, sector

    p = np.full(BINS, 1.0 / BINS)
    part = sector(p, 350.0)  # 305..35 degrees, across 0
    kept = np.nonzero(part)[0] * (360 / BINS)
    assert set(kept) == {a for a in np.arange(BINS) * (360 / BINS) if abs((a - 350 + 180) % 360 - 180) < 45}


def test_read_angle_picks_one_quarter_instead_of_averaging_two():
    """Two modes a quarter turn apart (30 and 120 degrees): the plain circular mean
    lands between them; the reading keeps the heavier one."""
    import numpy as np

    from faceup.models.angle import BINS, circular_mean, read_angle

    p = np.zeros(BINS)
    p[6], p[24] = 0.6, 0.4  # 30 and 120 degrees (5-degree bins)
    assert 50 < circular_mean(p[None])[0] < 80
    assert abs(read_angle(p) - 30.0) < 1e-6
    p[6], p[24] = 0.4, 0.6
    assert abs(read_angle(p) - 120.0) < 1e-6
    q = np.zeros(BINS)
    q[-1], q[1] = 0.5, 0.5  # 355 and 5: one mode across 0
    assert min(read_angle(q), 360 - read_angle(q)) < 1e-6


def test_scene_evidence_joins_where_the_classifier_is_unsure_and_no_face_is_found():
    from faceup import imageio, orientation
    from faceup.geometry import quarter_turn

    rocket = imageio.read(Path(faceup.__file__).parent / "samples" / "rocket-turned-90.jpg").image  # no face; the classifier alone is unsure
    for r in (0, 90, 180, 270):
        turned = quarter_turn(rocket, r)
        alone = orientation.estimate(turned)  # the default: no scene evidence (see SCENE_STRENGTH)
        both = orientation.estimate(turned, use_scene=True)
        assert alone.confidence < orientation.FACE_GATE and alone.faces_found == 0 and not alone.used_scene
        assert both.used_scene and both.rotation == alone.rotation == (90 + r) % 360
        # the product of the two experts, renormalised
        q = orientation.scene_quarters(turned)
        expected = np.array(alone.scores) * q ** orientation.SCENE_STRENGTH
        assert np.allclose(both.scores, expected / expected.sum(), atol=1e-4)


def test_scene_evidence_is_not_computed_when_the_classifier_is_sure(astronaut_small, monkeypatch):
    from faceup import orientation

    def boom(image):
        raise AssertionError("the angle model ran on a picture the classifier was sure of")

    monkeypatch.setattr(orientation, "scene_quarters", boom)
    o = orientation.estimate(astronaut_small, use_scene=True)
    assert o.confidence >= orientation.FACE_GATE and not o.used_scene


def test_predict_iter_answers_in_order_with_chunks_judged_at_once(astronaut_small):
    # 4 chunks of 3 judged two at a time: the answers come in input order, a bad
    # picture is an error in its own place, and they equal one-at-a-time answers
    rotations = [0, 90, 180, 270] * 2 + [90, 0, 270]
    sources = [jpeg_bytes(turn(astronaut_small, r)) for r in rotations]
    sources.insert(5, b"not a picture")
    names = [f"p{i}" for i in range(len(sources))]
    together = list(pipeline.predict_iter(sources, paths=names, workers=2, chunk=3))
    alone = list(pipeline.predict_iter(sources, paths=names, workers=1, chunk=1))
    assert [p.path for p in together] == names
    assert together[5].error and together[5].rotation is None
    expected = rotations[:5] + [None] + rotations[5:]
    assert [p.rotation for p in together] == expected
    assert [(p.rotation, round(p.confidence or 0, 6)) for p in together] == \
        [(p.rotation, round(p.confidence or 0, 6)) for p in alone]


def small_astronaut(astronaut) -> Image.Image:
    """The astronaut 160 px wide on a plain 640x480 picture: her face (about 35 px)
    is too small for the detector's view of the whole picture."""
    bg = Image.new("RGB", (640, 480), (90, 110, 100))
    bg.paste(astronaut.resize((160, 160)), (400, 300))
    return bg


def small_astronaut_at_a_launch(astronaut) -> Image.Image:
    """The astronaut 120 px wide on the photo of a rocket launch (640x480): her
    face (about 26 px) unseen in the whole views, and the classifier alone not
    sure of the picture."""
    from skimage import data as skdata

    bg = Image.fromarray(skdata.rocket()).resize((640, 480))
    bg.paste(astronaut.resize((120, 120)), (440, 340))
    return bg


def test_thorough_face_evidence_finds_a_small_face_the_whole_views_miss(astronaut):
    from faceup import faces
    from faceup.geometry import quarter_turn

    for r in (0, 90, 180, 270):
        turned = quarter_turn(small_astronaut(astronaut), r)
        assert not any(v.detections for v in faces.views(turned))
        ev = [v.evidence for v in faces.views(turned, fallback="tiles-eq")]
        assert int(np.argmax(ev)) == r // 90 and max(ev) > 0.1  # the view that turns it back upright
        plain, thorough = orientation.estimate(turned), orientation.estimate(turned, thorough=True)
        assert plain.faces_found == 0 and thorough.faces_found == 1
        assert plain.rotation == thorough.rotation == r
        assert thorough.confidence > plain.confidence


def test_thorough_option_makes_the_cli_sure_of_a_small_face(astronaut, tmp_path):
    import json

    from conftest import faceup_cli

    path = tmp_path / "small.jpg"
    path.write_bytes(jpeg_bytes(turn(small_astronaut_at_a_launch(astronaut), 90)))
    plain = json.loads(faceup_cli("predict", "--json", str(path)).stdout)
    thorough = json.loads(faceup_cli("predict", "--json", "--thorough", str(path)).stdout)
    assert plain["rotation"] == thorough["rotation"] == 90
    assert not plain["confident"] and thorough["confident"]


def test_hard_kind_makers_record_where_they_put_each_face(astronaut, coffee):
    import random

    from faceup.train import hard

    for kind, make in hard.MAKERS.items():
        boxes: list = []
        with_boxes = make(lambda: coffee, lambda: astronaut, random.Random(5), boxes)
        without = make(lambda: coffee, lambda: astronaut, random.Random(5))
        assert np.array_equal(np.asarray(with_boxes), np.asarray(without))  # recording changes nothing drawn
        assert boxes, kind
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= with_boxes.width and 0 <= y0 < y1 <= with_boxes.height


def test_fix_fine_judges_what_predict_fine_judges_from_a_path_bytes_or_a_file(tmp_path, astronaut):
    import io

    from faceup import pipeline

    path = tmp_path / "tilted.jpg"
    astronaut.rotate(-40, expand=True, fillcolor="white").save(path, quality=92)  # 720 px: decoded small to judge
    options = pipeline.Options(fine=True)
    said = pipeline.predict(path, options)
    for source in (path, path.read_bytes(), io.BytesIO(path.read_bytes())):
        fixed = pipeline.fix(source, options)
        assert (fixed.prediction.angle, fixed.prediction.confidence, fixed.prediction.confident) == \
            (said.angle, said.confidence, said.confident)


def test_a_picture_without_a_face_needs_the_stricter_threshold_unless_the_user_gives_one(astronaut_small):
    rocket = Path(faceup.__file__).parent / "samples" / "rocket-turned-90.jpg"  # no face; the classifier 0.9
    strict, usual = orientation.default_min_confidence(no_face=True), orientation.default_min_confidence()
    assert strict > usual
    pred = pipeline.predict(rocket)
    assert pred.rotation == 90 and usual <= pred.confidence < strict and not pred.confident
    assert pipeline.Options().threshold(no_face=True) == strict
    given = pipeline.predict(rocket, pipeline.Options(min_confidence=usual))
    assert given.confident and given.rotation == 90  # a threshold the user gives applies to every picture
    turned = pipeline.predict(jpeg_bytes(turn(astronaut_small, 90)))  # a face: the usual threshold
    assert turned.rotation == 90 and turned.confident


def test_fix_says_which_threshold_a_picture_without_a_face_fell_below(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    samples = Path(faceup.__file__).parent / "samples"
    (src / "rocket.jpg").write_bytes((samples / "rocket-turned-90.jpg").read_bytes())
    (src / "cameraman.png").write_bytes((samples / "cameraman-upside-down.png").read_bytes())  # the summary needs two
    res = faceup_cli("fix", str(src), "-o", str(tmp_path / "out"))
    said = " ".join((res.stdout + res.stderr).split())
    strict = orientation.default_min_confidence(no_face=True)
    assert f"is below {strict:.3f}, the threshold where no face is found" in said, said
    assert (tmp_path / "out" / "rocket.jpg").read_bytes() == (src / "rocket.jpg").read_bytes()  # left as it is
