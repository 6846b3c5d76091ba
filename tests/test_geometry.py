"""Property tests for the geometry of turning pictures."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from faceup import geometry

sizes = st.floats(min_value=8, max_value=4000)
angles = st.floats(min_value=-720, max_value=720, allow_nan=False)


def _inside_rotated(px: np.ndarray, w: float, h: float, angle: float) -> bool:
    """Points of the rotated-expanded picture that came from inside the original."""
    back = geometry.unmap_points(px, w, h, angle, expand=True)
    eps = 1e-6 * max(w, h)
    return bool(np.all((back[:, 0] >= -eps) & (back[:, 0] <= w + eps) & (back[:, 1] >= -eps) & (back[:, 1] <= h + eps)))


@settings(max_examples=300, deadline=None)
@given(sizes, sizes, angles)
def test_inscribed_rectangle_has_no_empty_corners(w, h, angle):
    iw, ih = geometry.largest_inscribed_rect(w, h, angle)
    nw, nh = geometry.rotated_size(w, h, angle)
    corners = np.array([[(nw - iw) / 2, (nh - ih) / 2], [(nw + iw) / 2, (nh - ih) / 2],
                        [(nw + iw) / 2, (nh + ih) / 2], [(nw - iw) / 2, (nh + ih) / 2]])
    assert _inside_rotated(corners, w, h, angle)
    assert 0 < iw * ih <= w * h * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(sizes, sizes, st.floats(min_value=0.5, max_value=89.5))
def test_inscribed_rectangle_is_the_largest(w, h, angle):
    iw, ih = geometry.largest_inscribed_rect(w, h, angle)
    nw, nh = geometry.rotated_size(w, h, angle)
    # brute force over aspect ratios: no centred rectangle that fits has more area
    best = 0.0
    for t in np.linspace(0.01, 0.99, 99):
        lo, hi = 0.0, max(nw, nh)
        for _ in range(40):
            mid = (lo + hi) / 2
            rw, rh = mid * math.cos(t * math.pi / 2), mid * math.sin(t * math.pi / 2)
            c = np.array([[(nw - rw) / 2, (nh - rh) / 2], [(nw + rw) / 2, (nh - rh) / 2],
                          [(nw + rw) / 2, (nh + rh) / 2], [(nw - rw) / 2, (nh + rh) / 2]])
            lo, hi = (mid, hi) if _inside_rotated(c, w, h, angle) else (lo, mid)
        best = max(best, lo * math.cos(t * math.pi / 2) * lo * math.sin(t * math.pi / 2))
    assert iw * ih >= best * 0.98


def test_square_case_matches_the_known_value():
    iw, ih = geometry.largest_inscribed_rect(100, 100, 45)
    assert math.isclose(iw, 100 / math.sqrt(2), rel_tol=1e-9) and math.isclose(ih, iw)


@settings(max_examples=300, deadline=None)
@given(sizes, sizes, angles, st.booleans(),
       st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=8))
def test_points_round_trip(w, h, angle, expand, rel):
    pts = np.array(rel) * [w, h]
    there = geometry.map_points(pts, w, h, angle, expand)
    back = geometry.unmap_points(there, w, h, angle, expand)
    assert np.allclose(back, pts, atol=1e-6 * max(w, h))


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 40), st.integers(2, 40), st.sampled_from([0, 90, 180, 270]), st.integers(0, 10**6))
def test_quarter_turn_moves_pixels_where_map_points_says(w, h, rotation, seed):
    rng = np.random.default_rng(seed)
    x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
    arr = np.zeros((h, w), dtype=np.uint8)
    arr[y, x] = 255
    turned = np.asarray(geometry.quarter_turn(Image.fromarray(arr), rotation))
    ty, tx = np.argwhere(turned == 255)[0]
    # pixel centres map to pixel centres
    px = geometry.map_points([(x + 0.5, y + 0.5)], w, h, rotation, expand=True)[0]
    assert (tx + 0.5, ty + 0.5) == (round(px[0], 6), round(px[1], 6))


def test_a_clockwise_angle_turns_the_top_edge_to_the_right():
    w, h = 200, 100
    top_mid = geometry.map_points([(100, 0)], w, h, 90, expand=True)[0]
    nw, nh = geometry.rotated_size(w, h, 90)
    assert math.isclose(top_mid[0], nw, abs_tol=1e-9) and math.isclose(top_mid[1], nh / 2, abs_tol=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.integers(20, 300), st.integers(20, 300), st.floats(1, 359))
def test_rotate_then_crop_leaves_no_empty_pixels(w, h, angle):
    img = Image.new("RGB", (w, h), (200, 30, 30))
    rot = geometry.rotate(img, angle, expand=True, fill=(0, 0, 0), resample=Image.Resampling.NEAREST)
    box = geometry.crop_box_inscribed(w, h, angle)
    box = (box[0] + 1, box[1] + 1, max(box[0] + 2, box[2] - 1), max(box[1] + 2, box[3] - 1))
    arr = np.asarray(rot.crop(box))
    assert arr.size and (arr[..., 0] > 0).all()


@settings(max_examples=200, deadline=None)
@given(sizes, sizes, angles, st.tuples(st.floats(0, 0.5), st.floats(0, 0.5), st.floats(0.5, 1), st.floats(0.5, 1)))
def test_box_mapping_contains_the_mapped_corners(w, h, angle, rel):
    box = (rel[0] * w, rel[1] * h, rel[2] * w, rel[3] * h)
    mapped = geometry.map_box(box, w, h, angle)
    centre = geometry.map_points([((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)], w, h, angle)[0]
    eps = 1e-9 * max(w, h)
    assert mapped[0] - eps <= centre[0] <= mapped[2] + eps and mapped[1] - eps <= centre[1] <= mapped[3] + eps
