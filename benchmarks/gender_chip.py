"""The gender read-out's chip: placed by the two eye centres (shipped), or by four
BlazeFace points fitted to dlib's mean face (A), each read alone or averaged with
its mirror image (M). The rule and its figures: docs/research.md ("The gender chip").

    .venv/bin/python benchmarks/gender_chip.py [--cache runs/gender-chip-cache]

Validation faces only: LFW's validation half (no gender model learnt LFW), UTKFace's
validation faces balanced over the nine age groups and the web faces' validation
part, each in-source (the read-out learnt on both sources' training faces) and left
one source out (learnt on the other source alone). For (A) the read-out is learnt
again on (A) chips by the shipped recipe (train.gender_head.logistic). Every row
keeps the age/gender CNN's gender below 13, as shipped. A face not found counts wrong.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faceup import datasets, faces  # noqa: E402
from faceup.models import get  # noqa: E402
from faceup.models.attributes import CHIP_EYES, GENDER_CHIP, AgeGenderModel, GenderModel, age_group  # noqa: E402
from faceup.train.gender_head import logistic, training_faces  # noqa: E402

#: dlib's mean face (the 68-point template of get_face_chip_details, unit square):
#: point 30 (the nose tip) and the mean of points 62 and 66 (the mouth's centre).
NOSE_TIP = (0.490127, 0.515625)
MOUTH = (0.490127, (0.778746 + 0.831803) / 2)


def _in_chip(x: float, y: float) -> complex:
    return complex((x + 0.25) / 1.5 * GENDER_CHIP, (y + 0.25) / 1.5 * GENDER_CHIP)


TARGETS = np.array([complex(*CHIP_EYES[0]), complex(*CHIP_EYES[1]), _in_chip(*NOSE_TIP), _in_chip(*MOUTH)])


def chip_four(image: Image.Image, d) -> np.ndarray:
    """The 150 px chip placed by a least-squares similarity fit of the eye centres,
    nose tip and mouth centre to dlib's mean face (float32 3 x 150 x 150, 0..255)."""
    pts = np.array([complex(*d.keypoints[k]) for k in range(4)])
    t0, i0 = TARGETS.mean(), pts.mean()
    a = np.sum(np.conj(TARGETS - t0) * (pts - i0)) / np.sum(np.abs(TARGETS - t0) ** 2)  # chip -> picture
    b = i0 - a * t0
    chip = image.convert("RGB").transform((GENDER_CHIP, GENDER_CHIP), Image.Transform.AFFINE,
                                          (a.real, -a.imag, b.real, a.imag, a.real, b.imag),
                                          Image.Resampling.BILINEAR)
    return np.asarray(chip, np.float32).transpose(2, 0, 1)


CHIPS = {"S": faces.aligned_chip, "A": chip_four}


