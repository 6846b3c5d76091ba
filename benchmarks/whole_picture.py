"""A picture that is itself a face: how often the whole-picture rule fires on
face crops whose face the detectors miss, and how often it invents one on
pictures without a face.

    .venv/bin/python benchmarks/whole_picture.py [--split val|test] [--limit 600]

Where `faces.detect_all` finds nothing (as `faceup analyze` looks), the picture
is a candidate when it is shaped like a face crop (longer side at most
faces.WHOLE_PICTURE_MAX_SIDE, sides within faces.WHOLE_PICTURE_ASPECT of each
other); the detectors then look again at the padded picture with a lower score
`s`, and the rule fires when their best face covers at least
faces.WHOLE_PICTURE_MIN_AREA of the picture. Prints, per source and for each s,
how often a face is found, how often the rule fires, and both together.
val: the validation part of each source (s is chosen here by the rule in the
research log); test: LFW and the held-out scenes, crowds, everyday photos and
street frames, measured once after.
"""

from __future__ import annotations

import argparse
import random

import numpy as np
from PIL import Image
from rich.progress import track

from faceup import datasets, faces


def person_cover(image: Image.Image) -> float:
    """The mean of the person mask (the selfie segmentation of `faceup background`):
    the share of the picture a person covers, soft edges counted by their probability."""
    from faceup.models import get
    from faceup.models.segmentation import SegmentationModel

    return float(np.asarray(get(SegmentationModel).mask(image), dtype=np.float64).mean() / 255.0)


def sources(root, split: str, limit: int) -> dict[str, list]:
    rng = random.Random(0)

    def pick(paths: list) -> list:
        return sorted(rng.sample(paths, min(limit, len(paths))))

    def every_tenth(paths: list) -> list:
        return [p for p in paths if datasets._split_by_hash(p) == "val"]

    free = {"scenes (no face)": pick(datasets.scenes(root, split)),
            "crowds (faces, small)": pick(datasets.crowds(root, split)),
            "everyday (mostly no face)": pick(datasets.objects(root, split)),
            "street (few, small faces)": pick(datasets.camvid(root, split))}
    if split == "test":
        return {"lfw (face crops)": pick(datasets.lfw(root)), **free}
    smile = root / "smile"
    return {
        "utkface (face crops)": pick(datasets.utkface(root, "val")),
        "gender_web (face crops)": pick([p for p, _ in datasets.gender_web(root, "val")]),
        "genki4k_train (face crops)": pick(datasets.genki(root, "val")),
        "smilesmiled (face crops)": pick(every_tenth(datasets.list_pictures(smile / "smilesmiled"))),
        "fer2013 (face crops)": pick(every_tenth(datasets.list_pictures(smile / "fer2013"))),
        **free,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--scores", default="0.05,0.1,0.2,0.3")
    ap.add_argument("--masks", default="", help="also ask the person mask to cover at least this share "
                    "of the picture (comma-separated candidates; default: no mask)")
    ap.add_argument("--witness", default=None, help="a face-crop witness (tools/train_facecrop.py's ONNX)")
    ap.add_argument("--witness-at", default="0.5", help="P(face crop) the witness must give (candidates)")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    scores = [float(s) for s in args.scores.split(",")]
    masks = [float(m) for m in args.masks.split(",") if m] or [None]
    if args.witness:
        from faceup.models.facecrop import FaceCropModel

        witness = FaceCropModel.from_file(args.witness)
        masks = [float(t) for t in args.witness_at.split(",")]
    pairs = [(s, m) for s in scores for m in masks]
    print(f"command: python benchmarks/whole_picture.py --split {args.split} --limit {args.limit} "
          f"--scores {args.scores}" + (f" --masks {args.masks}" if args.masks else "")
          + (f" --witness {args.witness} --witness-at {args.witness_at}" if args.witness else "") + "\n")
    what = "witness" if args.witness else "mask"
    print("| source | pictures | face found | " + " | ".join(
        f"fires at {s:g}" + ("" if m is None else f", {what} {m:g}") + " / found or fired" for s, m in pairs) + " |")
    print("|---|---|---|" + "---|" * len(pairs))
    for name, paths in sources(root, args.split, args.limit).items():
        found, best, cover = [], [], []
        for p in track(paths, description=name, transient=True):
            img = Image.open(p).convert("RGB")
            img.thumbnail((1024, 1024))  # as pipeline.analyze looks
            hit = len(faces.detect_all(img)) > 0
            found.append(hit)
            b = None if hit else faces.whole_picture_face(img, min(scores), witness=False)
            best.append(b)
            if b is None or masks == [None]:
                cover.append(0.0)
            else:
                cover.append(float(witness.p_face([img])[0]) if args.witness else person_cover(img))
        found = np.array(found)
        cells = []
        for s, m in pairs:
            fired = np.array([b is not None and b.score >= s and (m is None or c >= m) for b, c in zip(best, cover)])
            cells.append(f"{fired.mean():.1%} / {(found | fired).mean():.1%}")
        print(f"| {name} | {len(paths)} | {found.mean():.1%} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
