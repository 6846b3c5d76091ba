"""How close `faceup predict --fine` gets to the level of the face.

    .venv/bin/python benchmarks/fine_angle.py [--limit 200]

UTKFace's aligned crops have level eye lines by construction, so the truth is the
angle they are turned by. Validation part only (never trained on; the landmark
detector is MediaPipe's and never saw them either). Each face is upscaled to
200 px, turned by a random angle in [0, 360), cropped to the largest upright
rectangle without empty corners, saved as JPEG q90 and fed to pipeline.predict
with fine=True, the path of `faceup predict --fine`.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faceup import datasets, pipeline  # noqa: E402
from faceup.evaluate import rotated_case  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    rng = random.Random(1)
    paths = rng.sample(datasets.utkface(root, "val"), args.limit)
    opts = pipeline.Options(fine=True)
    errors, seconds = [], 0.0
    for p in paths:
        img = Image.open(p).convert("RGB").resize((200, 200), Image.Resampling.BICUBIC)
        angle = rng.uniform(0, 360)
        data = rotated_case(img, angle)
        t0 = time.perf_counter()
        pred = pipeline.predict(data, opts)
        seconds += time.perf_counter() - t0
        errors.append(abs((pred.angle - angle + 180) % 360 - 180))
    e = np.array(errors)
    print(f"command: python benchmarks/fine_angle.py --limit {args.limit}")
    print("| faces | mean error | median error | within 2° | within 5° | within 10° | ms per picture |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {len(e)} | {e.mean():.2f}° | {np.median(e):.2f}° | {(e <= 2).mean():.1%} | {(e <= 5).mean():.1%} | "
          f"{(e <= 10).mean():.1%} | {1000 * seconds / len(e):.0f} |")


if __name__ == "__main__":
    main()
