"""int8 versions of the smile, age/gender and generic angle models (for a
smaller install: static QDQ int8 with per-channel weights, as the orientation
classifier), with the float and int8 models compared on validation data; and of
the face network under the gender read-out (--src: the float network
from tools/convert_dlib_face.py; the read-out is learnt afterwards on the int8
network's embeddings by `faceup train --task gender`).

    .venv/bin/python tools/quantize_models.py smile agegender angle --out runs/int8
    .venv/bin/python benchmarks/attribute_validation.py --smile shipped runs/int8/smile.onnx \
        --agegender shipped runs/int8/agegender.onnx
    .venv/bin/python tools/quantize_models.py angle --out runs/int8 --compare   # validation scenes, 5 angles
    .venv/bin/python tools/quantize_models.py smile --out runs/int8 --install   # once the rule is met
    .venv/bin/python tools/quantize_models.py gender --src runs/dlibface.onnx --out runs/int8

Activation ranges: 512 inputs from each model's training part (smile and
age/gender: training faces cut as at run time; angle: training scenes turned by
random angles; gender: the read-out's training faces as aligned chips). The rule for keeping each model was written before any figure was
read (README, "Install size").
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import onnxruntime as ort

from faceup import datasets
from faceup.models.base import WEIGHTS, _registry_entries, sha256_of
from faceup.models.preprocess import to_nchw
from faceup.train.calibrate import install
from faceup.train.quantize import quantize_dynamic_int8, quantize_int8

CALIBRATION_INPUTS = 512
BATCH = 32


def calibration_inputs(name: str, root: Path, size: int) -> np.ndarray:
    """CALIBRATION_INPUTS uint8 NHWC inputs (size x size) from the training part of `name`'s data."""
    if name == "smile":
        from faceup.train.attributes import SMILE_SOURCES, smile_data, validation_tenth

        xs, _, strata = smile_data(root, None, SMILE_SOURCES)
        xs = xs[~validation_tenth(strata)]
    elif name == "agegender":
        from faceup.train.attributes import GENDER_SOURCES, agegender_data

        xs = agegender_data(root, "train", None, GENDER_SOURCES)[0]
    elif name == "gender":
        from faceup.train.gender_head import chip_of, training_faces

        faces = [p for p, _, _ in training_faces(root)]
        random.Random(0).shuffle(faces)
        return np.stack([chip_of(p) for p in faces[:CALIBRATION_INPUTS]])
    elif name == "angle":
        from faceup.train.angle import build

        paths = datasets.scenes(root, "train")
        random.Random(0).shuffle(paths)
        return build(paths[:CALIBRATION_INPUTS], 1, size, seed=0)[0]
    else:
        raise SystemExit(f"unknown model {name!r}: smile, agegender, angle or gender")
    pick = np.random.default_rng(0).choice(len(xs), min(CALIBRATION_INPUTS, len(xs)), replace=False)
    return xs[np.sort(pick)]


def angle_on_validation(model_path: Path | None, root: Path, draws: int = 5) -> dict:
    """The angle model (the shipped one, or `model_path`) on the validation scenes,
    `draws` random angles each, as `faceup evaluate --task angle` measures it."""
    from faceup.evaluate import evaluate_angles
    from faceup.models.angle import AngleModel

    model = AngleModel.from_file(model_path) if model_path is not None else None
    return evaluate_angles("validation scenes", datasets.scenes(root, "val"), draws=draws, model=model)


def input_side(path: Path) -> int:
    """The side of the square an ONNX model takes (its input's height)."""
    return ort.InferenceSession(str(path)).get_inputs()[0].shape[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", choices=["smile", "agegender", "angle", "gender"])
    ap.add_argument("--out", type=Path, default=Path("runs/int8"))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--compare", action="store_true", help="angle: float and int8 on the validation scenes")
    ap.add_argument("--install", action="store_true", help="put the int8 model (already made) in the package")
    ap.add_argument("--dynamic", action="store_true", help="dynamic quantization (int8 weights, no calibration)")
    ap.add_argument("--src", type=Path, default=None, help="a float model to quantize instead of the shipped one "
                    "(one model name)")
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    entries = _registry_entries()
    for name in args.models:
        out = args.out / f"{name}.onnx"
        if args.install:
            meta = dict(entries[name].meta)
            if "input_size" in meta:  # the model made may take another size than the one it replaces
                meta["input_size"] = input_side(out)
            meta["quantized"] = json.loads((args.out / f"{name}.json").read_text())
            print(f"installed as {install(out, meta, name=name)}")
            continue
        src = args.src or WEIGHTS / entries[name].file
        if not out.exists():
            record = {"from_sha256": sha256_of(src)}
            if name == "gender":  # NCHW float chips already
                xs = calibration_inputs(name, root, 0)
                quantize_int8(src, out, (xs[i:i + BATCH] for i in range(0, len(xs), BATCH)))
                record |= {"format": "QDQ int8, per-channel weights", "calibration_inputs": len(xs),
                           "tool": "tools/quantize_models.py"}
            elif args.dynamic:
                quantize_dynamic_int8(src, out)
                record |= {"format": "dynamic int8 (weights per channel)", "tool": "tools/quantize_models.py --dynamic"}
            else:
                xs = calibration_inputs(name, root, input_side(src))
                quantize_int8(src, out, (to_nchw(xs[i:i + BATCH]) for i in range(0, len(xs), BATCH)))
                record |= {"format": "QDQ int8, per-channel weights", "calibration_inputs": len(xs),
                           "tool": "tools/quantize_models.py"}
            (args.out / f"{name}.json").write_text(json.dumps(record, indent=2))
            print(f"{name}: {src.stat().st_size / 1e6:.1f} MB -> {out.stat().st_size / 1e6:.1f} MB ({out})")
        if args.compare and name == "angle":
            print("| angle model | validation scenes x angles | mean error | median error | within 5° |")
            print("|---|---|---|---|---|")
            for label, path in (("shipped", None), (f"float {src}", src), ("int8", out)):
                r = angle_on_validation(path, root)
                print(f"| {label} | {r['cases']} | {r['mean_error']:.2f}° | {r['median_error']:.2f}° | "
                      f"{r['within_5']:.2%} |", flush=True)


if __name__ == "__main__":
    main()
