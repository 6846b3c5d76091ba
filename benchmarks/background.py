"""Background replacement: time per picture by size and mode, and peak memory.

    .venv/bin/python benchmarks/background.py [--repeat 5]

The astronaut (NASA, public domain) turned 90 degrees, scaled to each size and
saved as JPEG; pipeline.background does everything `faceup background` does
(read, orientation fix, segmentation, composite, encode). One process, the
models loaded before timing. Peak RSS is this process's (VmHWM).
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faceup import pipeline  # noqa: E402
from faceup.background import Replacement  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    base = Image.fromarray(skdata.astronaut()).transpose(Image.Transpose.ROTATE_270)
    modes = {"colour": Replacement(color="white"), "blur": Replacement(blur=0),
             "transparent": Replacement(transparent=True)}
    pipeline.background(_jpeg(base, 256), modes["colour"])  # load every model first
    print(f"command: python benchmarks/background.py --repeat {args.repeat}\n")
    print("| picture | mode | output | ms per picture (median of %d) |" % args.repeat)
    print("|---|---|---|---|")
    for side in (640, 1280, 2560):
        data = _jpeg(base, side)
        for name, how in modes.items():
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                res = pipeline.background(data, how)
                times.append(time.perf_counter() - t0)
            print(f"| {side}x{side} JPEG | {name} | {res.format} | {1000 * float(np.median(times)):.0f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MB")


def _jpeg(img: Image.Image, side: int) -> bytes:
    buf = io.BytesIO()
    img.resize((side, side), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
    return buf.getvalue()


if __name__ == "__main__":
    main()
