"""Calibrate an exported orientation model on the validation part of the data and
record it in the model registry (sha256, temperature, default --min-confidence).

Runs on onnxruntime through the same code as inference (test-time augmentation
included), so the confidence it calibrates is the one users see.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from faceup.calibration import choose_min_confidence, fit_temperature, reliability
from faceup.models.base import WEIGHTS, sha256_of
from faceup.models.orientation import NUM_CLASSES, OrientationModel, log_softmax, realign, tta_batch
from faceup.train import samples

#: Validation kinds, each reported on its own.
KINDS = ("face", "web face", "frame", "crowd", "scene", "everyday", "street")


def kind_of_path(path: str) -> str:
    for part, kind in (("/objects/", "everyday"), ("/camvid/", "street"), ("/scenes/", "scene"), ("/crowds/", "crowd"), ("/gender_web/", "web face"),
                       ("/frames68/", "frame")):
        if part in path:
            return kind
    return "face"


def calibrate(onnx_path: Path, data_root: Path, size: int, scale: float = 1.0) -> dict:
    plans = samples.plan_validation(data_root, scale=scale)
    squares = samples.build(plans, size)
    kinds = [kind_of_path(p.paths[0]) for p in plans]
    model = OrientationModel.from_file(onnx_path)
    logits, labels, kind_of = [], [], []
    for sq, kind in zip(squares, kinds):
        for k in range(NUM_CLASSES):
            turned = np.rot90(sq, -k)  # k quarter turns clockwise: label k
            logits.append(realign(model.logits(tta_batch(turned))))
            labels.append(k)
            kind_of.append(kind)
    z, y, kind_arr = np.array(logits), np.array(labels), np.array(kind_of)
    temperature = fit_temperature(z, y)
    p = np.exp(log_softmax(z / temperature))
    pred, conf = p.argmax(1), p.max(1)
    upright_scenes = (y == 0) & (kind_arr == "scene")
    min_conf = choose_min_confidence(conf[upright_scenes], pred[upright_scenes])
    per_kind = {}
    for kind in KINDS:
        m = kind_arr == kind
        if m.any():
            confident = conf[m] >= min_conf
            per_kind[kind] = {
                "cases": int(m.sum()),
                "accuracy": float((pred[m] == y[m]).mean()),
                "coverage": float(confident.mean()),
                "accuracy_when_confident": float((pred[m] == y[m])[confident].mean()) if confident.any() else None,
            }
    return {
        "temperature": temperature,
        "min_confidence": min_conf,
        "input_size": size,
        "validation": per_kind,
        "ece": reliability(conf, pred == y)["ece"],
    }


def install(onnx_path: Path, meta: dict, name: str = "orientation") -> Path:
    """Copy the model into the package and record it in weights/registry.json."""
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    dest = WEIGHTS / f"{name}.onnx"
    shutil.copyfile(onnx_path, dest)
    reg_path = WEIGHTS / "registry.json"
    reg = json.loads(reg_path.read_text()) if reg_path.exists() else {}
    reg[name] = {"file": dest.name, "sha256": sha256_of(dest), "meta": meta}
    reg_path.write_text(json.dumps(reg, indent=2) + "\n")
    return dest
