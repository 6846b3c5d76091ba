"""faceup against the seed approach (a face detector voting over the four
rotations), on the same held-out cases, in one run.

    .venv/bin/pip install -e '.[bench]'      # dlib-bin, opencv-python-headless
    .venv/bin/python benchmarks/peers.py [--limit 100]

Cases: held-out crowd photos (numbers ending in 0 or 5), synthetic scenes of
LFW faces on held-out scenes, and LFW faces; each turned by 0/90/180/270 and
saved as JPEG q90. A peer answers the rotation whose view has the highest total
detector score (no face anywhere: 0). Prints accuracy and ms per picture.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stages import load, synthetic_heldout  # noqa: E402

from faceup import datasets, imageio, pipeline  # noqa: E402
from faceup.evaluate import turned_jpeg  # noqa: E402

VIEWS = (0, 90, 180, 270)  # view j: the picture turned back counter-clockwise by j


def vote(scores: list[float]) -> int:
    return VIEWS[int(np.argmax(scores))] if max(scores) > 0 else 0


class DlibHog:
    name = "dlib HOG, vote over 4 rotations"

    def __init__(self):
        import dlib

        self.det = dlib.get_frontal_face_detector()

    def __call__(self, rgb: np.ndarray) -> int:
        scores = []
        for j in range(4):
            view = np.ascontiguousarray(np.rot90(rgb, j))
            _, s, _ = self.det.run(view, 1, 0.0)
            scores.append(float(sum(s)))
        return vote(scores)


class Haar:
    name = "OpenCV Haar cascade, vote over 4 rotations"

    def __init__(self):
        import cv2

        self.cv2 = cv2
        self.det = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def __call__(self, rgb: np.ndarray) -> int:
        gray = self.cv2.cvtColor(rgb, self.cv2.COLOR_RGB2GRAY)
        scores = []
        for j in range(4):
            view = np.ascontiguousarray(np.rot90(gray, j))
            _, _, weights = self.det.detectMultiScale3(view, 1.1, 3, outputRejectLevels=True)
            scores.append(float(np.sum(weights)) if len(weights) else 0.0)
        return vote(scores)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    rng = random.Random(0)

    def pick(paths):
        return sorted(rng.sample(paths, min(args.limit, len(paths))))

    cases = []
    for source, items in (("crowds", load(pick(datasets.crowds(root, "test")))),
                          ("synthetic", synthetic_heldout(root, args.limit)),
                          ("lfw", load(pick(datasets.lfw(root))))):
        for _, img in items:
            for r in VIEWS:
                cases.append((source, r, turned_jpeg(img, r)))

    peers = []
    for cls in (DlibHog, Haar):
        try:
            peers.append(cls())
        except ImportError as exc:
            print(f"skipping {cls.name}: {exc} (pip install -e '.[bench]')")
    options = pipeline.Options()
    pipeline.predict(cases[0][2], options)  # load the models before timing

    rows = []
    for peer in [None, *peers]:
        name = "faceup predict" if peer is None else peer.name
        right, total, seconds, per_source = 0, 0, 0.0, {}
        for source, r, data in cases:
            t0 = time.perf_counter()
            if peer is None:
                got = pipeline.predict(data, options).rotation
            else:
                got = peer(np.asarray(imageio.read(data).image.convert("RGB")))
            seconds += time.perf_counter() - t0
            ok = got == r
            right += ok
            total += 1
            s = per_source.setdefault(source, [0, 0])
            s[0] += ok
            s[1] += 1
        rows.append((name, right / total, {k: v[0] / v[1] for k, v in per_source.items()}, 1000 * seconds / total))

    print(f"command: python benchmarks/peers.py --limit {args.limit}   ({len(cases)} cases)")
    sources = list(rows[0][2])
    print("| method | accuracy | " + " | ".join(sources) + " | ms per picture |")
    print("|---|---|" + "---|" * len(sources) + "---|")
    for name, acc, per, ms in rows:
        print(f"| {name} | {acc:.1%} | " + " | ".join(f"{per[s]:.1%}" for s in sources) + f" | {ms:.1f} |")
    base = rows[0][3]
    for name, _, _, ms in rows[1:]:
        print(f"faceup is {ms / base:.1f}x faster than {name}")


if __name__ == "__main__":
    main()
