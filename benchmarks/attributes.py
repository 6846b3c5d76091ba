"""Per-face models on held-out data, per demographic group where the data has labels.

    .venv/bin/python benchmarks/attributes.py [--limit 2000]
    .venv/bin/python benchmarks/attributes.py --table --smile-in runs/smile-2src/smile.onnx \
        --smile-models smilesmiled=runs/smile-nosmiled/smile.onnx genki4k_train=runs/smile-nogenki/smile.onnx \
                       fer2013=runs/smile-2src/smile.onnx

--table prints one table: every attribute on every source's validation faces,
in-source (a model that learnt that source) and cross-source (one that never saw
it), and what each model costs a face. See `one_table`.

- smile and gender, leave one source out (--smile-models, --gender-models): each
  source scored by a model trained without it;
- age and gender: the UTKFace validation part (never trained on);
- the orientation decision on the same UTKFace faces turned 0/90/180/270;
- with --lfw-gender: gender on a balanced set of LFW faces (another source, never
  trained on), one picture per person, the label read from the person's first
  name with gender-guesser's name dictionary (only names it calls plainly male
  or female; a name-based label is itself wrong now and then); --lfw-half: one
  half of those people (split by name: "val" chooses, "test" is held out).
Race is never predicted; UTKFace's race label is read only to split the report.
Faces go through the run-time path: BlazeFace on the picture, then the levelled
crop (smile, age) or the eye-aligned chip (the gender read-out).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faceup import datasets, faces, pipeline  # noqa: E402
from faceup.calibration import reliability  # noqa: E402
from faceup.evaluate import turned_jpeg  # noqa: E402
from faceup.models import get_model  # noqa: E402
from faceup.models.attributes import AGE_GROUPS, age_group  # noqa: E402
from faceup.train.attributes import smile_source  # noqa: E402

RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
def group_name(i: int) -> str:
    lo, hi = AGE_GROUPS[i]
    return f"{lo}+" if hi >= 200 else f"{lo}-{hi}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--data", default=None)
    ap.add_argument("--smile-models", nargs="*", default=[], metavar="SOURCE=ONNX",
                    help="smile models to score on a source they were not trained on, e.g. "
                         "genki4k_train=runs/smile-smilesmiled/smile.onnx")
    ap.add_argument("--gender-models", nargs="*", default=[], metavar="SOURCE=ONNX",
                    help="age/gender models to score on a source they were not trained on (utkface or "
                         "gender_web), e.g. gender_web=runs/ag-utkface/agegender.onnx")
    ap.add_argument("--smile-only", action="store_true", help="skip the UTKFace part")
    ap.add_argument("--lfw-gender", type=int, default=0, metavar="N",
                    help="also measure gender on N LFW women and N LFW men (needs the bench extra)")
    ap.add_argument("--lfw-half", choices=["val", "test"], default=None,
                    help="gender on one half of LFW (split by person: validation or held-out), balanced")
    ap.add_argument("--gender-compare", nargs="*", default=[], metavar="ONNX",
                    help="with --lfw-gender/--lfw-half: other gender or age/gender models on the same faces")
    ap.add_argument("--table", action="store_true", help="the one table of every attribute and source (one_table)")
    ap.add_argument("--smile-in", default=None, metavar="ONNX",
                    help="with --table: the shipped smile recipe trained with the validation tenths held back")
    ap.add_argument("--cache", default="runs/cydral-cache", help="with --table: training embeddings")
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    rng = random.Random(0)
    if args.table:
        return one_table(root, args.smile_in, dict(m.split("=", 1) for m in args.smile_models), Path(args.cache))
    print(f"command: python benchmarks/attributes.py --limit {args.limit} "
          f"--smile-models {' '.join(args.smile_models)}"
          + (f" --gender-models {' '.join(args.gender_models)}" if args.gender_models else "")
          + (f" --lfw-gender {args.lfw_gender}" if args.lfw_gender else "")
          + (f" --lfw-half {args.lfw_half}" if args.lfw_half else "")
          + (f" --gender-compare {' '.join(args.gender_compare)}" if args.gender_compare else "") + "\n")

    # smile, each source scored by a model that never saw it (leave one source out)
    print("| smile: held-out source | model trained on | faces | accuracy | no face detected (whole crop used) | "
          "accuracy, a face not found counted wrong | ECE |")
    print("|---|---|---|---|---|---|---|")
    for source, model_path in ((s.split("=")[0], s.split("=")[1]) for s in args.smile_models):
        from faceup.models.attributes import SmileModel

        smile = SmileModel.from_file(model_path)
        paths, labels = smile_source(root, source)
        idx = rng.sample(range(len(paths)), min(args.limit, len(paths)))
        right, n, missed, right_found = 0, 0, 0, 0
        conf, ok = [], []
        for i in idx:
            img = Image.open(paths[i]).convert("RGB")
            crop = faces.main_face_crop(img)
            if crop is None:
                missed += 1
            p = float(smile.predict([crop or img])[0])  # no face found: the crop is used whole
            good = int((p >= 0.5) == labels[i])
            right += good
            right_found += good if crop is not None else 0
            conf.append(max(p, 1 - p))
            ok.append(good)
            n += 1
        ece = reliability(np.array(conf), np.array(ok, bool))["ece"]
        print(f"| {source} | {model_path} | {n} | {right / n:.1%} | {missed} | {right_found / n:.1%} | {ece:.3f} |")
    print()
    if args.gender_models:
        gender_left_out(root, args.gender_models, args.limit)
    if args.lfw_gender or args.lfw_half:
        lfw_gender(root, args.lfw_gender, args.lfw_half, tuple(args.gender_compare))
    if args.smile_only:
        return

    # age, gender and orientation on UTKFace validation faces, per group
    utk = datasets.utkface(root, "val")
    utk = rng.sample(utk, min(args.limit, len(utk)))
    ag = get_model("agegender")
    read_gender = gender_reader()
    rows = defaultdict(lambda: {"n": 0, "gender": 0, "age_ok": 0, "age_err": 0.0, "orient": 0, "orient_n": 0})
    opts = pipeline.Options()
    for p in utk:
        lab = datasets.utkface_labels(p)
        if lab["age"] is None or lab["gender"] not in (0, 1):
            continue
        img = Image.open(p).convert("RGB")
        d = faces.largest_face(img)
        age = ag.predict([faces.face_crop(img, d) if d is not None else img])[0][0]
        gender, _ = read_gender(img, d)
        g_ok = gender == ("male", "female")[lab["gender"]]
        a_ok = abs(age_group(age) - age_group(lab["age"])) <= 1
        orient = sum(pipeline.predict(turned_jpeg(img, r), opts).rotation == r for r in (0, 90, 180, 270))
        keys = ["all", f"gender: {('male', 'female')[lab['gender']]}", f"age: {group_name(age_group(lab['age']))}"]
        if lab["race"] in RACES:
            keys.append(f"group: {RACES[lab['race']]}")
        for k in keys:
            r = rows[k]
            r["n"] += 1
            r["gender"] += g_ok
            r["age_ok"] += a_ok
            r["age_err"] += abs(age - lab["age"])
            r["orient"] += orient
            r["orient_n"] += 4
    print("| UTKFace validation faces | faces | gender accuracy | age: right decade group or next | "
          "age mean abs. error | orientation accuracy (4 turns) |")
    print("|---|---|---|---|---|---|")
    order = ["all"] + sorted(k for k in rows if k.startswith("gender")) + \
        [f"age: {group_name(i)}" for i in range(len(AGE_GROUPS)) if f"age: {group_name(i)}" in rows] + \
        sorted(k for k in rows if k.startswith("group"))
    for k in order:
        r = rows[k]
        print(f"| {k} | {r['n']} | {r['gender'] / r['n']:.1%} | {r['age_ok'] / r['n']:.1%} | "
              f"{r['age_err'] / r['n']:.1f} y | {r['orient'] / r['orient_n']:.2%} |")
    print("\n(group: UTKFace's own race label, used only to split this report; never predicted)")


#: UTKFace validation faces drawn from each of the nine age groups (the rule's "balanced").
PER_GROUP = 120


def utk_balanced(root: Path) -> list[tuple[Path, dict]]:
    """UTKFace's validation faces, up to PER_GROUP from each of the nine age groups."""
    from faceup.train.gender_head import utk_by_group

    return [(p, datasets.utkface_labels(p)) for p, _ in utk_by_group(root, PER_GROUP, "val")]


