"""Smile and gender models side by side on the validation faces of every source
(the faces `faceup train` holds back: every tenth face of each smile source and
label; the UTKFace validation part and the web faces' validation tenth), to
choose between models by a rule set before reading the figures.

    .venv/bin/python benchmarks/attribute_validation.py --smile shipped runs/smile-all/smile.onnx
    .venv/bin/python benchmarks/attribute_validation.py --agegender shipped runs/ag-both/agegender.onnx
    .venv/bin/python benchmarks/attribute_validation.py --smile shipped shipped+mirror   # with mirror images
    .venv/bin/python benchmarks/attribute_validation.py --smile 'shipped&runs/expression.onnx'   # two models' mean
    .venv/bin/python benchmarks/attribute_validation.py --smile-ranking smilesmiled=runs/smile-nosmiled/smile.onnx
    .venv/bin/python benchmarks/attribute_validation.py --gender shipped runs/gender/gender.onnx
    .venv/bin/python benchmarks/attribute_validation.py --smile-calibrate runs/smile-2src/smile.onnx

--gender: the gender read-out on the face network (its own chips, aligned by the
detector's eyes, so no cached crops), on the same validation faces and on the
validation half of LFW (benchmarks/attributes.py lfw_halves: a source neither
model learnt from).

"shipped" is the model in the package registry. Faces are cut as at run time
(cached crops of faceup.train.attributes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from faceup import datasets
from faceup.calibration import reliability, softmax
from faceup.models import get_model
from faceup.models.attributes import AGE_GROUPS, AGE_SCALE, age_group
from faceup.models.preprocess import to_nchw
from faceup.train.attributes import GENDER_SOURCES, SMILE_SOURCES, agegender_data, smile_data, validation_tenth


def load(name: str, path: str):
    if path == "shipped":
        return get_model(name)
    return type(get_model(name)).from_file(path)


def run(model, xs: np.ndarray) -> np.ndarray:
    return np.concatenate([model.run(to_nchw(xs[i:i + 256])) for i in range(0, len(xs), 256)])


def smile(root: Path, paths: list[str], crop: str = "level") -> None:
    xs, ys, strata = smile_data(root, None, SMILE_SOURCES, crop)
    held = validation_tenth(strata)  # the faces `faceup train --task smile` holds back
    xs, ys, strata = xs[held], ys[held], strata[held]
    print("| smile model | " + " | ".join(f"{s} ({int((strata // 2 == k).sum())})"
                                       for k, s in enumerate(SMILE_SOURCES)) + " | mean | ECE per source |")
    print("|---|" + "---|" * (len(SMILE_SOURCES) + 2))
    for path in paths:
        # "MODEL+mirror": each face averaged with its mirror image; "A&B": the mean of
        # two models' probabilities on the same crops
        models = [load("smile", one) for one in path.removesuffix("+mirror").split("&")]
        views = [xs, np.ascontiguousarray(xs[:, :, ::-1])] if path.endswith("+mirror") else [xs]
        p = np.mean([softmax(run(m, v)) for m in models for v in views], 0)
        right = p.argmax(1) == ys
        accs = [right[strata // 2 == k].mean() for k in range(len(SMILE_SOURCES))]
        rel = {s: reliability(p.max(1)[strata // 2 == k], right[strata // 2 == k])
               for k, s in enumerate(SMILE_SOURCES)}
        print(f"| {path} | " + " | ".join(f"{a:.2%}" for a in accs) + f" | {np.mean(accs):.2%} | "
              + " / ".join(f"{r['ece']:.3f}" for r in rel.values()) + " |", flush=True)
    return rel


def smile_pairs(root: Path, pairs: list[str]) -> None:
    """LEVEL,ALIGNED: the mean smile probability of a model on level crops and one on
    aligned chips, each source's validation tenth (the same faces, each cut its own way)."""
    xl, ys, strata = smile_data(root, None, SMILE_SOURCES)
    xa, ya, sa = smile_data(root, None, SMILE_SOURCES, "aligned")
    assert (ys == ya).all() and (strata == sa).all()  # the same faces kept, in the same order
    held = validation_tenth(strata)
    xl, xa, ys, strata = xl[held], xa[held], ys[held], strata[held]
    print("| smile pair (level, aligned) | " + " | ".join(f"{s} ({int((strata // 2 == k).sum())})"
                                                      for k, s in enumerate(SMILE_SOURCES)) + " | mean |")
    print("|---|" + "---|" * (len(SMILE_SOURCES) + 1))
    for pair in pairs:
        level, aligned = pair.split(",")
        p = (softmax(run(load("smile", level), xl)) + softmax(run(load("smile", aligned), xa))) / 2
        accs = [(p.argmax(1) == ys)[strata // 2 == k].mean() for k in range(len(SMILE_SOURCES))]
        print(f"| {pair} | " + " | ".join(f"{a:.2%}" for a in accs) + f" | {np.mean(accs):.2%} |", flush=True)


def rank_auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic; ties count a half)."""
    _, group, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[group]  # 1-based ranks, ties averaged
    n1 = int(y.sum())
    n0 = len(y) - n1
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def smile_ranking(root: Path, pairs: list[str]) -> None:
    """SOURCE=ONNX: a model that never saw SOURCE, on SOURCE's validation tenth: does it
    rank that source's faces well (AUC) and where does it put the line (share called
    smiling at 0.5 against the share labelled smiling)? The best single threshold's
    accuracy needs the source's own labels: an oracle, shown only to tell ranking
    errors from a different definition of a smile."""
    xs, ys, strata = smile_data(root, None, SMILE_SOURCES)
    held = validation_tenth(strata)
    xs, ys, strata = xs[held], ys[held], strata[held]
    print("| source left out | model | faces | accuracy at 0.5 | AUC | called smiling | labelled smiling "
          "| accuracy at the source's best threshold (oracle) |")
    print("|---|---|---|---|---|---|---|---|")
    for pair in pairs:
        source, path = pair.split("=", 1)
        mine = strata // 2 == SMILE_SOURCES.index(source)
        p = softmax(run(load("smile", path), xs[mine]))[:, 1]
        y = ys[mine]
        best = max(((p >= t) == y).mean() for t in np.linspace(0.01, 0.99, 99))
        print(f"| {source} | {path} | {int(mine.sum())} | {((p >= 0.5) == y).mean():.2%} | {rank_auc(p, y):.3f} "
              f"| {(p >= 0.5).mean():.1%} | {y.mean():.1%} | {best:.2%} |", flush=True)


def platt(p: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """(a, b) of sigmoid(a * logit(p) + b), a weighted logistic fit (Newton's method)."""
    z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1 - 1e-6))
    x = np.stack([z, np.ones_like(z)], 1)
    theta = np.array([1.0, 0.0])
    for _ in range(50):
        q = 1 / (1 + np.exp(-(x @ theta)))
        grad = x.T @ (weight * (q - y))
        hess = (x * (weight * q * (1 - q))[:, None]).T @ x + 1e-9 * np.eye(2)
        theta -= np.linalg.solve(hess, grad)
    return float(theta[0]), float(theta[1])


