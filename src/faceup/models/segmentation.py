"""Person segmentation: MediaPipe's selfie segmentation model (general, 256x256,
Apache-2.0), from the PyPI package mediapipe==0.10.21, converted to ONNX by
tools/convert_selfie_segmentation.py (its custom transposed convolution has no
converter). The picture is squashed to 256x256 (as MediaPipe does); the answer is
the probability of "person" for every pixel of the picture."""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceup.models.base import Model, register
from faceup.models.preprocess import square_input, to_nchw

INPUT_SIZE = 256


@register
class SegmentationModel(Model):
    name = "segmentation"

    def mask(self, img: Image.Image) -> Image.Image:
        """The person mask at the picture's size: mode "L", 255 = person. Edges stay
        soft (probabilities, upsampled bilinearly), not thresholded."""
        x = to_nchw(square_input(img, INPUT_SIZE)[None]) / 255.0
        p = self.run(x)[0, 0]
        small = Image.fromarray(np.clip(p * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
        return small.resize(img.size, Image.Resampling.BILINEAR)
