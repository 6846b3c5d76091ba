"""The face-crop witness: the probability that a small picture, as a whole, is a
face crop (tools/train_facecrop.py; trained on face crops against scenes,
everyday photos, street and crowd pieces). `faces.whole_picture_face` asks it
before a picture in which no face is found is analysed as a face."""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceup.calibration import log_softmax
from faceup.models.base import Model, register
from faceup.models.preprocess import to_nchw

INPUT_SIZE = 64


@register
class FaceCropModel(Model):
    name = "facecrop"

    def p_face(self, images: list[Image.Image]) -> np.ndarray:
        """P(face crop) of each picture, squashed to INPUT_SIZE x INPUT_SIZE."""
        if not images:
            return np.zeros(0)
        x = np.stack([np.asarray(im.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR),
                                 dtype=np.uint8) for im in images])
        return np.exp(log_softmax(self.run(to_nchw(x))))[:, 1]
