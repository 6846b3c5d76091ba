"""How often a face is found where a person sees one: face crops and face-filled
frames of every source, and how often one is "found" in face-free scenes, for
each way of retrying when nothing is found at first (faces.FALLBACKS).

    .venv/bin/python benchmarks/face_crops.py [--split val|test] [--limit 600]

val: the validation part of each source (a fallback is chosen here, by the rule in
the README); test: LFW (never trained on) and the held-out scenes, measured once
after. A tight face crop (SMILEsmileD, FER-2013, GENKI-4K) is one a user sends to
`faceup analyze`; a face not found is a face the smile, age and gender models
never see.
"""

from __future__ import annotations

import argparse
import random
import time

from PIL import Image
from rich.progress import track

from faceup import datasets, faces


def sources(root, split: str, limit: int) -> dict[str, list]:
    rng = random.Random(0)

    def pick(paths: list) -> list:
        return sorted(rng.sample(paths, min(limit, len(paths))))

    def every_tenth(paths: list) -> list:  # a validation part for sources without a split
        return [p for p in paths if datasets._split_by_hash(p) == "val"]

    if split == "test":
        return {"lfw (faces)": pick(datasets.lfw(root)), "scenes (face-free)": pick(datasets.scenes(root, "test"))}
    smile = root / "smile"
    return {
        "utkface (faces)": pick(datasets.utkface(root, "val")),
        "gender_web (faces)": pick([p for p, _ in datasets.gender_web(root, "val")]),
        "genki4k_train (faces)": pick(datasets.genki(root, "val")),
        "smilesmiled (faces)": pick(every_tenth(datasets.list_pictures(smile / "smilesmiled"))),
        "fer2013 (faces)": pick(every_tenth(datasets.list_pictures(smile / "fer2013"))),
        "frames68 (faces)": pick(every_tenth(datasets.list_pictures(root / "landmarks" / "frames68"))),
        "scenes (face-free)": pick(datasets.scenes(root, "val")),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--fallbacks", default=",".join(faces.FALLBACKS))
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    picked = sources(root, args.split, args.limit)
    names = args.fallbacks.split(",")
    print(f"command: python benchmarks/face_crops.py --split {args.split} --limit {args.limit} "
          f"--fallbacks {args.fallbacks}\n")
    print("| source | pictures | " + " | ".join(f"found, {n}" for n in names) + " | ms per picture |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for source, paths in picked.items():
        found = dict.fromkeys(names, 0)
        t0 = time.perf_counter()
        for p in track(paths, description=source, transient=True):
            img = Image.open(p).convert("RGB")
            for n in names:
                found[n] += bool(faces.detect_all(img, fallback=n))
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(paths)) / len(names)
        print(f"| {source} | {len(paths)} | " + " | ".join(f"{found[n] / max(1, len(paths)):.1%}" for n in names)
              + f" | {ms:.0f} |", flush=True)


if __name__ == "__main__":
    main()
