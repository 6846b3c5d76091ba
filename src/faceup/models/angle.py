"""The generic angle model: how many degrees (0-360, clockwise) a picture is turned,
read from the scene (RotNet's generic case). 72 bins of 5 degrees; the angle is
the circular mean of the posterior."""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceup.models.base import Model, register
from faceup.models.preprocess import to_nchw

INPUT_SIZE = 96
BINS = 72


def circular_mean(p: np.ndarray) -> np.ndarray:
    """Angles (degrees) from posteriors over BINS equal bins (N x BINS)."""
    centres = np.deg2rad(np.arange(BINS) * (360.0 / BINS))
    c = (p * np.cos(centres)).sum(-1)
    s = (p * np.sin(centres)).sum(-1)
    return np.rad2deg(np.arctan2(s, c)) % 360.0


def centre_square(img: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """The centred square of the picture (side: its shorter side) at size x size."""
    w, h = img.size
    side = min(w, h)
    box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    return np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, box=box), dtype=np.uint8)


@register
class AngleModel(Model):
    name = "angle"

    def predict(self, img: Image.Image) -> tuple[float, float]:
        """(angle in degrees clockwise, concentration 0..1 of the posterior)."""
        z = self.run(to_nchw(centre_square(img)[None]))[0]
        p = np.exp(z - z.max())
        p /= p.sum()
        centres = np.deg2rad(np.arange(BINS) * (360.0 / BINS))
        r = float(np.hypot((p * np.cos(centres)).sum(), (p * np.sin(centres)).sum()))
        return float(circular_mean(p[None])[0]), r
