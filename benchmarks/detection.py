"""Face detection recall and precision on the crowd photos (`faceup analyze`'s
faces), for each way of looking for small faces (faces.TILINGS).

    .venv/bin/python benchmarks/detection.py [--split val|test] [--tilings whole,tiles-2,tiles-3]
    .venv/bin/python benchmarks/detection.py --kinds [--split val|test] [--limit 100]

With --kinds: recall per picture type instead, on the hard kinds of
faceup.train.hard (small faces, a grey portrait in a circle, a cover, a painted
group; made as benchmarks/face_evidence.py makes them, upright): a placed face
picture is found when a detection's centre lies inside it.

The crowd photos' validation part (numbers ending in 3) is where a tiling is
chosen; the held-out part (numbers ending in 0 or 5) is measured once after.
A labelled face is found when a detection overlaps it with IoU >= 0.3; a
detection is right when it overlaps a labelled face so. Recall is given for all
labelled faces and for those at least 20 px wide (a face a person sees); many
crowd faces are masked, which BlazeFace was not made for.
"""

from __future__ import annotations

import argparse
import json
import time

from PIL import Image

from faceup import datasets, faces


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def kinds(root, split: str, limit: int, seed: int = 11) -> None:
    import random

    from faceup.train import hard

    rng = random.Random(seed)
    sources = hard.measuring_sources(root, split)
    print(f"command: python benchmarks/detection.py --kinds --split {split} --limit {limit}")
    print("| picture type | pictures | placed faces | found | pictures with every face found | ms per picture |")
    print("|---|---|---|---|---|---|")
    for kind in hard.MAKERS:
        placed = found = whole = 0
        t = 0.0
        for _ in range(limit):
            boxes: list = []
            img = hard.make(kind, sources, rng, boxes)
            t0 = time.perf_counter()
            got = faces.detect_all(img)
            t += time.perf_counter() - t0
            centres = [((d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2) for d in got]
            hits = [any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for x, y in centres) for b in boxes]
            placed += len(boxes)
            found += sum(hits)
            whole += all(hits)
        print(f"| {kind} | {limit} | {placed} | {found / placed:.1%} | {whole / limit:.1%} | {1000 * t / limit:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--tilings", default=",".join(faces.TILINGS))
    ap.add_argument("--kinds", action="store_true", help="recall per picture type on the hard kinds")
    ap.add_argument("--limit", type=int, default=100, help="with --kinds: pictures of each kind")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    if args.kinds:
        kinds(root, args.split, args.limit)
        return
    labels = json.loads((root / "photos" / "crowds" / "faces.json").read_text())
    photos = datasets.crowds(root, args.split)
    print(f"command: python benchmarks/detection.py --split {args.split} --tilings {args.tilings}")
    print("| crowd photos | tiling | photos | faces | recall | recall, faces >= 20 px | detections | precision | "
          "ms per photo |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tiling in args.tilings.split(","):
        found_all = found_big = n_all = n_big = dets = right = 0
        t0 = time.perf_counter()
        for p in photos:
            truth = [f["box"] for f in labels.get(p.name, [])]
            got = [d.box for d in faces.detect_all(Image.open(p).convert("RGB"), tiling=tiling)]
            dets += len(got)
            right += sum(any(iou(g, t) >= 0.3 for t in truth) for g in got)
            for t in truth:
                hit = any(iou(g, t) >= 0.3 for g in got)
                n_all += 1
                found_all += hit
                if t[2] - t[0] >= 20:
                    n_big += 1
                    found_big += hit
        ms = 1000 * (time.perf_counter() - t0) / len(photos)
        print(f"| {args.split} | {tiling} | {len(photos)} | {n_all} | {found_all / n_all:.1%} | "
              f"{found_big / max(1, n_big):.1%} ({n_big}) | {dets} | {right / max(1, dets):.1%} | {ms:.0f} |")


if __name__ == "__main__":
    main()
