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
    print("| half | variant | photos | mean IoU | median IoU | IoU >= 0.9 | boundary F | ms per photo |")
    print("|---|---|---|---|---|---|---|---|")
    for half, paths in halves.items():
        for variant in args.variants.split(","):
            ious, fs, t0 = [], [], time.perf_counter()
            for p in paths:
                img = Image.open(p).convert("RGB")
                truth = np.asarray(Image.open(root / "masks" / f"{p.stem}.png").convert("L")) >= 128
                pred = np.asarray(background.person_mask(img, variant)) >= 128
                iou, f = scores(pred, truth)
                ious.append(iou)
                fs.append(f)
            ms = 1000 * (time.perf_counter() - t0) / len(paths)
            ious = np.array(ious)
            print(f"| {half} | {variant} | {len(paths)} | {ious.mean():.3f} | {np.median(ious):.3f} | "
                  f"{(ious >= 0.9).mean():.1%} | {np.mean(fs):.3f} | {ms:.0f} |")


if __name__ == "__main__":
    main()
