"""Does the generic angle model help the 4-way decision on pictures without faces?

    .venv/bin/python benchmarks/scene_evidence.py [--split val|test] [--weights 0,0.5,1]

Each upright picture (face-free scenes, crowd photos) is turned 0/90/180/270,
saved as JPEG q90 and decoded as `faceup predict` would. Where the cascade looked for
faces (the classifier not sure) and found none, the classifier's calibrated probabilities p are combined with the angle
model's posterior summed over each quarter's 90-degree sector q:
log p + w log q. Prints 4-way accuracy, and the share of upright face-free
pictures that `fix` would turn at the threshold chosen by the 0.5% rule
(calibration.choose_min_confidence) on the same split.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from rich.progress import track

from faceup import calibration, datasets, imageio, orientation, pipeline
from faceup.evaluate import turned_jpeg


def collect(paths, label):
    rows = []
    for p in track(paths, description=label, transient=True):
        img = Image.open(p).convert("RGB")
        for k, r in enumerate((0, 90, 180, 270)):
            pic = imageio.read(turned_jpeg(img, r), reduce_to=pipeline.PREDICT_DECODE_SIDE).image
            o = orientation.estimate(pic)
            q = orientation.scene_quarters(pic) if o.used_faces and o.faces_found == 0 else None
            rows.append((k, np.array(o.scores), q))
    return rows


def decide(rows, w):
    truth, pred, conf = [], [], []
    for k, p, q in rows:
        logp = np.log(np.clip(p, 1e-12, 1))
        if q is not None and w:
            logp = logp + w * np.log(np.clip(q, 1e-6, 1))
        pp = np.exp(logp - logp.max())
        pp /= pp.sum()
        truth.append(k)
        pred.append(int(pp.argmax()))
        conf.append(float(pp.max()))
    return np.array(truth), np.array(pred), np.array(conf)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--weights", default="0,0.5,1")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--data", default=None)
    ap.add_argument("--install", action="store_true", help="record the last weight's threshold as the default "
                    "--min-confidence in the model registry (with --split val only)")
    args = ap.parse_args()
    if args.install and args.split != "val":
        ap.error("--install chooses on validation data only")
    root = datasets.data_root(args.data)
    sets = {"scenes": datasets.scenes(root, args.split), "crowds": datasets.crowds(root, args.split)}
    if args.limit:
        sets = {k: v[: args.limit] for k, v in sets.items()}
    rows = {k: collect(v, k) for k, v in sets.items()}
    print(f"command: python benchmarks/scene_evidence.py --split {args.split} --weights {args.weights}\n")
    default = orientation.default_min_confidence()
    print(f"| w | scenes: 4-way | crowds: 4-way | upright scenes turned at {default:.3f} (the default now) | "
          "threshold (0.5% rule on these scenes) | upright scenes turned | coverage: scenes | coverage: crowds |")
    print("|---|---|---|---|---|---|---|---|")
    for w in (float(x) for x in args.weights.split(",")):
        t, p, c = decide(rows["scenes"], w)
        ct, cp, cc = decide(rows["crowds"], w)
        up = t == 0
        thr = calibration.choose_min_confidence(c[up], p[up])
        turned = float(((p[up] != 0) & (c[up] >= thr)).mean())
        now = float(((p[up] != 0) & (c[up] >= default)).mean())
        print(f"| {w:g} | {(t == p).mean():.2%} | {(ct == cp).mean():.2%} | {now:.2%} | {thr:.3f} | {turned:.2%} | "
              f"{(c >= thr).mean():.1%} | {(cc >= thr).mean():.1%} |", flush=True)
    if args.install:
        install_threshold(thr, w)


def install_threshold(threshold: float, weight: float) -> None:
    import json

    from faceup.models.base import WEIGHTS

    reg_path = WEIGHTS / "registry.json"
    reg = json.loads(reg_path.read_text())
    meta = reg["orientation"]["meta"]
    meta["min_confidence_classifier_only"] = meta.get("min_confidence_classifier_only", meta["min_confidence"])
    meta["min_confidence"] = threshold
    meta["min_confidence_rule"] = (f"calibration.choose_min_confidence (0.5% of upright validation scenes turned) "
                                   f"through the whole cascade, scene evidence weight {weight:g}: "
                                   "benchmarks/scene_evidence.py --split val --install")
    reg_path.write_text(json.dumps(reg, indent=2) + "\n")
    print(f"default --min-confidence is now {threshold:.4f}")


if __name__ == "__main__":
    main()
