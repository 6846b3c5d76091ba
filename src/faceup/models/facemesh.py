"""MediaPipe's face mesh (468 points; Apache-2.0), from the PyPI package
mediapipe==0.10.21 (`face_landmark.tflite`), converted to ONNX by
`tools/convert_selfie_segmentation.py --face-mesh`. It takes a face crop squashed
to 192 x 192 (RGB in [0, 1]) and answers each point's x, y (in crop pixels) and z,
and a face score. `--fine` reads the eye line from its two eye outlines."""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceup.models.base import Model, register
from faceup.models.preprocess import to_nchw

INPUT_SIZE = 192

#: The outlines of the subject's right eye (on the left of an upright picture) and
#: left eye, as indices of the mesh's 468 points.
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)


@register
class FaceMeshModel(Model):
    name = "face_mesh"

    def landmarks(self, crop: Image.Image) -> tuple[np.ndarray, float]:
        """(468 x 3 points in the crop's own pixels, face probability) of a face crop."""
        x = np.asarray(crop.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR), np.uint8)
        points, score = self.session.run(None, {"image": to_nchw(x[None]) / 255.0})
        pts = points.reshape(468, 3).astype(np.float64)
        pts[:, 0] *= crop.width / INPUT_SIZE
        pts[:, 1] *= crop.height / INPUT_SIZE
        return pts, float(1 / (1 + np.exp(-float(score.ravel()[0]))))

    def eye_roll(self, crop: Image.Image) -> float | None:
        """Clockwise tilt in degrees of the line between the centres of the two eye
        outlines (y down), or None when the mesh does not take the crop for a face."""
        pts, p_face = self.landmarks(crop)
        if p_face < 0.5:
            return None
        right, left = pts[list(RIGHT_EYE), :2].mean(0), pts[list(LEFT_EYE), :2].mean(0)
        return float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))
