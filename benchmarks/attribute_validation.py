"""Smile and gender models side by side on the validation faces of every source
(the faces `faceup train` holds back: every tenth face of each smile source and
label; the UTKFace validation part and the web faces' validation tenth), to
choose between models by a rule set before reading the figures.

    .venv/bin/python benchmarks/attribute_validation.py --smile shipped runs/smile-all/smile.onnx
    .venv/bin/python benchmarks/attribute_validation.py --agegender shipped runs/ag-both/agegender.onnx

"shipped" is the model in the package registry. Faces are cut as at run time
(cached crops of faceup.train.attributes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from faceup import datasets
from faceup.calibration import softmax
from faceup.models import get_model
from faceup.models.attributes import AGE_SCALE
from faceup.models.base import ModelInfo, sha256_of
from faceup.models.preprocess import to_nchw
from faceup.train.attributes import GENDER_SOURCES, SMILE_SOURCES, agegender_data, smile_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attributes import age_group  # noqa: E402  (the decade groups of the per-group report)


def load(name: str, path: str):
    if path == "shipped":
        return get_model(name)
    cls = type(get_model(name))
    return cls(info=ModelInfo(name, str(Path(path).resolve()), sha256_of(Path(path))))


def run(model, xs: np.ndarray) -> np.ndarray:
    return np.concatenate([model.run(to_nchw(xs[i:i + 256])) for i in range(0, len(xs), 256)])


def smile(root: Path, paths: list[str]) -> None:
    xs, ys, strata = smile_data(root, None, SMILE_SOURCES)
    rank = np.zeros(len(ys), dtype=int)
    for g in np.unique(strata):
        members = np.flatnonzero(strata == g)
        rank[members] = np.arange(len(members))
    held = rank % 10 == 9
    xs, ys, strata = xs[held], ys[held], strata[held]
    print("| smile model | " + " | ".join(f"{s} ({int((strata // 2 == k).sum())})"
                                       for k, s in enumerate(SMILE_SOURCES)) + " | mean |")
    print("|---|" + "---|" * (len(SMILE_SOURCES) + 1))
    for path in paths:
        right = softmax(run(load("smile", path), xs)).argmax(1) == ys
        accs = [right[strata // 2 == k].mean() for k in range(len(SMILE_SOURCES))]
        print(f"| {path} | " + " | ".join(f"{a:.2%}" for a in accs) + f" | {np.mean(accs):.2%} |", flush=True)


def agegender(root: Path, paths: list[str]) -> None:
    xs, ages, genders, strata = agegender_data(root, "val", None, GENDER_SOURCES)
    print("| age/gender model | " + " | ".join(f"gender, {s} ({int((strata // 2 == k).sum())})"
                                            for k, s in enumerate(GENDER_SOURCES))
          + " | age: right decade group or next (UTKFace) | age mean abs. error |")
    print("|---|" + "---|" * (len(GENDER_SOURCES) + 2))
    for path in paths:
        out = run(load("agegender", path), xs)
        right = out[:, 1:3].argmax(1) == genders
        known = ~np.isnan(ages)
        pred_age = np.clip(out[known, 0] * AGE_SCALE, 0, 110)
        ok = np.mean([abs(age_group(a) - age_group(t)) <= 1 for a, t in zip(pred_age, ages[known])])
        print(f"| {path} | " + " | ".join(f"{right[strata // 2 == k].mean():.2%}" for k in range(len(GENDER_SOURCES)))
              + f" | {ok:.2%} | {np.abs(pred_age - ages[known]).mean():.2f} y |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smile", nargs="*", default=[], metavar="ONNX")
    ap.add_argument("--agegender", nargs="*", default=[], metavar="ONNX")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    print("command: python benchmarks/attribute_validation.py"
          + (f" --smile {' '.join(args.smile)}" if args.smile else "")
          + (f" --agegender {' '.join(args.agegender)}" if args.agegender else "") + "\n")
    if args.smile:
        smile(root, args.smile)
        print()
    if args.agegender:
        agegender(root, args.agegender)


if __name__ == "__main__":
    main()
