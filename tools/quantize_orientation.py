"""Quantize the orientation classifier to int8 (onnxruntime static quantization,
QDQ, per-channel weights), re-calibrate it on the validation part, and compare it
with the float model it came from.

    .venv/bin/python tools/quantize_orientation.py FLOAT.onnx --out runs/orientation-int8 [--install]

Activation ranges come from validation squares (never the held-out part), each in
its four quarter turns. The rule for keeping it (written before any
figure was read): validation accuracy per kind may drop by at most 0.1 point,
and then, measured once, the held-out accuracy of each held-out set too
(`faceup evaluate --heldout ...`). --install copies it into the package with its
new temperature and default --min-confidence (chosen by the same rule as the
float model's).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from faceup import datasets
from faceup.models.base import WEIGHTS, sha256_of
from faceup.models.orientation import INPUT_SIZE
from faceup.models.preprocess import to_nchw
from faceup.train import samples
from faceup.train.calibrate import calibrate, install
from faceup.train.quantize import quantize_int8

#: Validation squares used for the activation ranges (each in four turns).
CALIBRATION_SQUARES = 256


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", type=Path, help="the float orientation model (ONNX)")
    ap.add_argument("--out", type=Path, default=Path("runs/orientation-int8"))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--install", action="store_true")
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    args.out.mkdir(parents=True, exist_ok=True)

    plans = samples.plan_validation(root)
    random.Random(0).shuffle(plans)
    squares = samples.build(plans[:CALIBRATION_SQUARES], INPUT_SIZE)
    out = quantize_int8(args.model, args.out / "orientation.onnx",
                        (to_nchw(np.rot90(sq, k)[None]) for sq in squares for k in range(4)))

    float_meta = calibrate(args.model, root, INPUT_SIZE)
    int8_meta = calibrate(out, root, INPUT_SIZE)
    int8_meta["quantized"] = {"from_sha256": sha256_of(args.model), "format": "QDQ int8, per-channel weights",
                              "calibration_squares": CALIBRATION_SQUARES}
    (args.out / "calibration.json").write_text(json.dumps({"float": float_meta, "int8": int8_meta}, indent=2))
    print("| validation | cases | float accuracy | int8 accuracy | drop (points) |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for kind, f in float_meta["validation"].items():
        q = int8_meta["validation"][kind]
        drop = 100 * (f["accuracy"] - q["accuracy"])
        worst = max(worst, drop)
        print(f"| {kind} | {f['cases']} | {100 * f['accuracy']:.2f}% | {100 * q['accuracy']:.2f}% | {drop:+.2f} |")
    print(f"temperature {float_meta['temperature']:.3f} -> {int8_meta['temperature']:.3f}; "
          f"min_confidence {float_meta['min_confidence']:.3f} -> {int8_meta['min_confidence']:.3f}")
    print(f"size {args.model.stat().st_size / 1e6:.1f} MB -> {out.stat().st_size / 1e6:.1f} MB; "
          f"validation rule (drop <= 0.1 point): {'met' if worst <= 0.1 else 'NOT met'}")
    if args.install:
        print(f"installed as {install(out, int8_meta)} (float model kept as {WEIGHTS})")


if __name__ == "__main__":
    main()
