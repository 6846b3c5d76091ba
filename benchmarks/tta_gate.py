"""Where should the cascade's test-time-augmentation gate sit for the shipped classifier?

    .venv/bin/python benchmarks/tta_gate.py [--gates 0.9,0.95,...] [--scale 1.0]

On the validation squares of every kind (never trained on, never a held-out
figure), each in its four quarter turns, the shipped orientation classifier is
run once on the four turned copies of each case: copy 0 is the single pass, the
four together the test-time augmentation. For every gate the cascade's answer
is the single pass when it is at least that sure and the four-copy average
otherwise, with the shipped temperature; "confident" is at the shipped
--min-confidence. Prints, per gate and kind: errors, wrong while confident, upright
scenes (and everyday and street photos) turned while confident, and the share of cases sent to the four turns.
The rule that chooses among the gates is in the research log.
"""

from __future__ import annotations

import argparse

import numpy as np
from rich.progress import track

from faceup import datasets
from faceup.calibration import log_softmax
from faceup.models import orientation as om
from faceup.models.base import get
from faceup.train import samples
from faceup.train.calibrate import KINDS, kind_of_path

CANDIDATES = (0.9, 0.95, 0.98, 0.99, 0.995, 0.998, om.TTA_GATE)


def collect(scale: float, data: str | None):
    root = datasets.data_root(data)
    plans = samples.plan_validation(root, scale=scale)
    squares = samples.build(plans, om.INPUT_SIZE)
    model = get(om.OrientationModel)
    t = model.temperature
    single, four, labels, kinds = [], [], [], []
    for sq, plan in track(list(zip(squares, plans)), description="validation squares", transient=True):
        for k in range(om.NUM_CLASSES):
            logits = model.logits(om.tta_batch(np.rot90(sq, -k)))  # k quarter turns clockwise: label k
            single.append(np.exp(log_softmax(log_softmax(logits[0]) / t)))
            four.append(np.exp(log_softmax(om.realign(logits) / t)))
            labels.append(k)
            kinds.append(kind_of_path(plan.paths[0]))
    return np.array(single), np.array(four), np.array(labels), np.array(kinds)


def cascade(single: np.ndarray, four: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:
    looked = single.max(axis=1) < gate
    return np.where(looked[:, None], four, single), looked


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gates", default=",".join(str(g) for g in CANDIDATES))
    ap.add_argument("--scale", type=float, default=1.0, help="share of the validation part (1: all of it)")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    single, four, y, kind = collect(args.scale, args.data)
    min_conf = float(get(om.OrientationModel).info.meta["min_confidence"])
    present = [k for k in KINDS if (kind == k).any()]
    print(f"{len(y)} cases ({', '.join(f'{k} {int((kind == k).sum())}' for k in present)}); "
          f"temperature {get(om.OrientationModel).temperature:.3f}, --min-confidence {min_conf:.3f}")
    print("| gate | four turns | errors | wrong while confident | upright scenes turned | upright everyday/street turned | "
          + " | ".join(f"{k} errors" for k in present) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(present))
    for gate in sorted({float(g) for g in args.gates.split(",")}):
        p, looked = cascade(single, four, gate)
        pred, conf = p.argmax(1), p.max(1)
        wrong = pred != y
        sure_wrong = wrong & (conf >= min_conf)
        turns = (pred != 0) & (conf >= min_conf)
        upright_scenes, upright_photos = (y == 0) & (kind == "scene"), (y == 0) & np.isin(kind, ("everyday", "street"))
        per_kind = " | ".join(str(int(wrong[kind == k].sum())) for k in present)
        print(f"| {gate:g} | {100 * looked.mean():.1f}% | {int(wrong.sum())} | {int(sure_wrong.sum())} | "
              f"{int((turns & upright_scenes).sum())} of {int(upright_scenes.sum())} | "
              f"{int((turns & upright_photos).sum())} of {int(upright_photos.sum())} | {per_kind} |")


if __name__ == "__main__":
    main()
