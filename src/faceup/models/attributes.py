"""Per-face models: smile, and age + gender. Both take face crops made by
`faces.face_crop` (square, eye line level)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceup.calibration import softmax
from faceup.models.base import Model, register
from faceup.models.preprocess import to_nchw

SMILE_SIZE = 64
AGEGENDER_SIZE = 96
#: The age head predicts age / AGE_SCALE.
AGE_SCALE = 100.0

#: The age groups of the reports (FairFace's): 0-2, 3-9, 10-19, 20-29, ..., 70+.
AGE_GROUPS = [(0, 2), (3, 9), (10, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 200)]


def age_group(age: float) -> int:
    """The index in AGE_GROUPS of an age in years."""
    for i, (lo, hi) in enumerate(AGE_GROUPS):
        if lo <= age <= hi:
            return i
    return len(AGE_GROUPS) - 1


#: Gender labels in the order of the gender head (UTKFace: 0 male, 1 female).
GENDERS = ("male", "female")

#: The gender model's chip: its side, and where the eye centres go (dlib's 5-point
#: template for 150 px chips with padding 0.25: the centres of its eye-corner pairs).
GENDER_CHIP = 150
CHIP_EYES = (((0.25 + 0.2273) / 1.5 * GENDER_CHIP, (0.25 + 0.2213) / 1.5 * GENDER_CHIP),
             ((0.25 + 0.7528) / 1.5 * GENDER_CHIP, (0.25 + 0.2213) / 1.5 * GENDER_CHIP))


@register
class SmileModel(Model):
    name = "smile"

    def predict(self, crops: list[Image.Image]) -> np.ndarray:
        """Probability of a smile for each face crop (trained on grey crops)."""
        if not crops:
            return np.zeros(0)
        batch = np.stack([np.asarray(c.convert("L").convert("RGB").resize((SMILE_SIZE, SMILE_SIZE),
                                                                              Image.Resampling.BILINEAR)) for c in crops])
        return softmax(self.run(to_nchw(batch)))[:, 1]


@register
class AgeGenderModel(Model):
    name = "agegender"

    def predict(self, crops: list[Image.Image]) -> list[tuple[float, str, float]]:
        """(age in years, gender, probability of that gender) for each face crop."""
        if not crops:
            return []
        batch = np.stack([np.asarray(c.convert("RGB").resize((AGEGENDER_SIZE, AGEGENDER_SIZE),
                                                             Image.Resampling.BILINEAR)) for c in crops])
        out = self.run(to_nchw(batch))
        p = softmax(out[:, 1:3])
        res = []
        for row, pg in zip(out, p):
            k = int(np.argmax(pg))
            res.append((float(np.clip(row[0] * AGE_SCALE, 0, 110)), GENDERS[k], float(pg[k])))
        return res


@register
class GenderModel(Model):
    """dlib's face recognition ResNet (converted, int8) with a logistic read-out of
    gender on its embedding (train.gender_head), on chips from faces.aligned_chip."""

    name = "gender"

    def predict(self, chips: list[np.ndarray]) -> list[tuple[str, float]]:
        """(gender, probability of that gender) for each chip."""
        if not chips:
            return []
        female = self.session.run(["female"], {"image": np.stack(chips)})[0][:, 0]
        return [("female", float(p)) if p >= 0.5 else ("male", float(1 - p)) for p in female]
