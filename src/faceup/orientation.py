"""The decision: how is the displayed picture turned, and how sure are we."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from faceup.models import get
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
#: Weight of the scene evidence (`use_scene=True`, off by default): where the
#: classifier is not sure and no face is found, the generic angle model's posterior
#: summed over each quarter's 90-degree sector joins the product (log-probability
#: units). Chosen on the validation scenes (benchmarks/scene_evidence.py: 4-way
#: 97.35% -> 98.03%), but on the held-out photos of people it did harm (99.34% ->
#: 98.82%: the angle model learnt scenes without people), so it is not used by
#: default; see the README's "tried and not kept".
SCENE_STRENGTH = 1.0
#: With `thorough`, where the classifier is unsure and the four whole views show no
#: face, the face evidence looks again in tiles (small faces) and at the views with
#: the contrast stretched (grey, high-contrast faces): faces.EVIDENCE_FALLBACKS.
#: Not the default: on validation pictures of the hard kinds (faceup.train.hard) it is right
#: more often (91.9 -> 93.6%), but it costs about 100 ms more on each unsure photo
#: of people without a clear face (benchmarks/face_evidence.py; README).
THOROUGH_FALLBACK = "tiles-eq"


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
    used_scene: bool = False


def model() -> OrientationModel:
    return get(OrientationModel)


def default_min_confidence(no_face: bool = False) -> float:
    """The calibrated default --min-confidence; with `no_face`, the one for a
    picture in which the cascade looked for a face and found none (stricter: chosen
    on upright validation pictures without faces, where mistakes are likelier)."""
    meta = model().info.meta
    default = float(meta.get("min_confidence", FALLBACK_MIN_CONFIDENCE))
    return max(default, float(meta.get("min_confidence_no_face", default))) if no_face else default


def estimate(image: Image.Image, tta: bool | None = None, use_faces: bool = True,
             use_scene: bool = False, thorough: bool = False) -> Orientation:
    """The classifier (with test-time augmentation), then, where it is not sure,
    face evidence from the four quarter turns (with use_scene, where no face is
    found, the generic angle model's reading of the scene), combined as a product
    of experts. `thorough`: see THOROUGH_FALLBACK."""
    return estimate_many([image], tta, use_faces, use_scene=use_scene, thorough=thorough)[0]


def estimate_many(images: list[Image.Image], tta: bool | None = None, use_faces: bool = True,
                  squares: list[np.ndarray] | None = None, use_scene: bool = False,
                  thorough: bool = False) -> list[Orientation]:
    """`estimate` for many pictures: the classifier runs on all of them at once
    (`squares`: the classifier's inputs, when already made)."""
    scores = model().scores_many(images, tta=tta, squares=squares)
    return [_decide(image, p, use_faces, use_scene, thorough) for image, p in zip(images, scores)]


def classifier_input(image: Image.Image) -> np.ndarray:
    """What the classifier sees of a picture (made ahead, e.g. in a decoding thread)."""
    from faceup.models.orientation import INPUT_SIZE
    from faceup.models.preprocess import square_input

    return square_input(image, INPUT_SIZE)


def scene_quarters(image: Image.Image) -> np.ndarray:
    """The generic angle model's probability that the picture is turned by about
    0, 90, 180 or 270 degrees (its posterior summed within 45 degrees of each)."""
    from faceup.models.angle import AngleModel, sector

    post = get(AngleModel).posterior(image)
    return np.array([sector(post, 90.0 * k).sum() for k in range(4)])


def _decide(image: Image.Image, p: np.ndarray, use_faces: bool, use_scene: bool = False,
            thorough: bool = False) -> Orientation:
    used, found, scene = False, 0, False
    if p.max() < FACE_GATE and (use_faces or use_scene):
        logp = np.log(np.clip(p, 1e-12, 1.0))
        if use_faces:
            from faceup import faces

            views = faces.views(image, fallback=THOROUGH_FALLBACK if thorough else "none")
            found = max(len(v.detections) for v in views)
            logp = logp + faces.evidence_log_likelihood(views, FACE_STRENGTH)
            used = True
        if use_scene and found == 0:
            logp = logp + SCENE_STRENGTH * np.log(np.clip(scene_quarters(image), 1e-6, 1.0))
            scene = True
        logp -= logp.max()
        p = np.exp(logp) / np.exp(logp).sum()
    k = int(np.argmax(p))
    return Orientation(rotation=ROTATIONS[k], confidence=float(p[k]), scores=tuple(float(v) for v in p),
                       used_faces=used, faces_found=found, used_scene=scene)