def embeddings(paths: list[Path], cache: Path) -> np.ndarray:
    """The shipped face network's 128-D embedding of each picture's chip (NaN rows: no face)."""
    if cache.is_file():
        return np.load(cache)
    sess = get_model("gender").session
    out = np.full((len(paths), 128), np.nan, np.float32)
    for i, p in enumerate(paths):
        img = Image.open(p).convert("RGB")
        d = faces.largest_face(img)
        if d is not None:
            out[i] = sess.run(["embedding"], {"image": faces.aligned_chip(img, d)[None]})[0][0]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out


def loso_heads(root: Path, cache: Path) -> dict[str, tuple[np.ndarray, float]]:
    """The shipped read-out's recipe learnt on one source's training faces: name of the
    source it scores -> (w, b)."""
    from faceup.train.gender_head import logistic, training_faces

    heads = {}
    for learn, scores in (("gender_web", "utkface"), ("utkface", "gender_web")):
        items = training_faces(root, (learn,))
        x = embeddings([p for p, _, _ in items], cache / f"train-{learn}.npy")
        keep = ~np.isnan(x).any(1)
        heads[scores] = logistic(x[keep], np.array([g for _, g, _ in items])[keep],
                                 groups=np.array([s for _, _, s in items])[keep])
    return heads