def mapped(p: np.ndarray, ab: tuple[float, float]) -> np.ndarray:
    z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1 - 1e-6))
    return 1 / (1 + np.exp(-(ab[0] * z + ab[1])))


def smile_calibrate(root: Path, path: str) -> tuple[float, float]:
    """The rule of docs/research.md ("A calibrated smile score"): a Platt map learnt on
    the SMILEsmileD and GENKI-4K validation tenths pooled (each source weighing the
    same), figures out of fold (two folds by face); FER-2013 beside. Answers the map
    learnt on all of the pooled faces."""
    xs, ys, strata = smile_data(root, None, SMILE_SOURCES)
    held = validation_tenth(strata)
    xs, ys, src = xs[held], ys[held], strata[held] // 2
    p_model = softmax(run(load("smile", path), xs))[:, 1]
    p_shipped = softmax(run(load("smile", "shipped"), xs))[:, 1]
    pooled = src < 2  # SMILEsmileD, GENKI-4K
    weight = np.where(pooled, 1.0 / np.bincount(src, minlength=3)[src], 0.0)
    fold = np.zeros(len(ys), int)
    for k in range(3):
        members = np.flatnonzero(src == k)
        fold[members] = np.arange(len(members)) % 2
    out_of_fold = np.empty_like(p_model)
    for f in (0, 1):
        ab = platt(p_model[fold != f], ys[fold != f], weight[fold != f])
        out_of_fold[fold == f] = mapped(p_model[fold == f], ab)
    ab_all = platt(p_model, ys, weight)

    def row(name: str, p: np.ndarray) -> None:
        accs, eces, called = [], [], []
        for k in range(3):
            mine = src == k
            right = (p[mine] >= 0.5) == ys[mine]
            accs.append(right.mean())
            eces.append(reliability(np.maximum(p[mine], 1 - p[mine]), right)["ece"])
            called.append((p[mine] >= 0.5).mean())
        print(f"| {name} | " + " | ".join(f"{a:.2%} / {e:.3f} / {c:.1%}" for a, e, c in zip(accs, eces, called))
              + f" | {np.mean(accs[:2]):.2%} | {np.mean(eces[:2]):.3f} |", flush=True)

    print("| smile model (validation tenths) | " + " | ".join(
        f"{s} ({int((src == k).sum())}): accuracy / ECE / called smiling" for k, s in enumerate(SMILE_SOURCES))
        + " | mean accuracy (first two) | mean ECE (first two) |")
    print("|---|---|---|---|---|---|")
    print("| (labelled smiling) | " + " | ".join(f"{ys[src == k].mean():.1%}" for k in range(3)) + " | | |")
    row("shipped (saw the first two tenths)", p_shipped)
    row(f"{path}", p_model)
    row(f"{path} with the pooled map (out of fold)", out_of_fold)
    print(f"\nthe map learnt on all pooled faces: a = {ab_all[0]:.4f}, b = {ab_all[1]:.4f} "
          f"(0.5 falls at p = {1 / (1 + np.exp(ab_all[1] / ab_all[0])):.3f})")
    return ab_all


