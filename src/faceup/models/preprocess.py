"""Turning a PIL picture into model input. Shared by training and inference, so
the two cannot drift apart."""

from __future__ import annotations

import numpy as np
from PIL import Image


def square_input(img: Image.Image, size: int) -> np.ndarray:
    """The whole picture squashed to size x size RGB, as uint8 HxWx3.

    Squashing (not cropping, not letterboxing) keeps every part of the picture and
    commutes with quarter turns: squash(turn(p)) == turn(squash(p)).
    """
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(img, dtype=np.uint8)


def to_nchw(batch_hwc: np.ndarray) -> np.ndarray:
    """uint8 NxHxWx3 -> float32 Nx3xHxW in 0..255 (the networks normalise inside)."""
    return np.ascontiguousarray(batch_hwc.transpose(0, 3, 1, 2), dtype=np.float32)
