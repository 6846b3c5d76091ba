"""Does the gender model's face network carry smile across sources?

A logistic read-out (faceup.train.gender_head.logistic: every (source, label)
cell weighted equally) on features of the shipped int8 face network (gender.onnx,
dlib's face recognition ResNet) of faces.aligned_chip chips, against faceup's smile
CNN, both leaving one source out, on each smile source's validation tenth (the
faces `faceup train --task smile` holds back):

    .venv/bin/python benchmarks/smile_readout.py

Features: "embedding" (128-D, what the gender read-out uses) and "pooled" (the
256-D average of the last residual block, before dlib's fc). CNN references: the
recipe retrained without each source (runs/smile-nosmiled, runs/smile-nogenki,
runs/smile-nofer; README "Face analysis") and, in-source, runs/smile-nofer (the
two-source recipe with the tenth held back) and the shipped model. The rule this
answers is in the README.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faceup import datasets  # noqa: E402
from faceup.calibration import softmax  # noqa: E402
from faceup.models import get_model  # noqa: E402
from faceup.models.attributes import SmileModel  # noqa: E402
from faceup.models.base import WEIGHTS  # noqa: E402
from faceup.models.preprocess import to_nchw  # noqa: E402
from faceup.train.attributes import SMILE_SOURCES, smile_faces, validation_tenth  # noqa: E402
from faceup.train.gender_head import chip_of, logistic, sigmoid  # noqa: E402

FEATURES = {"embedding": "embedding", "pooled": "flatten267_DequantizeLinear_Output"}
LEARN_PER_SOURCE = 2000
CNN_WITHOUT = {"smilesmiled": "runs/smile-nosmiled/smile.onnx", "genki4k_train": "runs/smile-nogenki/smile.onnx",
               "fer2013": "runs/smile-nofer/smile.onnx"}


def source_faces(root: Path, source: str):
    """(paths, labels, crops, is_validation) of one source's faces as smile_data keeps them."""
    paths, crops, ys = smile_faces(root, source)
    return paths, ys, crops, validation_tenth(ys)


def feature_session(names: list[str]):
    import onnx
    import onnxruntime as ort
    from onnx import helper

    m = onnx.load(str(WEIGHTS / "gender.onnx"))
    known = {o.name for o in m.graph.output}
    for n in names:
        if n not in known:
            m.graph.output.append(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    print("command: python benchmarks/smile_readout.py\n")
    sess = feature_session(list(FEATURES.values()))
    data = {}
    for s in SMILE_SOURCES:
        paths, ys, crops, val = source_faces(root, s)
        learn = np.flatnonzero(~val)
        learn = np.sort(np.random.default_rng(0).choice(learn, min(LEARN_PER_SOURCE, len(learn)), replace=False))
        use = np.r_[learn, np.flatnonzero(val)]
        feats = {k: [] for k in FEATURES}
        for i in use:
            out = sess.run(list(FEATURES.values()), {"image": chip_of(paths[i])[None]})
            for k, o in zip(FEATURES, out):
                feats[k].append(o.reshape(-1))
        n_learn = len(learn)
        data[s] = {"y_learn": ys[learn], "y_val": ys[val], "crops_val": crops[val],
                   **{f"{k}_learn": np.stack(v[:n_learn]) for k, v in feats.items()},
                   **{f"{k}_val": np.stack(v[n_learn:]) for k, v in feats.items()}}
        print(f"<!-- {s}: {n_learn} faces to learn from, {int(val.sum())} validation faces -->", flush=True)

    def cnn(path: str | None, s: str) -> float:
        model = get_model("smile") if path is None else SmileModel.from_file(path)
        xs = data[s]["crops_val"]
        p = np.concatenate([softmax(model.run(to_nchw(xs[i:i + 256]))) for i in range(0, len(xs), 256)])
        return float((p.argmax(1) == data[s]["y_val"]).mean())

    def readout(feature: str, learn_from: list[str], s: str) -> float:
        x = np.concatenate([data[t][f"{feature}_learn"] for t in learn_from])
        y = np.concatenate([data[t]["y_learn"] for t in learn_from])
        g = np.concatenate([np.full(len(data[t]["y_learn"]), k) for k, t in enumerate(learn_from)])
        head = logistic(x, y, groups=g)
        return float(((sigmoid(data[s][f"{feature}_val"], head) >= 0.5) == data[s]["y_val"]).mean())

    cols = list(SMILE_SOURCES)
    print("| smile, validation tenth | " + " | ".join(f"LOSO {s} ({len(data[s]['y_val'])})" for s in cols)
          + " | LOSO mean | in-source " + " | in-source ".join(cols) + " |")
    print("|---|" + "---|" * (2 * len(cols) + 1))
    loso = [cnn(CNN_WITHOUT[s], s) for s in cols]
    ref = [cnn("runs/smile-nofer/smile.onnx", s) for s in cols]
    shipped = [cnn(None, s) for s in cols]
    print(f"| CNN (LOSO: {', '.join(CNN_WITHOUT[s] for s in cols)}; in-source runs/smile-nofer) | "
          + " | ".join(f"{a:.2%}" for a in loso) + f" | {np.mean(loso):.2%} | "
          + " | ".join(f"{a:.2%}" for a in ref) + " |")
    print("| shipped smile model (in-source; it saw SMILEsmileD's and GENKI-4K's validation faces) | | | | | "
          + " | ".join(f"{a:.2%}" for a in shipped) + " |")
    for feature in FEATURES:
        lo = [readout(feature, [t for t in cols if t != s], s) for s in cols]
        ins = [readout(feature, cols, s) for s in cols]
        print(f"| read-out on the face network's {feature} | " + " | ".join(f"{a:.2%}" for a in lo)
              + f" | {np.mean(lo):.2%} | " + " | ".join(f"{a:.2%}" for a in ins) + " |", flush=True)


if __name__ == "__main__":
    main()
