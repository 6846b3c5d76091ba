"""The decision: how is the displayed picture turned, and how sure are we."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from faceup.models import get_model
from faceup.models.orientation import ROTATIONS, OrientationModel

#: Used when the registry carries no calibrated default.
FALLBACK_MIN_CONFIDENCE = 0.9


@dataclass(frozen=True)
class Orientation:
    """rotation: degrees clockwise the displayed picture is turned away from
    upright (0, 90, 180 or 270); `fix` turns it back counter-clockwise.
    confidence: calibrated probability that `rotation` is right."""

    rotation: int
    confidence: float
    scores: tuple[float, float, float, float]


def model() -> OrientationModel:
    m = get_model("orientation")
    assert isinstance(m, OrientationModel)
    return m


def default_min_confidence() -> float:
    return float(model().info.meta.get("min_confidence", FALLBACK_MIN_CONFIDENCE))


def estimate(image: Image.Image, tta: bool = True) -> Orientation:
    p = model().scores(image, tta=tta)
    k = int(np.argmax(p))
    return Orientation(rotation=ROTATIONS[k], confidence=float(p[k]), scores=tuple(float(v) for v in p))
