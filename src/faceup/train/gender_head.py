"""The gender model: dlib's face recognition ResNet (converted by
tools/convert_dlib_face.py, made int8 by tools/quantize_models.py) with a linear
read-out of gender learnt on its 128-D embedding, written into the same ONNX file.

The read-out is an L2 logistic regression in which every (source, gender) cell
weighs the same: UTKFace's training faces, up to 450 from each of the nine age
groups (a third of FairFace-like samples are under 20; UTKFace is 18% children),
and the web faces' training part. The network learnt faces from about 3 million
pictures of other people; only the 129 numbers of the read-out learn from ours, so
what it learns is less tied to one collection (README, "Face analysis").

    .venv/bin/faceup train --task gender --network runs/int8/gender.onnx --install
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from faceup import datasets

#: UTKFace training faces drawn from each age group.
PER_AGE_GROUP = 450


def logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 2000, lr: float = 0.5,
             groups: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """An L2 logistic regression by gradient descent on standardised features, every
    (group, class) cell weighted equally (groups: e.g. the source of each face).
    Answers (w, b) on the raw features: P(y = 1) = sigmoid(x @ w + b)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    cells = (np.zeros(len(y), int) if groups is None else groups) * 2 + y
    counts = np.bincount(cells)
    weight = len(y) / (np.count_nonzero(counts) * counts[cells])
    for _ in range(steps):
        g = weight * (1 / (1 + np.exp(-(z @ w + b))) - y)
        w -= lr * (z.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return w / sd, float(b - (mu / sd) @ w)


def sigmoid(x: np.ndarray, head: tuple[np.ndarray, float]) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ head[0] + head[1])))


def utk_by_group(root: Path, per_group: int = PER_AGE_GROUP, split: str = "train") -> list[tuple[Path, int]]:
    """Up to `per_group` UTKFace faces of `split` from each of the nine age groups (seed 0)."""
    from faceup.models.attributes import age_group

    rng = random.Random(0)
    by_group: dict[int, list[Path]] = {}
    for p in datasets.utkface(root, split):
        lab = datasets.utkface_labels(p)
        if lab["gender"] in (0, 1) and lab["age"] is not None:
            by_group.setdefault(age_group(lab["age"]), []).append(p)
    return [(p, datasets.utkface_labels(p)["gender"]) for g in sorted(by_group)
            for p in rng.sample(by_group[g], min(per_group, len(by_group[g])))]


SOURCES = ("utkface", "gender_web")


def training_faces(root: Path, sources: tuple[str, ...] = SOURCES) -> list[tuple[Path, int, int]]:
    """(path, gender 0 male / 1 female, source 0 UTKFace / 1 web faces)."""
    unknown = set(sources) - set(SOURCES)
    if unknown or not sources:
        raise ValueError(f"gender sources are {', '.join(SOURCES)}; got {', '.join(sorted(unknown)) or 'none'}")
    return (([(p, g, 0) for p, g in utk_by_group(root)] if "utkface" in sources else [])
            + ([(p, g, 1) for p, g in datasets.gender_web(root, "train")] if "gender_web" in sources else []))


def chip_of(path: Path) -> np.ndarray:
    """A face picture's chip as at run time: the largest face found, aligned."""
    from faceup import faces

    img = Image.open(path).convert("RGB")
    return faces.aligned_chip(img, faces.largest_face(img))


def embedder(network: Path) -> Callable[[Path], np.ndarray]:
    """path -> the network's 128-D embedding of its chip."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(network), providers=["CPUExecutionProvider"])
    return lambda p: sess.run(["embedding"], {"image": chip_of(p)[None]})[0][0]


def with_head(network: Path, head: tuple[np.ndarray, float], out: Path) -> Path:
    """`network` with a second output, "female" (N x 1): sigmoid(embedding @ w + b),
    placed first so that the model's first output is the answer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(network))
    g = m.graph
    w, b = head
    g.initializer.extend([numpy_helper.from_array(w.astype(np.float32).reshape(-1, 1), "gender_w"),
                          numpy_helper.from_array(np.array([b], np.float32), "gender_b")])
    g.node.extend([helper.make_node("MatMul", ["embedding", "gender_w"], ["gender_logit0"]),
                   helper.make_node("Add", ["gender_logit0", "gender_b"], ["gender_logit"]),
                   helper.make_node("Sigmoid", ["gender_logit"], ["female"])])
    outputs = list(g.output)
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("female", TensorProto.FLOAT, [None, 1]), *outputs])
    onnx.checker.check_model(m)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out))
    return out


def build(network: Path, out_dir: Path, root: Path, sources: tuple[str, ...] = SOURCES,
          on_step: Callable[[], None] | None = None) -> tuple[Path, dict]:
    """Learn the read-out on `network`'s embeddings of the training faces of `sources`
    and write out_dir/gender.onnx; answers it and the record for the registry."""
    from faceup.models.base import sha256_of

    learn = training_faces(root, sources)
    embed = embedder(network)
    xs = []
    for p, _, _ in learn:
        xs.append(embed(p))
        if on_step:
            on_step()
    y = np.array([g for _, g, _ in learn])
    src = np.array([s for _, _, s in learn])
    head = logistic(np.stack(xs), y, groups=src)
    onnx_path = with_head(network, head, out_dir / "gender.onnx")
    record = {
        "network": "dlib face recognition ResNet v1 (Davis King, CC0; PyPI face_recognition_models==0.3.0), "
                   "converted by tools/convert_dlib_face.py",
        "network_sha256": sha256_of(network),
        "head": f"logistic regression (L2 1e-3), (source, gender) cells weighted equally; {int((src == 0).sum())} "
                f"UTKFace training faces (up to {PER_AGE_GROUP} per age group, seed 0) + {int((src == 1).sum())} "
                "web training faces",
        "chip": "faces.aligned_chip: 150 px, eye centres at dlib's 5-point template",
        "recipe": "faceup train --task gender --network runs/int8/gender.onnx --install"
                  + ("" if set(sources) == set(SOURCES) else f" --sources {','.join(sources)}"),
    }
    made_by = network.with_suffix(".json")  # tools/quantize_models.py's record of the int8 network
    if made_by.is_file():
        record["quantized"] = json.loads(made_by.read_text())
    (out_dir / "gender.json").write_text(json.dumps(record, indent=2))
    return onnx_path, record