def agegender(root: Path, paths: list[str]) -> None:
    xs, ages, genders, strata = agegender_data(root, "val", None, GENDER_SOURCES)
    print("| age/gender model | " + " | ".join(f"gender, {s} ({int((strata // 2 == k).sum())})"
                                            for k, s in enumerate(GENDER_SOURCES))
          + " | gender, UTKFace balanced by age group (9 groups) | the same, adults (6 groups) "
          + "| age: right decade group or next (UTKFace) | age mean abs. error | gender ECE per source |")
    print("|---|" + "---|" * (len(GENDER_SOURCES) + 5))
    for path in paths:
        out = run(load("agegender", path), xs)
        right = out[:, 1:3].argmax(1) == genders
        pg = softmax(out[:, 1:3]).max(1)
        rel = {s: reliability(pg[strata // 2 == k], right[strata // 2 == k]) for k, s in enumerate(GENDER_SOURCES)}
        known = ~np.isnan(ages)
        pred_age = np.clip(out[known, 0] * AGE_SCALE, 0, 110)
        ok = np.mean([abs(age_group(a) - age_group(t)) <= 1 for a, t in zip(pred_age, ages[known])])
        # as a test set balanced by age group would weigh them (FairFace's: a third under 20)
        groups = np.array([age_group(a) for a in ages[known]])
        per_group = [right[known][groups == g].mean() for g in range(len(AGE_GROUPS)) if (groups == g).any()]
        print(f"| {path} | " + " | ".join(f"{right[strata // 2 == k].mean():.2%}" for k in range(len(GENDER_SOURCES)))
              + f" | {np.mean(per_group):.2%} | {np.mean(per_group[3:]):.2%} | {ok:.2%} | {np.abs(pred_age - ages[known]).mean():.2f} y | "
              + " / ".join(f"{r['ece']:.3f}" for r in rel.values()) + " |", flush=True)
    return rel


def gender(root: Path, paths: list[str]) -> dict:
    import sys

    from faceup.train.gender_head import chip_of

    sys.path.insert(0, str(Path(__file__).parent))
    from attributes import lfw_halves

    sets = {"utkface": [(p, datasets.utkface_labels(p)["gender"]) for p in datasets.utkface(root, "val")
                        if datasets.utkface_labels(p)["gender"] in (0, 1)],
            "gender_web": datasets.gender_web(root, "val"),
            "LFW validation half": lfw_halves(root)["val"]}
    chips = {k: np.stack([chip_of(p) for p, _ in v]) for k, v in sets.items()}
    print("| gender model | " + " | ".join(f"{k} ({len(v)})" for k, v in sets.items()) + " | ECE per source |")
    print("|---|" + "---|" * (len(sets) + 1))
    for path in paths:
        model = load("gender", path)
        rel = {}
        accs = []
        for k, v in sets.items():
            female = np.concatenate([model.session.run(["female"], {"image": chips[k][i:i + 64]})[0][:, 0]
                                     for i in range(0, len(v), 64)])
            right = (female >= 0.5) == np.array([g for _, g in v])
            accs.append(right.mean())
            rel[k] = reliability(np.maximum(female, 1 - female), right)
        print(f"| {path} | " + " | ".join(f"{a:.2%}" for a in accs) + " | "
              + " / ".join(f"{r['ece']:.3f}" for r in rel.values()) + " |", flush=True)
    return rel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smile", nargs="*", default=[], metavar="ONNX")
    ap.add_argument("--agegender", nargs="*", default=[], metavar="ONNX")
    ap.add_argument("--gender", nargs="*", default=[], metavar="ONNX")
    ap.add_argument("--smile-pairs", nargs="*", default=[], metavar="LEVEL,ALIGNED",
                    help="the mean of a level-crop and an aligned-chip smile model")
    ap.add_argument("--smile-ranking", nargs="*", default=[], metavar="SOURCE=ONNX",
                    help="a model that never saw SOURCE: AUC, share called smiling, oracle threshold")
    ap.add_argument("--crop", choices=["level", "aligned"], default="level",
                    help="--smile: faces cut as faces.face_crop (level) or faces.aligned_chip (aligned)")
    ap.add_argument("--smile-calibrate", default=None, metavar="ONNX",
                    help="the pooled Platt map of a smile model trained with the tenths held back")
    ap.add_argument("--data", default=None)
    ap.add_argument("--reliability-png", default=None, metavar="PATH",
                    help="draw the last model's reliability diagram per source (needs the plots extra)")
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    print("command: python benchmarks/attribute_validation.py"
          + (f" --smile {' '.join(args.smile)}" if args.smile else "")
          + (f" --agegender {' '.join(args.agegender)}" if args.agegender else "")
          + (f" --gender {' '.join(args.gender)}" if args.gender else "")
          + (f" --crop {args.crop}" if args.crop != "level" else "")
          + (f" --smile-pairs {' '.join(args.smile_pairs)}" if args.smile_pairs else "")
          + (f" --smile-ranking {' '.join(args.smile_ranking)}" if args.smile_ranking else "")
          + (f" --smile-calibrate {args.smile_calibrate}" if args.smile_calibrate else "") + "\n")
    if args.smile_calibrate:
        smile_calibrate(root, args.smile_calibrate)
        print()
    if args.smile_ranking:
        smile_ranking(root, args.smile_ranking)
        print()
    if args.smile_pairs:
        smile_pairs(root, args.smile_pairs)
        print()
    panels = {}
    if args.smile:
        panels.update({f"smile, {k}": v for k, v in smile(root, args.smile, args.crop).items()})
        print()
    if args.agegender:
        panels.update({f"gender (age/gender model), {k}": v for k, v in agegender(root, args.agegender).items()})
        print()
    if args.gender:
        panels.update({f"gender, {k}": v for k, v in gender(root, args.gender).items()})
    if args.reliability_png:
        draw(panels, args.reliability_png)


def draw(panels: dict[str, dict], path: str) -> None:
    """One reliability diagram per source: mean confidence against accuracy per bin."""
    from faceup.evaluate import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.3), dpi=110, squeeze=False)
    for ax, (name, rel) in zip(axes[0], panels.items()):
        ax.plot([0.5, 1], [0.5, 1], "--", color="grey", lw=1)
        ax.plot([b["confidence"] for b in rel["bins"]], [b["accuracy"] for b in rel["bins"]], "o-")
        ax.set_xlim(0.48, 1.01)
        ax.set_ylim(0.2, 1.02)
        ax.set_xlabel("confidence")
        ax.set_title(f"{name}\nECE {rel['ece']:.3f}", fontsize=9)
    axes[0][0].set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