def embed(sess, chip: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(embedding, mirrored chip's embedding, shipped P(female), mirrored)."""
    both = np.stack([chip, np.ascontiguousarray(chip[:, :, ::-1])])
    female, emb = sess.run(["female", "embedding"], {"image": both})
    return emb[0], emb[1], float(female[0, 0]), float(female[1, 0])


def train_embeddings(root: Path, cache: Path, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both sources' training faces (the shipped recipe's): embeddings on `kind` chips
    (NaN: no face), genders, sources."""
    items = training_faces(root)
    f = cache / f"train-{kind}.npy"
    if f.is_file():
        x = np.load(f)
    else:
        sess = get(GenderModel).session
        x = np.full((len(items), 128), np.nan, np.float32)
        for i, (p, _, _) in enumerate(tqdm(items, desc=f"training faces, chip {kind}", leave=False)):
            img = Image.open(p).convert("RGB")
            d = faces.largest_face(img)
            if d is not None:
                x[i] = sess.run(["embedding"], {"image": CHIPS[kind](img, d)[None]})[0][0]
        cache.mkdir(parents=True, exist_ok=True)
        np.save(f, x)
    return x, np.array([g for _, g, _ in items]), np.array([s for _, _, s in items])


def heads(root: Path, cache: Path, kind: str) -> dict[str, tuple[np.ndarray, float]]:
    """"both": learnt on both sources; "utkface": learnt on the web faces alone (scores
    UTKFace); "gender_web": learnt on UTKFace alone."""
    x, y, src = train_embeddings(root, cache, kind)
    ok = ~np.isnan(x).any(1)
    out = {"both": logistic(x[ok], y[ok], groups=src[ok])}
    for scores, learn in (("utkface", 1), ("gender_web", 0)):
        m = ok & (src == learn)
        out[scores] = logistic(x[m], y[m], groups=src[m])
    return out


def sigmoid(e: np.ndarray, head: tuple[np.ndarray, float]) -> float:
    return float(1 / (1 + np.exp(-(e @ head[0] + head[1]))))


def main() -> None:
    from attributes import lfw_halves, utk_balanced

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--cache", default="runs/gender-chip-cache", type=Path)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    hs = {k: heads(root, args.cache, k) for k in CHIPS}
    sets = {"lfw": [(p, g, None) for p, g in lfw_halves(root)["val"]],
            "utkface": [(p, lab["gender"], lab["age"]) for p, lab in utk_balanced(root)],
            "gender_web": [(p, g, None) for p, g in datasets.gender_web(root, "val")]}
    cnn, sess = get(AgeGenderModel), get(GenderModel).session
    cands = ("S", "M", "A", "AM")
    # per set: rows of (label, age group, {candidate: (in-source p, LOSO p)}) or None for no face
    got: dict[str, list] = {k: [] for k in sets}
    spent = {"S": 0.0, "A": 0.0, "mirror": 0.0}
    n_faces = 0
    for name, items in sets.items():
        for path, g, age in tqdm(items, desc=name, leave=False):
            img = Image.open(path).convert("RGB")
            d = faces.largest_face(img)
            group = age_group(age) if age is not None else 0
            if d is None:
                got[name].append((g, group, None))
                continue
            a_cnn, g_cnn, s_cnn = cnn.predict([faces.face_crop(img, d)])[0]
            p_cnn = s_cnn if g_cnn == "female" else 1 - s_cnn
            ps = {}
            for kind in ("S", "A"):
                t0 = time.perf_counter()
                chip = CHIPS[kind](img, d)
                t1 = time.perf_counter()
                sess.run(["female"], {"image": chip[None]})
                t2 = time.perf_counter()
                spent[kind] += t2 - t0
                spent["mirror"] += (t2 - t1) if kind == "S" else 0.0
                e, em, f, fm = embed(sess, chip)
                own = (f, fm) if kind == "S" else (sigmoid(e, hs["A"]["both"]), sigmoid(em, hs["A"]["both"]))
                loso = hs[kind].get(name)
                lo = (sigmoid(e, loso), sigmoid(em, loso)) if loso else (np.nan, np.nan)
                ps[kind] = (own[0], lo[0])
                ps[kind + "M" if kind == "A" else "M"] = ((own[0] + own[1]) / 2, (lo[0] + lo[1]) / 2)
            n_faces += 1
            gate = a_cnn < faces.CNN_GENDER_BELOW_AGE
            got[name].append((g, group, {c: (p_cnn, p_cnn) if gate else ps[c] for c in cands}))

    def acc(name: str, cand: str, loso: bool) -> float:
        ok, groups = [], []
        for g, group, ps in got[name]:
            groups.append(group)
            ok.append(ps is not None and (ps[cand][1 if loso else 0] >= 0.5) == (g == 1))
        ok_a, g_a = np.array(ok), np.array(groups)
        return float(np.mean([ok_a[g_a == k].mean() for k in np.unique(g_a)]))

    extra = {"S": 0.0, "M": spent["mirror"], "A": spent["A"] - spent["S"], "AM": spent["A"] - spent["S"] + spent["mirror"]}
    print("command: python benchmarks/gender_chip.py  (no face found, counted wrong: "
          f"{sum(ps is None for v in got.values() for _, _, ps in v)})")
    print("| candidate | LFW validation half (938) | LOSO web -> UTKFace | LOSO UTKFace -> web | LOSO mean | "
          "UTKFace balanced (in-source) | web (in-source) | ms a face more |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"S": "shipped (two eyes)", "M": "(M) mirror mean", "A": "(A) four points", "AM": "(AM) both"}
    for c in cands:
        lu, lw = acc("utkface", c, True), acc("gender_web", c, True)
        print(f"| {names[c]} | {acc('lfw', c, False):.2%} | {lu:.2%} | {lw:.2%} | {(lu + lw) / 2:.2%} | "
              f"{acc('utkface', c, False):.2%} | {acc('gender_web', c, False):.2%} | "
              f"{1000 * extra[c] / max(1, n_faces):.2f} |", flush=True)


if __name__ == "__main__":
    main()
