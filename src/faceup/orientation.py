"""The decision: how is the displayed picture turned, and how sure are we."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from faceup.models import get_model
from faceup.models.orientation import ROTATIONS, OrientationModel

#: Used when the registry carries no calibrated default.
FALLBACK_MIN_CONFIDENCE = 0.9

#: The cascade: face evidence is looked for only when the classifier is less sure
#: than this (about 5% of photos of people; it costs four detector runs).
FACE_GATE = 0.995
#: Weight of the face evidence (log-likelihood units per unit of evidence). The
#: held-out accuracy is flat for strengths 4 to 12 (benchmarks/stages.py); 6 sits
#: in the middle of that plateau.
FACE_STRENGTH = 6.0


@dataclass(frozen=True)
class Orientation:
    """rotation: degrees clockwise the displayed picture is turned away from
    upright (0, 90, 180 or 270); `fix` turns it back counter-clockwise.
    confidence: calibrated probability that `rotation` is right."""

    rotation: int
    confidence: float
    scores: tuple[float, float, float, float]
    used_faces: bool = False
    faces_found: int = 0


def model() -> OrientationModel:
    m = get_model("orientation")
    assert isinstance(m, OrientationModel)
    return m


def default_min_confidence() -> float:
    return float(model().info.meta.get("min_confidence", FALLBACK_MIN_CONFIDENCE))


def estimate(image: Image.Image, tta: bool | None = None, use_faces: bool = True) -> Orientation:
    """The classifier (with test-time augmentation), then, where it is not sure,
    face evidence from the four quarter turns, combined as a product of experts."""
    p = model().scores(image, tta=tta)
    used, found = False, 0
    if use_faces and p.max() < FACE_GATE:
        from faceup import faces

        views = faces.views(image)
        found = max(len(v.detections) for v in views)
        logp = np.log(np.clip(p, 1e-12, 1.0)) + faces.evidence_log_likelihood(views, FACE_STRENGTH)
        logp -= logp.max()
        p = np.exp(logp) / np.exp(logp).sum()
        used = True
    k = int(np.argmax(p))
    return Orientation(rotation=ROTATIONS[k], confidence=float(p[k]), scores=tuple(float(v) for v in p),
                       used_faces=used, faces_found=found)


#: Weight of the quarter-turn classifier against the generic angle model in
#: `scene_angle` (log-probability units). On the validation scenes (292, random
#: angles) weights 0, 0.5, 1, 2, 4 gave mean errors 8.35, 7.18, 8.15, 8.78, 13.69
#: degrees: 0.5.
SCENE_CLASSIFIER_WEIGHT = 0.5


def scene_angle(image: Image.Image, tta: bool = True) -> tuple[float, float]:
    """How many degrees (clockwise) a picture is turned, read from the scene: the
    generic angle model's posterior, whose doubts are mostly between quarter turns
    of the same fine angle, settled with the quarter-turn classifier on the
    picture levelled by that fine angle. Answers (angle, concentration of the
    angle model's posterior)."""
    from faceup import geometry
    from faceup.models.angle import AngleModel, circular_mean, concentration, sector

    am = get_model("angle")
    assert isinstance(am, AngleModel)
    p = am.posterior(image, tta)
    first = float(circular_mean(p[None])[0])
    fine = (first + 45.0) % 90.0 - 45.0  # the angle within its quarter, -45..45
    w, h = image.size
    level = geometry.rotate(image.convert("RGB"), -fine, expand=True).crop(geometry.crop_box_inscribed(w, h, -fine))
    q = model().scores(level, tta=tta)
    best, best_score = first, -np.inf
    for k in range(4):
        part = sector(p, fine + 90.0 * k)
        score = np.log(part.sum() + 1e-9) + SCENE_CLASSIFIER_WEIGHT * np.log(q[k] + 1e-9)
        if score > best_score:
            best, best_score = float(circular_mean(part[None])[0]), score
    return best % 360.0, concentration(p)