def one_table(root: Path, smile_in: str | None, smile_loso: dict[str, str], cache: Path) -> None:
    """Every attribute, every source, in-source and cross-source, with cost.

    Smile: each source's validation tenth (the faces `faceup train` holds back; cut
    as at run time, faces found only), in-source by `smile_in` (the shipped recipe
    with those tenths held back: the shipped model saw them) and cross-source by the
    model of `smile_loso` that never saw the source. Gender: UTKFace's validation
    faces balanced over the nine age groups and the web faces' validation part,
    in-source by the shipped answer (the read-out; the CNN below 13), cross-source by
    the shipped read-out's recipe learnt on the other source alone (the CNN below
    13 kept); LFW's validation half, a source no gender model learnt. Age: UTKFace
    (the one source with ages) in-source; the web faces and LFW's validation half,
    adults, read under 20 as a cross-source check. A face not found counts wrong.
    Cost: in-process, one face at a time, medians over 200 UTKFace faces."""
    import time

    from faceup.calibration import softmax
    from faceup.models.preprocess import to_nchw
    from faceup.train.attributes import SMILE_SOURCES, smile_data, validation_tenth

    table = []  # attribute, source, faces, in-source figure, cross-source figure, model(s)
    xs, ys, strata = smile_data(root, None, SMILE_SOURCES)
    held = validation_tenth(strata)
    xs, ys, src = xs[held], ys[held], strata[held] // 2
    smile_model = get_model("smile")
    load = (lambda path: type(smile_model).from_file(path))
    for k, source in enumerate(SMILE_SOURCES):
        mine = src == k
        acc = {}
        for kind, path in (("in", smile_in if source != "fer2013" else None), ("cross", smile_loso.get(source))):
            if path:
                model = load(path)
                logits = np.concatenate([model.run(to_nchw(xs[mine][i:i + 256])) for i in range(0, int(mine.sum()), 256)])
                p = softmax(logits)[:, 1]
                acc[kind] = f"{((p >= 0.5) == ys[mine]).mean():.2%}"
        table.append(("smile", f"{source} validation tenth", int(mine.sum()), acc.get("in", "(none learnt it)"),
                      acc.get("cross", ""), "in: shipped recipe, tenths held back; cross: the recipe without it"))

    heads = loso_heads(root, cache)
    sets = {"utkface": utk_balanced(root),
            "gender_web": [(p, {"gender": g, "age": None}) for p, g in datasets.gender_web(root, "val")],
            "lfw": [(p, {"gender": g, "age": None}) for p, g in lfw_halves(root)["val"]]}
    cnn, readout = get_model("agegender"), get_model("gender")
    got: dict[str, list] = {k: [] for k in sets}
    for name, items in sets.items():
        for path, lab in items:
            img = Image.open(path).convert("RGB")
            d = faces.largest_face(img)
            if d is None:
                got[name].append((lab, None))
                continue
            age, g_cnn, s_cnn = cnn.predict([faces.face_crop(img, d)])[0]
            female, emb = readout.session.run(["female", "embedding"], {"image": faces.aligned_chip(img, d)[None]})
            p_cnn = s_cnn if g_cnn == "female" else 1 - s_cnn
            head = heads.get(name)
            p_loso = float(1 / (1 + np.exp(-(emb[0] @ head[0] + head[1])))) if head else None
            got[name].append((lab, (age, p_cnn, float(female[0][0]), p_loso)))

    def gender_acc(name: str, loso: bool) -> str:
        ok, groups = [], []
        for lab, r in got[name]:
            groups.append(age_group(lab["age"]) if lab["age"] is not None else 0)
            if r is None:
                ok.append(False)
                continue
            age, p_cnn, p_ship, p_loso = r
            p = p_cnn if age < faces.CNN_GENDER_BELOW_AGE else (p_loso if loso else p_ship)
            ok.append((p >= 0.5) == (lab["gender"] == 1))
        ok_a, g_a = np.array(ok), np.array(groups)
        return f"{np.mean([ok_a[g_a == g].mean() for g in np.unique(g_a)]):.2%}"

    table.append(("gender", "UTKFace validation, balanced over 9 age groups", len(got["utkface"]),
                  gender_acc("utkface", False), gender_acc("utkface", True),
                  "the read-out (CNN below 13); cross: the read-out learnt on the web faces only"))
    table.append(("gender", "web faces validation (adults)", len(got["gender_web"]), gender_acc("gender_web", False),
                  gender_acc("gender_web", True), "cross: the read-out learnt on UTKFace only"))
    table.append(("gender", "LFW validation half (balanced)", len(got["lfw"]), "", gender_acc("lfw", False),
                  "shipped: no gender model learnt LFW"))
    utk = [(lab, r) for lab, r in got["utkface"]]
    g_true = np.array([age_group(lab["age"]) for lab, _ in utk])
    g_read = np.array([age_group(r[0]) if r else -9 for _, r in utk])
    near = np.mean([(abs(g_read - g_true) <= 1)[g_true == g].mean() for g in np.unique(g_true)])
    right = np.mean([(g_read == g_true)[g_true == g].mean() for g in np.unique(g_true)])
    table.append(("age", "UTKFace validation, balanced over 9 age groups", len(utk),
                  f"{right:.2%} right group, {near:.2%} within one", "(no second source with ages)", "the CNN"))
    adults = [r for name in ("gender_web", "lfw") for _, r in got[name]]
    young = np.mean([r is None or r[0] < 20 for r in adults])
    table.append(("age", "adults (web faces + LFW validation half)", len(adults), "",
                  f"{young:.2%} read under 20 (lower is better)", "the CNN"))

    print("command: python benchmarks/attributes.py --table --smile-in ... --smile-models ...")
    print("| attribute | faces (validation) | n | in-source | cross-source | models |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(str(v) for v in row) + " |")

    # cost: one face at a time, in-process, the shipped models
    items = sets["utkface"][:200]
    spent: dict[str, list[float]] = {"detector (the picture)": [], "smile (crop + model)": [],
                                     "age/gender CNN (crop + model)": [], "gender read-out (chip + network)": []}
    for path, _ in items:
        img = Image.open(path).convert("RGB")
        t0 = time.perf_counter()
        d = faces.largest_face(img)
        t1 = time.perf_counter()
        if d is None:
            continue
        smile_model.predict([faces.face_crop(img, d)])
        t2 = time.perf_counter()
        cnn.predict([faces.face_crop(img, d)])
        t3 = time.perf_counter()
        readout.predict([faces.aligned_chip(img, d)])
        t4 = time.perf_counter()
        for key, dt in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            spent[key].append(dt)
    print("\n| cost, one face at a time (median of " + str(len(spent["smile (crop + model)"])) + " UTKFace faces) | ms |")
    print("|---|---|")
    for key, v in spent.items():
        print(f"| {key} | {1000 * np.median(v):.2f} |")


def gender_reader(model_path: str | None = None):
    """(img, largest face or None) -> (gender, score) through the run-time path of a
    gender model: the shipped one (None), or an ONNX file: a gender read-out (output
    "female", on faces.aligned_chip) or an age/gender model (on the levelled crop;
    the picture whole when no face is found)."""
    import onnxruntime as ort

    from faceup.models.attributes import AgeGenderModel, GenderModel

    if model_path is None:  # the shipped answer: the read-out, the CNN's gender for children
        readout, cnn = get_model("gender"), get_model("agegender")

        def shipped(img: Image.Image, d) -> tuple[str, float]:
            return faces.gender_of(cnn.predict([faces.face_crop(img, d) if d is not None else img])[0],
                                   readout.predict([faces.aligned_chip(img, d)])[0])
        return shipped
    if "female" in [o.name for o in ort.InferenceSession(model_path).get_outputs()]:
        model = GenderModel.from_file(model_path)
    else:
        model = AgeGenderModel.from_file(model_path)

    def read(img: Image.Image, d) -> tuple[str, float]:
        if isinstance(model, GenderModel):
            return model.predict([faces.aligned_chip(img, d)])[0]
        return model.predict([faces.face_crop(img, d) if d is not None else img])[0][1:]
    return read


def gender_left_out(root: Path, models: list[str], limit: int) -> None:
    """Gender, each source scored by a model that never saw it (a random sample of
    the whole source, both its parts, the same faces for every model of a source),
    through the run-time path."""
    print("| gender: held-out source | model trained on | faces | accuracy | women | men | no face found | ECE |")
    print("|---|---|---|---|---|---|---|---|")
    for source, model_path in (m.split("=", 1) for m in models):
        read = gender_reader(model_path)
        if source == "utkface":
            pairs = [(p, datasets.utkface_labels(p)["gender"]) for s in ("train", "val") for p in datasets.utkface(root, s)]
        else:
            pairs = [(p, g) for s in ("train", "val") for p, g in datasets.gender_web(root, s)]
        pairs = random.Random(source).sample([x for x in pairs if x[1] in (0, 1)], min(limit, len(pairs)))
        right = {0: [0, 0], 1: [0, 0]}
        missed = 0
        conf, ok = [], []
        for p, g in pairs:
            img = Image.open(p).convert("RGB")
            d = faces.largest_face(img)
            missed += d is None
            gender, score = read(img, d)
            good = gender == ("male", "female")[g]
            right[g][0] += good
            right[g][1] += 1
            conf.append(score)
            ok.append(good)
        n = sum(v[1] for v in right.values())
        ece = reliability(np.array(conf), np.array(ok, bool))["ece"]
        print(f"| {source} | {model_path} | {n} | {sum(v[0] for v in right.values()) / n:.1%} | "
              f"{right[1][0] / max(1, right[1][1]):.1%} | {right[0][0] / max(1, right[0][1]):.1%} | {missed} | "
              f"{ece:.3f} |")
    print()


def lfw_people_by_gender(root: Path) -> dict[str, list[Path]]:
    """One LFW picture (the first) per person whose first name gender-guesser
    calls plainly male or female."""
    import gender_guesser.detector

    guess = gender_guesser.detector.Detector(case_sensitive=False)
    people: dict[str, Path] = {}
    for p in datasets.lfw(root):
        people.setdefault(p.stem.rsplit("_", 1)[0], p)
    out: dict[str, list[Path]] = {"male": [], "female": []}
    for name, p in sorted(people.items()):
        g = guess.get_gender(name.split("_")[0])
        if g in out:
            out[g].append(p)
    return out


def lfw_halves(root: Path) -> dict[str, list[tuple[Path, int]]]:
    """The LFW people of lfw_people_by_gender split by a crc32 of the person's name:
    even -> "val" (a cross-source validation set), odd -> "test" (held out);
    each half balanced (all of the rarer gender, as many of the other, seed 0).
    Labels: 0 male, 1 female."""
    import zlib

    by_gender = lfw_people_by_gender(root)
    out: dict[str, list[tuple[Path, int]]] = {}
    for half, parity in (("val", 0), ("test", 1)):
        part = {g: [p for p in paths if zlib.crc32(p.stem.rsplit("_", 1)[0].encode()) % 2 == parity]
                for g, paths in by_gender.items()}
        n = min(len(v) for v in part.values())
        rng = random.Random(0)
        out[half] = [(p, ("male", "female").index(g)) for g in ("male", "female")
                     for p in (part[g] if len(part[g]) == n else sorted(rng.sample(part[g], n)))]
    return out


def lfw_gender(root: Path, n: int, half: str | None = None, compare: tuple[str, ...] = ()) -> None:
    """Gender on LFW, balanced: n women and n men drawn at random (seed 1), or one half
    of lfw_halves (`half`: "val" or "test"); the shipped model and `compare` models."""
    from faceup.calibration import reliability

    if half:
        pairs = lfw_halves(root)[half]
        what = f"LFW {'validation' if half == 'val' else 'held-out'} half, balanced (never trained on)"
    else:
        by_gender = lfw_people_by_gender(root)
        rng = random.Random(1)
        n = min(n, *(len(v) for v in by_gender.values()))
        pairs = [(p, ("male", "female").index(g)) for g, paths in by_gender.items() for p in rng.sample(paths, n)]
        what = "LFW, balanced (never trained on)"
    print(f"| {what} | model | faces | gender accuracy | women | men | no face found | ECE |")
    print("|---|---|---|---|---|---|---|---|")
    for model in (None, *compare):
        read = gender_reader(model)
        ok, conf, ys, missed = [], [], [], 0
        for p, g in pairs:
            img = Image.open(p).convert("RGB")
            d = faces.largest_face(img)
            missed += d is None
            gender, score = read(img, d)
            ok.append(gender == ("male", "female")[g])
            conf.append(score)
            ys.append(g)
        ok_a, ys_a = np.array(ok), np.array(ys)
        ece = reliability(np.array(conf), ok_a)["ece"]
        print(f"| {what} | {model or 'shipped'} | {len(ok)} | {ok_a.mean():.2%} | {ok_a[ys_a == 1].mean():.1%} | "
              f"{ok_a[ys_a == 0].mean():.1%} | {missed} | {ece:.3f} |", flush=True)
    print()


if __name__ == "__main__":
    main()
