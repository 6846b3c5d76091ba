"""Face evidence for the orientation decision: detect faces in the four quarter
turns of a picture and judge each detection by face geometry (eyes level and
above the mouth, the subject's right eye on the left), not by raw detector score.

Detector scores alone are often higher on a turned face than on the upright one;
landmark geometry is what tells the upright view apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from faceup.models import get_model
from faceup.models.blazeface import BlazeFace, Detection

#: A face is evidence only when its landmarks are this close to upright geometry.
GEOMETRY_POWER = 4.0


@dataclass(frozen=True)
class FaceView:
    """The faces found in one quarter-turned view of the picture."""

    turn: int  # quarter turns counter-clockwise applied to the displayed picture
    detections: list[Detection]
    evidence: float


def upright_geometry(d: Detection) -> float:
    """0..1: how well the landmarks fit an upright face in this view.

    Keypoints: 0 the subject's right eye (image left), 1 left eye, 2 nose tip,
    3 mouth centre. Upright: eye line horizontal, mouth below the eyes, the nose
    between them.
    """
    kp = d.keypoints
    eyes = kp[1] - kp[0]
    down = kp[3] - (kp[0] + kp[1]) / 2
    eye_len, down_len = np.linalg.norm(eyes), np.linalg.norm(down)
    if eye_len < 1e-6 or down_len < 1e-6:
        return 0.0
    level = max(0.0, eyes[0] / eye_len)  # cos of the eye line's tilt (and the right eye on the left)
    below = max(0.0, down[1] / down_len)  # cos of the eyes->mouth direction against straight down
    nose_between = 1.0 if (kp[0][1] + kp[1][1]) / 2 < kp[2][1] + 0.25 * down_len else 0.5
    return float((level * below) ** GEOMETRY_POWER * nose_between)


def detector() -> BlazeFace:
    m = get_model("blazeface_full")
    assert isinstance(m, BlazeFace)
    return m


def views(image: Image.Image) -> list[FaceView]:
    """Faces in each quarter turn of the picture, with their geometric evidence
    (sum of score x geometry x relative size, so big clear faces count most)."""
    det = detector()
    side = max(image.size)
    out = []
    for j in range(4):
        view = image if j == 0 else image.transpose(_CCW[j])
        found = det.detect(view)
        ev = 0.0
        for d in found:
            size = min(1.0, 4.0 * d.width / side) ** 0.5
            ev += d.score * upright_geometry(d) * size
        out.append(FaceView(turn=j, detections=found, evidence=ev))
    return out


_CCW = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}


def evidence_log_likelihood(face_views: list[FaceView], strength: float) -> np.ndarray:
    """Log-likelihood over rotation classes (0, 90, 180, 270 clockwise) from the
    face views: the view turned j quarter turns counter-clockwise is upright when
    the picture was turned j quarter turns clockwise."""
    e = np.array([v.evidence for v in face_views], dtype=np.float64)
    return strength * e
