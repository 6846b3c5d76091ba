"""Geometry of turning pictures: exact quarter turns, rotation by any angle, the
largest upright rectangle inside a rotated picture, and the mapping of points
and boxes between the original and the corrected picture.

Conventions: angles in degrees, *clockwise* positive (as the `angle` field of the
JSON answer); pixel coordinates (x right, y down) with the picture spanning
[0, w] x [0, h].
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

T = Image.Transpose

#: Turn an upright picture `r` degrees clockwise.
TURN_CW = {0: None, 90: T.ROTATE_270, 180: T.ROTATE_180, 270: T.ROTATE_90}
#: Undo a clockwise rotation of `r` degrees (turn counter-clockwise by it).
UNDO_CW = {0: None, 90: T.ROTATE_90, 180: T.ROTATE_180, 270: T.ROTATE_270}


def quarter_turn(img: Image.Image, rotation_cw: int) -> Image.Image:
    """Turn by an exact multiple of 90 degrees clockwise (no interpolation)."""
    op = TURN_CW[rotation_cw % 360]
    return img if op is None else img.transpose(op)


def rotated_size(w: float, h: float, angle_cw: float) -> tuple[float, float]:
    """Size of the bounding box of a w x h picture rotated by angle_cw."""
    a = math.radians(angle_cw)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    return w * c + h * s, w * s + h * c


def largest_inscribed_rect(w: float, h: float, angle_cw: float) -> tuple[float, float]:
    """Width and height of the largest axis-aligned rectangle, centred, inside a
    w x h rectangle rotated by angle_cw. Correct for any aspect ratio (the formula
    of RotNet's `largest_rotated_rect` assumes a square)."""
    if w <= 0 or h <= 0:
        return 0.0, 0.0
    a = math.radians(angle_cw) % math.pi
    if a > math.pi / 2:
        a = math.pi - a
    s, c = abs(math.sin(a)), abs(math.cos(a))
    if s < 1e-12:
        return float(w), float(h)
    if c < 1e-12:
        return float(h), float(w)
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2.0 * s * c * long_side or abs(s - c) < 1e-10:
        # half constrained: two corners of the rectangle touch the longer sides
        x = 0.5 * short_side
        wr, hr = (x / s, x / c) if w >= h else (x / c, x / s)
    else:
        cos_2a = c * c - s * s
        wr, hr = (w * c - h * s) / cos_2a, (h * c - w * s) / cos_2a
    return float(wr), float(hr)


def _matrix(w: float, h: float, angle_cw: float, expand: bool) -> tuple[np.ndarray, float, float]:
    """3x3 matrix mapping original pixel coordinates to rotated-picture coordinates."""
    a = math.radians(angle_cw)
    c, s = math.cos(a), math.sin(a)
    nw, nh = rotated_size(w, h, angle_cw) if expand else (w, h)
    # y points down, so a clockwise turn on screen is the usual rotation matrix
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    to_centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    from_centre = np.array([[1, 0, nw / 2], [0, 1, nh / 2], [0, 0, 1]])
    return from_centre @ rot @ to_centre, nw, nh


def map_points(points, w: float, h: float, angle_cw: float, expand: bool = True,
               crop: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Where points of the original w x h picture land in the picture rotated by
    angle_cw (expanded to hold it all, or not), optionally then cropped to
    `crop` = (x0, y0, x1, y1) in rotated coordinates."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m, _, _ = _matrix(w, h, angle_cw, expand)
    out = (m @ np.c_[pts, np.ones(len(pts))].T).T[:, :2]
    if crop is not None:
        out -= np.array(crop[:2])
    return out


def unmap_points(points, w: float, h: float, angle_cw: float, expand: bool = True,
                 crop: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """The inverse of `map_points`: rotated-picture points back to the original."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if crop is not None:
        pts = pts + np.array(crop[:2])
    m, _, _ = _matrix(w, h, angle_cw, expand)
    return (np.linalg.inv(m) @ np.c_[pts, np.ones(len(pts))].T).T[:, :2]


def map_box(box, w: float, h: float, angle_cw: float, expand: bool = True,
            crop: tuple[float, float, float, float] | None = None) -> tuple[float, float, float, float]:
    """The axis-aligned box around the four mapped corners of `box`."""
    x0, y0, x1, y1 = box
    pts = map_points([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], w, h, angle_cw, expand, crop)
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))


def rotate(img: Image.Image, angle_cw: float, expand: bool = True,
           fill: tuple[int, ...] | str | None = None, resample=Image.Resampling.BICUBIC) -> Image.Image:
    """Rotate clockwise by any angle; exact (no resampling) for quarter turns."""
    a = angle_cw % 360
    if abs(a - round(a / 90) * 90) < 1e-9:
        return quarter_turn(img, int(round(a / 90) * 90) % 360)
    return img.rotate(-angle_cw, resample=resample, expand=expand, fillcolor=fill)


def crop_box_inscribed(w: float, h: float, angle_cw: float) -> tuple[int, int, int, int]:
    """The crop, in the expanded rotated picture, that keeps the largest upright
    rectangle without empty corners (rounded inwards to whole pixels)."""
    nw, nh = rotated_size(w, h, angle_cw)
    iw, ih = largest_inscribed_rect(w, h, angle_cw)
    x0 = math.ceil((nw - iw) / 2 - 1e-9)
    y0 = math.ceil((nh - ih) / 2 - 1e-9)
    x1 = math.floor((nw + iw) / 2 + 1e-9)
    y1 = math.floor((nh + ih) / 2 + 1e-9)
    return x0, y0, max(x0 + 1, x1), max(y0 + 1, y1)
