"""The person mask (`faceup background --transparent`) against hand-made masks:
segmentation/people (190 photos of one or a few people, about 640x480), never
used to make or tune the segmentation model.

    .venv/bin/python benchmarks/masks.py [--variants one-pass,zoom]

The photos are split once by file number: even numbers are the validation half
(variants are chosen there), odd numbers the held-out half (measured once, after
the choice). Per photo: IoU of the mask at 0.5 with the hand-made mask, and a
boundary F-score (a boundary pixel counts when the other mask's boundary is
within 1% of the picture's diagonal). Prints mean and median IoU, the share of
photos at IoU >= 0.9, and the mean boundary F, per half and per variant.

A variant is one of background.MASK_VARIANTS, optionally with an edge refinement
tried and not kept (docs/research.md, "Mask edges"): `zoom-mirror+guided3`,
`+guided2` (a guided filter), `+cross40` (the 0.5 crossing moved).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageFilter

from faceup import background, datasets


def boundary(mask: np.ndarray) -> np.ndarray:
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    inner = np.asarray(img.filter(ImageFilter.MinFilter(3))) > 0
    return mask & ~inner


def near(points: np.ndarray, tol: int) -> np.ndarray:
    img = Image.fromarray(points.astype(np.uint8) * 255)
    return np.asarray(img.filter(ImageFilter.MaxFilter(2 * tol + 1))) > 0


def scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    union = (pred | truth).sum()
    iou = float((pred & truth).sum() / union) if union else 1.0
    tol = max(1, round(0.01 * np.hypot(*truth.shape)))
    bp, bt = boundary(pred), boundary(truth)
    precision = (bp & near(bt, tol)).sum() / max(1, bp.sum())
    recall = (bt & near(bp, tol)).sum() / max(1, bt.sum())
    f = float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0
    return iou, f


def box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """The mean over a (2r+1)-square window around every pixel (edges repeated)."""
    k = 2 * r + 1
    s = np.pad(a, r + 1, mode="edge").cumsum(0).cumsum(1)
    return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k])[:a.shape[0], :a.shape[1]] / (k * k)


def refined(rgb: Image.Image, mask: Image.Image, how: str) -> Image.Image:
    """The mask with its edges refined: "guidedN", a guided filter (He et al.) with
    the picture in grey as the guide, radius 1% of the diagonal, eps 1e-N; "crossNN",
    the 0.5 crossing moved to 0.NN (piecewise linear, 0 and 1 kept)."""
    m = np.asarray(mask, np.float64) / 255.0
    if how.startswith("guided"):
        guide = np.asarray(rgb.convert("L"), np.float64) / 255.0
        r, eps = max(2, round(0.01 * float(np.hypot(*guide.shape)))), 10.0 ** -int(how[6:])
        mean_i, mean_m = box_mean(guide, r), box_mean(m, r)
        a = (box_mean(guide * m, r) - mean_i * mean_m) / (box_mean(guide * guide, r) - mean_i ** 2 + eps)
        m = np.clip(box_mean(a, r) * guide + box_mean(mean_m - a * mean_i, r), 0.0, 1.0)
    elif how.startswith("cross"):
        t = int(how[5:]) / 100.0
        m = np.where(m < t, m * 0.5 / t, 0.5 + (m - t) * 0.5 / (1 - t))
    else:
        raise SystemExit(f"unknown refinement {how!r}")
    return Image.fromarray(np.clip(m * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def person_mask(img: Image.Image, variant: str) -> Image.Image:
    base, _, refine = variant.partition("+")
    mask = background.person_mask(img, base)
    return refined(img, mask, refine) if refine else mask


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--variants", default=",".join(background.MASK_VARIANTS))
    ap.add_argument("--half", choices=("validation", "held-out", "both"), default="both")
    args = ap.parse_args()
    root = datasets.data_root(args.data) / "segmentation" / "people"
    photos = sorted((root / "images").iterdir(), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    halves = {"validation": [p for p in photos if int(p.stem) % 2 == 0],
              "held-out": [p for p in photos if int(p.stem) % 2 == 1]}
    if args.half != "both":
        halves = {args.half: halves[args.half]}
    print(f"command: python benchmarks/masks.py --variants {args.variants} --half {args.half}")
    print("| half | variant | photos | mean IoU | median IoU | IoU >= 0.9 | boundary F | mask ms per photo |")
    print("|---|---|---|---|---|---|---|---|")
    for half, paths in halves.items():
        for variant in args.variants.split(","):
            ious, fs, spent = [], [], 0.0
            for p in paths:
                img = Image.open(p).convert("RGB")
                truth = np.asarray(Image.open(root / "masks" / f"{p.stem}.png").convert("L")) >= 128
                t0 = time.perf_counter()
                soft = person_mask(img, variant)
                spent += time.perf_counter() - t0
                pred = np.asarray(soft) >= 128
                iou, f = scores(pred, truth)
                ious.append(iou)
                fs.append(f)
            ms = 1000 * spent / len(paths)
            ious = np.array(ious)
            print(f"| {half} | {variant} | {len(paths)} | {ious.mean():.3f} | {np.median(ious):.3f} | "
                  f"{(ious >= 0.9).mean():.1%} | {np.mean(fs):.3f} | {ms:.0f} |")


if __name__ == "__main__":
    main()
