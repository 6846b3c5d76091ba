"""Person-mask evidence for the orientation ("heads above shoulders"):
where the cascade looks for faces and the four whole views show none, is the
selfie segmentation model more sure of a person in the upright view?

    .venv/bin/python benchmarks/mask_evidence.py [--split val] [--limit 100] [--strengths 2,4,8]

The same sets as benchmarks/face_evidence.py (its `build`, same seed). For each
case the classifier runs once (the cascade as shipped); where it is below
`orientation.FACE_GATE` the faces are looked for in the four views, and where
none is found the segmentation model reads each view: m_j is the mean person
probability of view j (turned back as the faces' views are), added to the
log-posterior as S * m_j. Prints per set and strength S: accuracy, wrong while
confident (shipped threshold), upright turned while confident, how often the mask
stage ran and its ms per run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_evidence import HARD, build, collect  # noqa: E402

from faceup import datasets, geometry, orientation  # noqa: E402
from faceup.calibration import log_softmax  # noqa: E402
from faceup.models import get_model  # noqa: E402


def mask_scores(image) -> np.ndarray:
    """Mean person probability of each quarter view (j quarter turns counter-clockwise, as faces.views)."""
    seg = get_model("segmentation")
    return np.array([np.asarray(seg.mask(geometry.quarter_turn(image, -90 * j)), dtype=np.float32).mean() / 255
                     for j in range(4)])


def figures(rows, strength: float, threshold: float) -> dict[str, float]:
    y = np.array([r["y"] for r in rows])
    post, ran, secs = [], 0, []
    for r in rows:
        lp = np.log(np.clip(r["p"], 1e-12, 1.0)) + orientation.FACE_STRENGTH * r["whole"]
        if "extra" in r["ev"]:
            ran += 1
            secs.append(r["secs"]["extra"])
            lp = lp + strength * r["ev"]["extra"]
        post.append(np.exp(log_softmax(lp)))
    post = np.array(post)
    pred, conf = post.argmax(1), post.max(1) >= threshold
    upright = y == 0
    return {"cases": len(y), "accuracy": float((pred == y).mean()),
            "wrong_confident": float(((pred != y) & conf).mean()),
            "upright_turned": float(((pred != 0) & conf & upright).sum() / max(1, upright.sum())),
            "ran": ran / len(y), "ms": 1000 * float(np.mean(secs)) if secs else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--data", default=None)
    ap.add_argument("--strengths", default="2,4,8")
    args = ap.parse_args()
    sets = build(datasets.data_root(args.data), args.split, args.limit, args.seed)
    threshold = orientation.default_min_confidence()
    results = {name: collect(imgs, [], extra=mask_scores) for name, imgs in sets.items()}
    results["hard (pooled)"] = [r for n in HARD for r in results[n]]
    print(f"command: python benchmarks/mask_evidence.py --split {args.split} --limit {args.limit} "
          f"--strengths {args.strengths}; threshold {threshold:.3f}")
    print("| set | mask strength | cases | mask ran | accuracy | wrong+conf | upright turned | ms per run |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        for s in [0.0] + [float(v) for v in args.strengths.split(",")]:
            f = figures(rows, s, threshold)
            print(f"| {name} | {s:g} | {f['cases']} | {f['ran']:.1%} | {f['accuracy']:.2%} | "
                  f"{f['wrong_confident']:.2%} | {f['upright_turned']:.2%} | {f['ms']:.1f} |")


if __name__ == "__main__":
    main()
