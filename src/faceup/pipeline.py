"""The one place the steps are chained: read -> estimate -> (turn back, encode).

The CLI and the HTTP server are thin doors over `predict` and `fix`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO

from faceup import imageio, orientation
from faceup.errors import FaceupError
from faceup.models.orientation import INPUT_SIZE

#: JPEGs are decoded at a reduced scale for prediction (draft mode); the model
#: sees INPUT_SIZE px, so twice that is plenty.
PREDICT_DECODE_SIDE = 2 * INPUT_SIZE

Source = str | os.PathLike | bytes | BinaryIO


@dataclass
class Options:
    """min_confidence: below it `fix` leaves the picture as it is (None: the
    calibrated default shipped with the model). tta: average over the four turns."""

    min_confidence: float | None = None
    tta: bool = True
    max_pixels: int = imageio.DEFAULT_MAX_PIXELS
    format: str | None = None

    def threshold(self) -> float:
        return orientation.default_min_confidence() if self.min_confidence is None else self.min_confidence


@dataclass
class Prediction:
    """One picture's answer. `to_json` is the CLI/HTTP contract, key for key."""

    path: str | None
    rotation: int | None = None
    confidence: float | None = None
    confident: bool | None = None
    angle: float | None = None
    exif_orientation: int | None = None
    error: str | None = None
    scores: tuple[float, ...] | None = field(default=None, repr=False)
    size: tuple[int, int] | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "rotation": self.rotation,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "confident": self.confident,
            "angle": self.angle,
            "exif_orientation": self.exif_orientation,
            "error": self.error,
        }

    @property
    def turned(self) -> bool:
        """Whether `fix` turns the picture (not counting the EXIF orientation)."""
        return bool(self.confident and self.rotation)


@dataclass
class Fixed:
    prediction: Prediction
    data: bytes
    format: str


def _estimate(picture: imageio.Picture, options: Options, path: str | None) -> Prediction:
    est = orientation.estimate(picture.image, tta=options.tta)
    return Prediction(
        path=path, rotation=est.rotation, confidence=est.confidence,
        confident=est.confidence >= options.threshold(), angle=None,
        exif_orientation=picture.exif_orientation, scores=est.scores, size=picture.size,
    )


def predict(source: Source, options: Options | None = None, path: str | None = None) -> Prediction:
    """Estimate how the picture is turned. Never raises for a bad picture: the
    answer carries `error` instead, so a batch goes on."""
    options = options or Options()
    if path is None and isinstance(source, (str, os.PathLike)):
        path = str(source)
    try:
        picture = imageio.read(source, max_pixels=options.max_pixels, reduce_to=PREDICT_DECODE_SIDE)
    except FaceupError as exc:
        return Prediction(path=path, error=str(exc))
    return _estimate(picture, options, path)


def fix(source: Source, options: Options | None = None, path: str | None = None) -> Fixed:
    """Estimate and turn the picture back; raises FaceupError for a bad picture.

    When not confident the picture is left as it is (only the EXIF orientation is
    applied, so the output displays exactly like the input)."""
    options = options or Options()
    if path is None and isinstance(source, (str, os.PathLike)):
        path = str(source)
    picture = imageio.read(source, max_pixels=options.max_pixels, reduce_to=PREDICT_DECODE_SIDE, keep_frames=True)
    pred = _estimate(picture, options, path)
    turn = imageio.UNDO_ROTATION[pred.rotation] if pred.turned else None
    fmt = imageio.normalize_format(options.format) or picture.format
    data = imageio.encode(picture, turn=turn, format=fmt)
    return Fixed(prediction=pred, data=data, format=fmt)
