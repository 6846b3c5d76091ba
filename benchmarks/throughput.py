"""Pictures per second, whole processes, in one run: the floor (a plain Pillow
decode of the same files), `faceup predict` on one core and on every core,
`faceup batch --report-only` on a local Ray, and dlib HOG voting (the seed
approach) on the same pictures.

    .venv/bin/pip install -e '.[bench,ray]'
    .venv/bin/python benchmarks/throughput.py [--phone 24] [--dlib 60]

Two sets, made in a temporary folder from pictures faceup was never trained on:
"web": the held-out crowd photos (numbers ending in 0 or 5, up to 480 px) and the
photos of people of segmentation/people (never seen by the orientation model)
scaled to at most 512 px, JPEG q90; "phone": the first `--phone` of them
enlarged to 4000x3000 (12 MP), JPEG q90, where the floor is a full-size decode;
"small": web-sized photos, the kind most uploads are: the same pictures and the
validation video frames of people (frames68), each scaled to a long side drawn
between 300 and 400 px (seeded), JPEG q90, `--small` of them (480 by default);
"web-many": `--copies` copies of "web" (2,166 pictures by default), where
`faceup batch --report-only` on a local Ray is compared with `faceup predict`.
Each row is a whole process (`time` of the command, start-up included; the
median of `--repeat` runs for the floor and `faceup predict`, one run of the batch
job), except dlib, timed in this process (start-up excluded, which flatters it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from faceup import datasets

BIN = Path(sys.executable).parent
FLOOR = "import sys, glob\nfrom PIL import Image\nfor f in sorted(glob.glob(sys.argv[1] + '/*')):\n" \
        "    im = Image.open(f); im.load()\n"


def make_sets(root: Path, tmp: Path, phone: int, copies: int, small: int) -> dict[str, Path]:
    import random

    web, big, many, little = tmp / "web", tmp / "phone", tmp / "web-many", tmp / "small"
    for folder in (web, big, many, little):
        folder.mkdir()
    pictures = datasets.crowds(root, "test") + datasets.list_pictures(root / "segmentation" / "people" / "images")
    for i, p in enumerate(sorted(pictures)):
        img = Image.open(p).convert("RGB")
        img.thumbnail((512, 512))
        img.save(web / f"{i:04d}.jpg", quality=90)
        for k in range(copies):
            (many / f"{k}-{i:04d}.jpg").write_bytes((web / f"{i:04d}.jpg").read_bytes())
        if i < phone:
            img.resize((4000, 3000), Image.Resampling.BICUBIC).save(big / f"{i:04d}.jpg", quality=90)
    rng = random.Random(0)
    for i, p in enumerate((sorted(pictures) + datasets.frames68(root, "val"))[:small]):
        img = Image.open(p).convert("RGB")
        side = rng.randint(300, 400)
        scale = side / max(img.size)
        img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                   Image.Resampling.LANCZOS).save(little / f"{i:04d}.jpg", quality=90)
    return {"web": web, "phone": big, "small": little, "web-many": many}


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=3600)
    if res.returncode not in (0, 1):
        raise RuntimeError(res.stderr[-2000:])
    return time.perf_counter() - t, res.stdout


def median_timed(cmd: list[str], repeat: int) -> tuple[float, str]:
    """The median of `repeat` whole-process runs (runs differ by about 10% here)."""
    runs = [timed(cmd) for _ in range(repeat)]
    return float(np.median([sec for sec, _ in runs])), runs[-1][1]


def dlib_voting(folder: Path, limit: int) -> float | None:
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from peers import DlibHog
        det = DlibHog()
    except ImportError:
        return None
    files = sorted(folder.glob("*.jpg"))[:limit]
    t = time.perf_counter()
    for f in files:
        det(np.asarray(Image.open(f).convert("RGB")))
    return (time.perf_counter() - t) / len(files)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phone", type=int, default=24, help="12 MP pictures to make")
    ap.add_argument("--dlib", type=int, default=60, help="web pictures timed with dlib HOG voting (0: none)")
    ap.add_argument("--small", type=int, default=480, help="small web-sized photos to make")
    ap.add_argument("--copies", type=int, default=6, help="copies of the web set in web-many (for the batch job)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each floor and predict row (median)")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    faceup = str(BIN / "faceup")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = make_sets(root, Path(tmp), args.phone, args.copies, args.small)
        same = None
        for name, folder in sets.items():
            n = len(list(folder.iterdir()))
            floor, _ = median_timed([sys.executable, "-c", FLOOR, str(folder)], args.repeat)
            rows.append((name, "Pillow decode loop (the floor)", n, floor, floor))
            if name != "web-many":
                one, _ = median_timed([faceup, "predict", "--json", str(folder), "--workers", "1"], args.repeat)
                rows.append((name, "faceup predict --json DIR --workers 1", n, one, floor))
            every, out = median_timed([faceup, "predict", "--json", str(folder)], args.repeat)
            rows.append((name, "faceup predict --json DIR (every core)", n, every, floor))
            if name == "web-many":
                same = {json.loads(x)["path"]: json.loads(x)["rotation"] for x in out.splitlines()}
                table = Path(tmp) / "batch.parquet"
                ray_env = {"RAY_USAGE_STATS_ENABLED": "0"}
                batch, said = timed([faceup, "batch", str(folder), "--report-only", "--table", str(table), "--json"],
                                    env=ray_env)
                rows.append((name, "faceup batch --report-only, local Ray", n, batch, floor))
                summary = json.loads([x for x in said.splitlines() if x.startswith("{")][-1])
                once_up = summary["per_second_once_up"]
                predict_rate = n / every
                import pyarrow.parquet as pq
                got = {r["path"]: r["rotation"] for r in pq.read_table(table).to_pylist()}
                agree = sum(got.get(p) == r for p, r in same.items()) / len(same)
                empty = Path(tmp) / "empty"
                empty.mkdir()
                (empty / "one.jpg").write_bytes(next(folder.iterdir()).read_bytes())
                ray_start, _ = timed([faceup, "batch", str(empty), "--report-only", "--table",
                                      str(Path(tmp) / "e.parquet")], env=ray_env)
                single, _ = median_timed([faceup, "predict", "--json", str(empty / "one.jpg")], args.repeat)
                per_dlib = dlib_voting(sets["web"], args.dlib) if args.dlib else None
                small_dlib = dlib_voting(sets["small"], args.dlib) if args.dlib else None
    print("command: python benchmarks/throughput.py " + " ".join(sys.argv[1:]))
    print("| set | what | pictures | seconds | pictures/s | ms a picture | x the floor |")
    print("|---|---|---|---|---|---|---|")
    for name, what, n, sec, floor in rows:
        print(f"| {name} | {what} | {n} | {sec:.2f} | {n / sec:.1f} | {1000 * sec / n:.2f} | {sec / floor:.1f} |")
    web_every = next(sec / n for name, what, n, sec, _ in rows if name == "web" and "every core" in what)
    small_every = next(sec / n for name, what, n, sec, _ in rows if name == "small" and "every core" in what)
    print()
    print(f"`faceup predict --json one.jpg`: {single:.2f} s, whole process")
    print(f"`faceup batch` on one picture (Ray start and stop): {ray_start:.1f} s")
    print(f"faceup batch agrees with faceup predict on {100 * agree:.2f}% of the web-many set")
    if once_up:
        print(f"faceup batch once Ray was up (after {summary['start_seconds']:.1f} s): {once_up:.1f} pictures/s, "
              f"{once_up / predict_rate:.2f}x faceup predict's {predict_rate:.1f}/s (whole process) on the same set")
    if per_dlib is not None:
        print(f"dlib HOG voting: {1000 * per_dlib:.1f} ms a picture in-process (first {args.dlib} web pictures); "
              f"faceup predict (every core, whole process) is {per_dlib / web_every:.1f}x faster")
    if small_dlib is not None:
        print(f"dlib HOG voting on the small set: {1000 * small_dlib:.1f} ms a picture in-process; faceup predict "
              f"(every core, whole process) is {small_dlib / small_every:.1f}x faster")


if __name__ == "__main__":
    main()
