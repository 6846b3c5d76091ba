"""The generic angle model: how many degrees (0-360, clockwise) a picture is turned,
read from the scene (RotNet's generic case). 72 bins of 5 degrees; the angle is
read from the posterior by `read_angle`."""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceup.calibration import softmax
from faceup.models.base import Model, register
from faceup.models.preprocess import to_nchw

INPUT_SIZE = 128
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

    @property
    def input_size(self) -> int:
        """The side of the square the network takes (its ONNX input's height)."""
        side = self.session.get_inputs()[0].shape[2]
        return side if isinstance(side, int) else INPUT_SIZE

    def posterior(self, img: Image.Image, tta: bool = True) -> np.ndarray:
        """The probability of each of the BINS angles (clockwise from 0).

        With tta, the posterior is averaged over the eight exact quarter turns and
        mirror images of the picture, each realigned (a quarter turn shifts the
        angle by 90 degrees, a mirror negates it)."""
        sq = centre_square(img, self.input_size)
        if not tta:
            variants = [sq]
        else:
            variants = [np.rot90(v, j) for v in (sq, sq[:, ::-1]) for j in range(4)]
        probs = softmax(self.run(to_nchw(np.ascontiguousarray(np.stack(variants)))))
        if not tta:
            return probs[0]
        q = BINS // 4
        aligned = []
        for i, pv in enumerate(probs):
            j, mirrored = i % 4, i >= 4
            # variant j was turned j quarter turns counter-clockwise: its angle is
            # theta - 90 j (theta' = -theta for the mirror); shift back by j*q bins
            pv = np.roll(pv, j * q)
            if mirrored:
                pv = np.roll(pv[::-1], 1)  # bin k -> bin -k
            aligned.append(pv)
        return np.mean(aligned, axis=0)

    def predict(self, img: Image.Image, tta: bool = True) -> tuple[float, float]:
        """(angle in degrees clockwise, concentration 0..1 of the posterior)."""
        p = self.posterior(img, tta)
        return read_angle(p), concentration(p)


def read_angle(p: np.ndarray) -> float:
    """The angle (degrees clockwise) a posterior says. The model's doubts are
    mostly between quarter turns of the same fine angle (a forest turned 30 or 120
    degrees), and a plain circular mean over two such modes lands between them.
    So: the fine angle within its quarter from the circular mean, then the quarter
    whose 90-degree sector around it holds the most probability, the angle read
    within that sector. Validation scenes, 5 random angles each (1,460 cases):
    mean error 9.86 degrees against 10.18 for the plain circular mean; settling
    the quarter with the quarter-turn classifier as well (weights 0.5, 1, 2 in
    log-probability units) measured 10.61, 11.75, 13.65: worse, so it is not used."""
    first = float(circular_mean(p[None])[0])
    fine = (first + 45.0) % 90.0 - 45.0  # the angle within its quarter, -45..45
    parts = [sector(p, fine + 90.0 * k) for k in range(4)]
    best = max(parts, key=lambda part: float(part.sum()))
    return float(circular_mean(best[None])[0]) % 360.0


def concentration(p: np.ndarray) -> float:
    """0..1: the length of the posterior's mean direction (1: all on one angle)."""
    centres = np.deg2rad(np.arange(BINS) * (360.0 / BINS))
    return float(np.hypot((p * np.cos(centres)).sum(), (p * np.sin(centres)).sum()))


def sector(p: np.ndarray, centre: float) -> np.ndarray:
    """The posterior kept within 45 degrees of `centre` (zero elsewhere)."""
    centres = np.arange(BINS) * (360.0 / BINS)
    d = np.abs((centres - centre + 180.0) % 360.0 - 180.0)
    return np.where(d < 45.0, p, 0.0)
