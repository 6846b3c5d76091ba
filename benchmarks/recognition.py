"""Why faceup exists, measured end to end: a real face-recognition network on
turned pictures, before and after `faceup fix`.

The recogniser is dlib's face recognition ResNet (Davis King, CC0; from PyPI
`face_recognition_models`, the network faceup ships as `gender.onnx`, whose
second output is dlib's 128-D descriptor), used as a recognition service uses
it: find the largest face (BlazeFace, on the picture as it arrives), align it
by its eyes onto dlib's 150 px chip, describe it; where no face is found, the
picture is taken as a face crop as it is (LFW's pictures are face crops). Two
pictures show the same person when their descriptors are closer than 0.6,
dlib's own threshold.

Pairs: LFW faces (../shared/data/faces/lfw, 96 px crops), half of them two
pictures of one person, half of two people, drawn with a fixed seed. One picture
of each pair is turned 0/90/180/270 degrees at random (its own seed) and saved
as JPEG q90, as a phone or scanner would hand it over. Three rows:
(a) both upright, (b) turned as they arrive, (c) turned, then through `faceup
fix` (the library call, default options) before the recogniser sees them.

    .venv/bin/python benchmarks/recognition.py [--pairs 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from faceup import datasets, faces, pipeline
from faceup.models import get_model

TURN = {0: None, 90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
THRESHOLD = 0.6


def pairs(root: Path, n: int, seed: int) -> list[tuple[Path, Path, bool]]:
    by_person: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(datasets.lfw(root)):
        by_person[p.stem.rsplit("_", 1)[0]].append(p)
    rng = random.Random(seed)
    many = sorted(k for k, v in by_person.items() if len(v) >= 2)
    people = sorted(by_person)
    out = []
    for i in range(n):
        if i % 2 == 0:
            a, b = rng.sample(by_person[rng.choice(many)], 2)
            out.append((a, b, True))
        else:
            x, y = rng.sample(people, 2)
            out.append((rng.choice(by_person[x]), rng.choice(by_person[y]), False))
    return out


def turned_jpeg(path: Path, rotation: int) -> bytes:
    img = Image.open(path).convert("RGB")
    if TURN[rotation] is not None:
        img = img.transpose(TURN[rotation])
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def describe(image: Image.Image) -> tuple[np.ndarray, bool]:
    """dlib's 128-D descriptor of the picture's largest face (found or not)."""
    d = faces.largest_face(image, min_score=0.5)
    chip = faces.aligned_chip(image, d)
    model = get_model("gender")
    emb = model.session.run(["embedding"], {"image": chip[None]})[0][0]
    return emb, d is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    root = args.data or datasets.data_root()
    if root is None:
        sys.exit("no data: give --data or set FACEUP_DATA (../shared/data)")
    todo = pairs(root, args.pairs, args.seed)
    rng = random.Random(args.seed + 1)
    rotations = [rng.choice((0, 90, 180, 270)) for _ in todo]
    cache: dict[Path, tuple[np.ndarray, bool]] = {}
    rows = {"(a) upright": [], "(b) turned, as they arrive": [], "(c) turned, then faceup fix": []}
    found = {k: 0 for k in rows}
    fix_ms = []
    for (a, b, same), rot in zip(todo, rotations):
        if a not in cache:
            cache[a] = describe(Image.open(io.BytesIO(turned_jpeg(a, 0))).convert("RGB"))
        ea, _ = cache[a]
        upright = Image.open(io.BytesIO(turned_jpeg(b, 0))).convert("RGB")
        turned_bytes = turned_jpeg(b, rot)
        t = time.perf_counter()
        fixed = pipeline.fix(turned_bytes)
        fix_ms.append(1000 * (time.perf_counter() - t))
        views = {"(a) upright": upright,
                 "(b) turned, as they arrive": Image.open(io.BytesIO(turned_bytes)).convert("RGB"),
                 "(c) turned, then faceup fix": Image.open(io.BytesIO(fixed.data)).convert("RGB")}
        for name, img in views.items():
            eb, seen = describe(img)
            found[name] += seen
            rows[name].append((float(np.linalg.norm(ea - eb)) < THRESHOLD) == same)
    n = len(todo)
    turned = sum(r != 0 for r in rotations)
    print(f"command: python benchmarks/recognition.py --pairs {args.pairs} --seed {args.seed}")
    print(f"{n} LFW pairs ({n - n // 2} same person, {n // 2} different); one picture of each turned "
          f"(0/90/180/270: {', '.join(str(rotations.count(r)) for r in (0, 90, 180, 270))}); "
          f"faceup fix {np.median(fix_ms):.1f} ms median a picture")
    print(f"{'':<30} {'verification accuracy':>22} {'on turned pairs':>16} {'face found':>11}")
    for name, ok in rows.items():
        on_turned = [x for x, r in zip(ok, rotations) if r != 0]
        print(f"{name:<30} {100 * np.mean(ok):>21.2f}% {100 * np.mean(on_turned):>15.2f}% "
              f"{100 * found[name] / n:>10.1f}%")
    print(f"({turned} of {n} pairs have a turned picture)")


if __name__ == "__main__":
    main()
