"""The 4-way orientation classifier (0/90/180/270 degrees clockwise)."""

from __future__ import annotations

import numpy as np

from faceup.calibration import log_softmax
from faceup.models.base import Model, register
from faceup.models.preprocess import square_input, to_nchw

#: Input side in pixels. Class k means the displayed picture is turned k*90
#: degrees clockwise away from upright.
INPUT_SIZE = 128
NUM_CLASSES = 4
ROTATIONS = (0, 90, 180, 270)
#: One pass at least this sure is taken as the answer without test-time augmentation.
TTA_GATE = 0.998


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

    def scores(self, picture, tta: bool | None = None) -> np.ndarray:
        """Calibrated probabilities of (0, 90, 180, 270) for a PIL picture.

        tta None (the default) is a cascade: one pass, and the four quarter turns
        only when that pass is less sure than TTA_GATE (chosen on validation by the
        rule in the research log: about 1 validation square in 11). True: always the four
        turns; False: never."""
        return self.scores_many([picture], tta)[0]

    def scores_many(self, pictures, tta: bool | None = None, squares: list[np.ndarray] | None = None) -> np.ndarray:
        """`scores` for many pictures, Nx4: one network run for the first pass of
        all of them, one more for the four turns of those it is unsure of.
        `squares`: their `square_input`s, when already made (e.g. in threads)."""
        if not pictures:
            return np.zeros((0, NUM_CLASSES))
        sq = np.stack(squares if squares is not None else [square_input(p, INPUT_SIZE) for p in pictures])
        first = self.logits(sq)  # the single pass, also copy 0 of the four turns
        out = np.exp(log_softmax(log_softmax(first) / self.temperature))
        if tta is None:
            unsure = np.flatnonzero(out.max(axis=1) < TTA_GATE)
        else:
            unsure = np.arange(len(pictures) if tta else 0)
        if len(unsure):
            rest = self.logits(np.concatenate([tta_batch(sq[i])[1:] for i in unsure]))
            n = NUM_CLASSES - 1
            for j, i in enumerate(unsure):
                four = np.concatenate([first[i:i + 1], rest[n * j:n * (j + 1)]])
                out[i] = np.exp(log_softmax(realign(four) / self.temperature))
        return out
