"""Does a network that has seen more faces carry gender across sources? (A
measurement for the next step; nothing here is shipped or chosen.)

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

from attributes import lfw_halves  # noqa: E402

from faceup import datasets, faces  # noqa: E402
from faceup.train import gender_head  # noqa: E402
from faceup.train.gender_head import utk_by_group  # noqa: E402

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


def onnx_embedder(path: Path, mirror: bool = False):
    """The converted network (tools/convert_dlib_face.py) on chips as at run time
    (faces.aligned_chip on the largest face faceup's detector finds); with `mirror`,
    the mean embedding of the chip and its mirror image."""
    if not mirror:
        return gender_head.embedder(path)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def embed(p: Path) -> np.ndarray:
        chip = gender_head.chip_of(p)
        return sess.run(["embedding"], {"image": np.stack([chip, chip[:, :, ::-1]])})[0].mean(0)
    return embed


def logistic(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None):
    """The read-out faceup's gender model uses (train.gender_head.logistic), as x -> P(y = 1)."""
    head = gender_head.logistic(x, y, groups=groups)
    return lambda x2: gender_head.sigmoid(x2, head)


def cnn_genders(model, paths: list[Path]) -> np.ndarray:
    """An age/gender CNN's gender (0 male, 1 female) for each picture, through faceup's
    path (the largest face's levelled crop; the picture whole if none is found)."""
    from faceup.models.attributes import GENDERS

    out = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        out.append(GENDERS.index(model.predict([faces.main_face_crop(img) or img])[0][1]))
    return np.array(out)


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
    from faceup.models.attributes import AGE_GROUPS, age_group

    learn = [(p, g, 0) for p, g in utk_by_group(root)]
    learn += [(p, g, 1) for p, g in datasets.gender_web(root, "train")]
    val_utk = [p for p in datasets.utkface(root, "val") if datasets.utkface_labels(p)["gender"] in (0, 1)]
    x = np.stack([embed(p) for p, _, _ in learn])
    head = logistic(x, np.array([g for _, g, _ in learn]), groups=np.array([s for _, _, s in learn]))
    ag = get_model("agegender")
    utk_y = np.array([datasets.utkface_labels(p)["gender"] for p in val_utk])
    utk_age = np.array([datasets.utkface_labels(p)["age"] for p in val_utk])
    web = datasets.gender_web(root, "val")
    web_y = np.array([g for _, g in web])

    print(f"gender head learnt from {len(learn)} training faces ({sum(s == 0 for *_, s in learn)} UTKFace, "
          f"{sum(s == 1 for *_, s in learn)} web)")
    print("| validation faces | UTKFace (all) | web faces | UTKFace balanced over the 9 age groups | the same, 6 adult "
          "groups |")
    print("|---|---|---|---|---|")
    groups = np.array([age_group(a) for a in utk_age])
    for name, utk_pred, web_pred in (
            ("shipped age/gender model", cnn_genders(ag, val_utk), cnn_genders(ag, [p for p, _ in web])),
            ("embedding gender head", (head(np.stack([embed(p) for p in val_utk])) >= 0.5).astype(int),
             (head(np.stack([embed(p) for p, _ in web])) >= 0.5).astype(int))):
        right = utk_pred == utk_y
        per = [right[groups == g].mean() for g in range(len(AGE_GROUPS))]
        print(f"| {name} | {right.mean():.2%} ({len(right)}) | {(web_pred == web_y).mean():.2%} ({len(web_y)}) | "
              f"{np.mean(per):.2%} | {np.mean(per[3:]):.2%} |", flush=True)


def cross(root: Path, onnx: Path, int8: Path | None, cnn_web: Path, cnn_utk: Path, mirror: bool = False) -> None:
    """The cross-source rule (docs/research.md): LFW-validation, leave one source
    out on validation faces, in-source validation, cost per face; with --int8 the same
    heads on the int8 network's embeddings."""
    import time

    from faceup.models import get_model
    from faceup.models.attributes import AgeGenderModel, age_group

    utk_learn = utk_by_group(root)
    web_learn = datasets.gender_web(root, "train")
    utk_val = [(p, datasets.utkface_labels(p)["gender"]) for p in datasets.utkface(root, "val")
               if datasets.utkface_labels(p)["gender"] in (0, 1)]
    web_val = datasets.gender_web(root, "val")
    lfw_val = lfw_halves(root)["val"]
    utk_groups = np.array([age_group(datasets.utkface_labels(p)["age"] or 0) for p, _ in utk_val])
    y = {k: np.array([g for _, g in v]) for k, v in
         (("utk_learn", utk_learn), ("web_learn", web_learn), ("utk_val", utk_val), ("web_val", web_val),
          ("lfw_val", lfw_val))}
    sets = {"utk_learn": utk_learn, "web_learn": web_learn, "utk_val": utk_val, "web_val": web_val,
            "lfw_val": lfw_val}

    def balanced(pred: np.ndarray) -> float:
        right = pred == y["utk_val"]
        return float(np.mean([right[utk_groups == g].mean() for g in range(9)]))

    def acc(pred: np.ndarray, key: str) -> float:
        return float((pred == y[key]).mean())

    def cnn(model, key: str) -> np.ndarray:
        return cnn_genders(model, [p for p, _ in sets[key]])

    print("| model | LFW-validation (balanced) | LOSO web -> UTKFace val, balanced over 9 age groups "
          "| LOSO UTKFace -> web val | LOSO mean | UTKFace val balanced (in-source) | web val (in-source) "
          "| UTKFace val all |")
    print("|---|---|---|---|---|---|---|---|")
    shipped = get_model("agegender")
    s_utk, s_web, s_lfw = cnn(shipped, "utk_val"), cnn(shipped, "web_val"), cnn(shipped, "lfw_val")
    loso_web_utk = balanced(cnn(AgeGenderModel.from_file(cnn_web), "utk_val"))
    loso_utk_web = acc(cnn(AgeGenderModel.from_file(cnn_utk), "web_val"), "web_val")
    print(f"| shipped CNN (LOSO: {cnn_web}, {cnn_utk}) | {acc(s_lfw, 'lfw_val'):.2%} ({len(lfw_val)}) | "
          f"{loso_web_utk:.2%} | {loso_utk_web:.2%} | {(loso_web_utk + loso_utk_web) / 2:.2%} | "
          f"{balanced(s_utk):.2%} | {acc(s_web, 'web_val'):.2%} ({len(web_val)}) | {acc(s_utk, 'utk_val'):.2%} |",
          flush=True)
    for label, path in (("embedding head", onnx), ("embedding head, int8 network", int8)):
        if path is None:
            continue
        embed = onnx_embedder(path, mirror)
        t0 = time.perf_counter()
        x = {k: np.stack([embed(p) for p, _ in v]) for k, v in sets.items()}
        n = sum(len(v) for v in sets.values())
        print(f"<!-- {label}: {n} faces embedded in {time.perf_counter() - t0:.0f} s (detection included) -->")
        src = np.r_[np.zeros(len(utk_learn), int), np.ones(len(web_learn), int)]
        both = logistic(np.r_[x["utk_learn"], x["web_learn"]], np.r_[y["utk_learn"], y["web_learn"]], groups=src)
        h_web = logistic(x["web_learn"], y["web_learn"])
        h_utk = logistic(x["utk_learn"], y["utk_learn"])

        def pred(head, key, x=x):
            return (head(x[key]) >= 0.5).astype(int)
        lw, lu = balanced(pred(h_web, "utk_val")), acc(pred(h_utk, "web_val"), "web_val")
        print(f"| {label} ({path}) | {acc(pred(both, 'lfw_val'), 'lfw_val'):.2%} | {lw:.2%} | {lu:.2%} | "
              f"{(lw + lu) / 2:.2%} | {balanced(pred(both, 'utk_val')):.2%} | {acc(pred(both, 'web_val'), 'web_val'):.2%} "
              f"| {acc(pred(both, 'utk_val'), 'utk_val'):.2%} |", flush=True)
    import onnxruntime as ort

    for path in (onnx, int8):
        if path is None:
            continue
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        chip = np.random.default_rng(0).integers(0, 255, (1, 3, 150, 150)).astype(np.float32)
        sess.run(None, {"image": chip})
        ms = []
        for _ in range(30):
            t = time.perf_counter()
            sess.run(None, {"image": chip})
            ms.append((time.perf_counter() - t) * 1000)
        print(f"{path}: {np.median(ms):.1f} ms per face (median of 30, the network alone)")


def gate(root: Path) -> None:
    """The gender read-out alone, and with the age/gender CNN's gender where the CNN's
    age is below faces.CNN_GENDER_BELOW_AGE (the shipped answer), on validation faces
    (the rule is in the README)."""
    from faceup.models import get_model
    from faceup.models.attributes import GENDERS, age_group

    readout, cnn = get_model("gender"), get_model("agegender")
    sets = {"utk": [(p, datasets.utkface_labels(p)["gender"]) for p in datasets.utkface(root, "val")
                    if datasets.utkface_labels(p)["gender"] in (0, 1)],
            "lfw": lfw_halves(root)["val"], "web": datasets.gender_web(root, "val")}
    groups = np.array([age_group(datasets.utkface_labels(p)["age"] or 0) for p, _ in sets["utk"]])
    below = faces.CNN_GENDER_BELOW_AGE
    res: dict[str, dict[str, np.ndarray]] = {"read-out alone": {}, f"age gate (< {below:g} y: the CNN's gender)": {}}
    for k, items in sets.items():
        r, g = [], []
        for p, _ in items:
            img = Image.open(p).convert("RGB")
            d = faces.largest_face(img)
            ro = readout.predict([faces.aligned_chip(img, d)])[0]
            age, cg, cs = cnn.predict([faces.face_crop(img, d) if d is not None else img])[0]
            r.append(GENDERS.index(ro[0]))
            g.append(GENDERS.index(faces.gender_of((age, cg, cs), ro)[0]))
        y = np.array([lab for _, lab in items])
        for name, pred in zip(res, (r, g)):
            res[name][k] = np.array(pred) == y
    print("| validation faces | UTKFace balanced over 9 age groups | UTKFace 0-2 / 3-9 / 10-19 | UTKFace all "
          "| LFW validation half | web faces |")
    print("|---|---|---|---|---|---|")
    for name, r in res.items():
        per = [r["utk"][groups == g].mean() for g in range(9)]
        print(f"| {name} | {np.mean(per):.2%} | {per[0]:.1%} / {per[1]:.1%} / {per[2]:.1%} | {r['utk'].mean():.2%} "
              f"| {r['lfw'].mean():.2%} | {r['web'].mean():.2%} |", flush=True)


def ridge(x: np.ndarray, y: np.ndarray, lam: float = 10.0):
    """Ridge regression on standardised features (closed form); answers x -> y."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return lambda x2: ((x2 - mu) / sd) @ w + y.mean()


def age(root: Path) -> None:
    """Age from the face network's features against the age/gender CNN, on UTKFace's
    validation faces (the rule is in the README; in-source: the only source with ages)."""
    from smile_readout import feature_session

    from faceup.models import get_model
    from faceup.models.attributes import age_group

    sess = feature_session(["embedding", "flatten267_DequantizeLinear_Output"])
    cnn = get_model("agegender")

    def feats(p: Path):
        img = Image.open(p).convert("RGB")
        d = faces.largest_face(img)
        e, pooled = sess.run(["embedding", "flatten267_DequantizeLinear_Output"],
                             {"image": faces.aligned_chip(img, d)[None]})
        return e[0], pooled[0].reshape(-1), cnn.predict([faces.face_crop(img, d) if d is not None else img])[0][0]

    learn = [p for p, _ in utk_by_group(root)]
    val = [p for p in datasets.utkface(root, "val") if datasets.utkface_labels(p)["age"] is not None]
    fl = [feats(p) for p in learn]
    fv = [feats(p) for p in val]
    y_learn = np.log1p([datasets.utkface_labels(p)["age"] for p in learn])
    truth = np.array([datasets.utkface_labels(p)["age"] for p in val], float)
    groups = np.array([age_group(a) for a in truth])
    preds = {"age/gender CNN (shipped)": np.array([f[2] for f in fv])}
    for k, name in ((0, "embedding"), (1, "pooled")):
        reg = ridge(np.stack([f[k] for f in fl]), y_learn)
        preds[f"ridge on the {name}"] = np.expm1(reg(np.stack([f[k] for f in fv])))

    def score(a: np.ndarray):
        ok = np.array([abs(age_group(p) - g) <= 1 for p, g in zip(a, groups)])
        return ok.mean(), np.mean([ok[groups == g].mean() for g in range(9)]), np.abs(a - truth).mean()
    best = max((k for k in preds if k.startswith("ridge")), key=lambda k: score(preds[k])[0])
    preds[f"mean of the CNN and the {best.removeprefix('ridge on the ')} (log)"] = np.expm1(
        (np.log1p(np.clip(preds["age/gender CNN (shipped)"], 0, None)) + np.log1p(np.clip(preds[best], 0, None))) / 2)
    print(f"| UTKFace validation faces ({len(val)}) | right decade group or next | the same, balanced over 9 groups "
          "| mean abs. error |")
    print("|---|---|---|---|")
    for name, a in preds.items():
        ok, bal, mae = score(a)
        print(f"| {name} | {ok:.2%} | {bal:.2%} | {mae:.2f} y |", flush=True)


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
    ap.add_argument("--cross", action="store_true",
                    help="with --onnx: the cross-source rule (LFW-validation, leave one source out, in-source, cost)")
    ap.add_argument("--int8", default=None, help="with --cross: the int8 network, scored the same way")
    ap.add_argument("--mirror", action="store_true", help="with --cross: the mean embedding of a chip and its mirror")
    ap.add_argument("--cnn-web", default="runs/ag-web/agegender.onnx", help="--cross: the CNN recipe on web faces only")
    ap.add_argument("--cnn-utk", default="runs/ag-utkface/agegender.onnx", help="--cross: the CNN recipe on UTKFace only")
    ap.add_argument("--gate", action="store_true",
                    help="the shipped read-out against an age gate (the CNN's gender below 13 years), validation faces")
    ap.add_argument("--age", action="store_true", help="age from the face network's features, UTKFace validation")
    args = ap.parse_args()
    if args.age:
        print("command: python benchmarks/face_embedding.py --age")
        age(datasets.data_root(args.data))
        return
    if args.gate:
        print("command: python benchmarks/face_embedding.py --gate")
        gate(datasets.data_root(args.data))
        return
    if args.cross:
        if not args.onnx:
            raise SystemExit("--cross needs --onnx")
        print(f"command: python benchmarks/face_embedding.py --onnx {args.onnx} --cross"
              + (f" --int8 {args.int8}" if args.int8 else "") + (" --mirror" if args.mirror else ""))
        cross(datasets.data_root(args.data), Path(args.onnx), Path(args.int8) if args.int8 else None,
              Path(args.cnn_web), Path(args.cnn_utk), args.mirror)
        return
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
        from faceup.models.attributes import AgeGenderModel

        print(row(f"faceup's gender model without UTKFace ({args.compare}), web faces -> UTKFace",
                  cnn_genders(AgeGenderModel.from_file(args.compare), [p for p, _ in test_utk]), y["test_utk"], ages))
    p = logistic(x["learn_utk"], y["learn_utk"])(x["web"])
    print(row(f"{how} + logistic regression, UTKFace (2,000) -> web faces", (p >= 0.5).astype(int), y["web"], None))


if __name__ == "__main__":
    main()
