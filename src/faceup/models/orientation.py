"""The 4-way orientation classifier (0/90/180/270 degrees clockwise)."""

from __future__ import annotations

import numpy as np

from faceup.models.base import Model, register
from faceup.models.preprocess import square_input, to_nchw

#: Input side in pixels. Class k means the displayed picture is turned k*90
#: degrees clockwise away from upright.
INPUT_SIZE = 128
NUM_CLASSES = 4
ROTATIONS = (0, 90, 180, 270)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def tta_batch(square: np.ndarray) -> np.ndarray:
    """The four quarter turns of one HxWx3 square: index j is turned j quarter
    turns counter-clockwise (np.rot90 with k=j)."""
    return np.stack([np.rot90(square, j) for j in range(NUM_CLASSES)])


def realign(logits: np.ndarray) -> np.ndarray:
    """Average the log-posteriors of the four turned copies in the frame of the original.

    Copy j was turned j quarter turns counter-clockwise, so its class c means the
    original had class (c + j) mod 4.
    """
    lp = log_softmax(logits)
    aligned = np.stack([np.roll(lp[j], j) for j in range(NUM_CLASSES)])
    return aligned.mean(axis=0)


@register
class OrientationModel(Model):
    name = "orientation"

    @property
    def temperature(self) -> float:
        return float(self.info.meta.get("temperature", 1.0))

    def logits(self, squares: np.ndarray) -> np.ndarray:
        """Raw logits for a batch of NxSxSx3 uint8 squares."""
        return self.run(to_nchw(squares))

    def scores(self, picture, tta: bool = True) -> np.ndarray:
        """Calibrated probabilities of (0, 90, 180, 270) for a PIL picture."""
        sq = square_input(picture, INPUT_SIZE)
        if tta:
            z = realign(self.logits(tta_batch(sq)))
        else:
            z = log_softmax(self.logits(sq[None])[0])
        p = np.exp(log_softmax(z / self.temperature))
        return p
