"""The orientation's face evidence on hard pictures of people: which fallback, if any,
to try when the four whole-picture views show no face (`faces.EVIDENCE_FALLBACKS`).

    .venv/bin/python benchmarks/face_evidence.py [--split val] [--limit 100]

Validation data only by default (`--split val`; `--split test` builds the same
kinds from held-out parts: LFW faces, held-out scenes and crowds). The hard kinds
are the failures faceup was found making, made from upright faces and face-free scenes
by `faceup.train.hard`: small faces on a scene, a grey high-contrast video frame
of a person inside a circle, a cover with a face and lines of text, a painted group.

Each picture is turned by 0/90/180/270, saved as JPEG q90 and decoded as
`faceup predict` decodes it; the classifier runs once per case (the cascade as
shipped), and every fallback's face evidence is computed on the cases the
classifier is less sure of than `orientation.FACE_GATE`. Prints per set and
fallback: accuracy, wrong while confident (shipped threshold), upright turned
while confident, and the face stage's ms per gated case.
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

from faceup import datasets, faces, imageio, orientation, pipeline  # noqa: E402
from faceup.calibration import log_softmax  # noqa: E402
from faceup.evaluate import turned_jpeg  # noqa: E402
from faceup.train import hard  # noqa: E402


def synthetic(scene, face, rng):
    """As benchmarks/stages.py's synthetic scenes (faces 12-50% of the shorter side)."""
    bg = scene().convert("RGB").resize(rng.choice([(320, 240), (240, 320), (400, 300), (300, 300)]))
    for _ in range(rng.choice([1, 1, 2, 3, 5])):
        hard.paste_face(bg, face(), int(min(bg.size) * rng.uniform(0.12, 0.5)), rng)
    if rng.random() < 0.2:
        bg = bg.convert("L").convert("RGB")
    return bg


HARD = tuple(hard.MAKERS)


def build(root: Path, split: str, limit: int, seed: int) -> dict[str, list[Image.Image]]:
    rng = random.Random(seed)
    sources = hard.measuring_sources(root, split)
    scenes, faces_ = sources[0], sources[1]
    sets = {kind: [hard.make(kind, sources, rng) for _ in range(limit)] for kind in hard.MAKERS}
    sets["synthetic"] = [synthetic(hard.opener(scenes, rng), hard.opener(faces_, rng), rng) for _ in range(limit)]
    sets["crowds"] = [imageio.read(p).image for p in datasets.crowds(root, split)]
    sets["scenes"] = [imageio.read(p).image for p in scenes]
    return sets


def collect(images: list[Image.Image], fallbacks: list[str], extra=None):
    """Per case: truth, the classifier's posterior, whether the cascade looks for
    faces, the whole views' evidence and seconds, and per fallback (run only where
    the whole views show no face) its evidence and seconds; `extra(picture)`, other
    evidence run there too, is kept under the key "extra" (benchmarks/mask_evidence.py)."""
    m = orientation.model()
    rows = []
    for img in images:
        for k, r in enumerate(orientation.ROTATIONS):
            pic = imageio.read(turned_jpeg(img, r), reduce_to=pipeline.PREDICT_DECODE_SIDE).image
            p = m.scores(pic)
            gated = p.max() < orientation.FACE_GATE
            whole, t_whole, ev, secs = np.zeros(4), 0.0, {}, {}
            if gated:
                t0 = time.perf_counter()
                views = faces.views(pic)
                t_whole = time.perf_counter() - t0
                whole = np.array([v.evidence for v in views])
                if not any(v.detections for v in views):
                    for fb in fallbacks:
                        t0 = time.perf_counter()
                        ev[fb] = np.array([v.evidence for v in faces.fallback_views(pic, fb)])
                        secs[fb] = time.perf_counter() - t0
                    if extra is not None:
                        t0 = time.perf_counter()
                        ev["extra"] = extra(pic)
                        secs["extra"] = time.perf_counter() - t0
            rows.append({"y": k, "p": p, "gated": gated, "whole": whole, "t_whole": t_whole, "ev": ev, "secs": secs})
    return rows


def figures(rows, fb: str, threshold: float, only_unsure: bool) -> dict[str, float]:
    """The cascade's answers with fallback `fb` (run where no whole-view face was
    found and, with only_unsure, where the classifier is below the threshold)."""
    y = np.array([r["y"] for r in rows])
    post, ms, ran = [], [], 0
    for r in rows:
        lp = np.log(np.clip(r["p"], 1e-12, 1.0))
        if r["gated"]:
            ev, t = r["whole"], r["t_whole"]
            if fb in r["ev"] and (not only_unsure or r["p"].max() < threshold):
                ev, t, ran = r["ev"][fb], t + r["secs"][fb], ran + 1
            lp = lp + orientation.FACE_STRENGTH * ev
            ms.append(1000 * t)
        post.append(np.exp(log_softmax(lp)))
    post = np.array(post)
    pred, conf = post.argmax(1), post.max(1) >= threshold
    upright = y == 0
    return {
        "cases": len(y),
        "accuracy": float((pred == y).mean()),
        "wrong_confident": float(((pred != y) & conf).mean()),
        "upright_turned": float(((pred != 0) & conf & upright).sum() / max(1, upright.sum())),
        "gated": float(np.mean([r["gated"] for r in rows])),
        "fallback_ran": ran / len(y),
        "ms_gated": float(np.mean(ms)) if ms else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--limit", type=int, default=100, help="pictures of each made kind")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--data", default=None)
    ap.add_argument("--fallbacks", default=",".join(faces.EVIDENCE_FALLBACKS))
    ap.add_argument("--save-examples", default=None, help="folder: write the first 3 pictures of each kind")
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    fallbacks = args.fallbacks.split(",")
    sets = build(root, args.split, args.limit, args.seed)
    if args.save_examples:
        out = Path(args.save_examples)
        out.mkdir(parents=True, exist_ok=True)
        for name, imgs in sets.items():
            for i, img in enumerate(imgs[:3]):
                img.save(out / f"{name}-{i}.jpg", quality=90)
    threshold = orientation.default_min_confidence()
    results = {}
    for name, imgs in sets.items():
        results[name] = collect(imgs, fallbacks)
    results["hard (pooled)"] = [r for n in HARD for r in results[n]]
    variants = [("none", False)] + [(fb, u) for fb in fallbacks if fb != "none" for u in (False, True)]
    print(f"split {args.split}; threshold {threshold:.3f}; face strength {orientation.FACE_STRENGTH}; "
          "'@unsure': the fallback only where the classifier is below the threshold")
    print(f"{'set':<14} {'variant':<16} {'cases':>6} {'gated':>6} {'fallback ran':>12} {'accuracy':>9} "
          f"{'wrong+conf':>10} {'upright turned':>14} {'ms/gated':>8}")
    for name, rows in results.items():
        for fb, unsure in variants:
            f = figures(rows, fb, threshold, unsure)
            label = fb + ("@unsure" if unsure else "")
            print(f"{name:<14} {label:<16} {f['cases']:>6} {f['gated']:6.1%} {f['fallback_ran']:12.1%} "
                  f"{f['accuracy']:9.2%} {f['wrong_confident']:10.2%} {f['upright_turned']:14.2%} {f['ms_gated']:8.1f}")

if __name__ == "__main__":
    main()
