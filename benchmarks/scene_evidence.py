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


def collect(paths, label, scene: bool = True):
    rows = []
    for p in track(paths, description=label, transient=True):
        img = Image.open(p).convert("RGB")
        for k, r in enumerate((0, 90, 180, 270)):
            pic = imageio.read(turned_jpeg(img, r), reduce_to=pipeline.PREDICT_DECODE_SIDE).image
            o = orientation.estimate(pic)
            no_face = o.used_faces and o.faces_found == 0
            q = orientation.scene_quarters(pic) if no_face and scene else None
            rows.append((k, np.array(o.scores), q, no_face))
    return rows


def decide(rows, w):
    truth, pred, conf = [], [], []
    for k, p, q, _ in rows:
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
    ap.add_argument("--no-face", action="store_true",
                    help="choose the threshold for pictures in which the cascade finds no face: the 0.5%% rule "
                         "on the upright ones among the scenes, everyday photos and street frames, pooled "
                         "(with --install: recorded as min_confidence_no_face)")
    args = ap.parse_args()
    if args.install and args.split != "val":
        ap.error("--install chooses on validation data only")
    root = datasets.data_root(args.data)
    if args.no_face:
        return no_face_threshold(root, args)
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


def no_face_threshold(root, args) -> None:
    sets = {"scenes": datasets.scenes(root, args.split), "everyday": datasets.objects(root, args.split),
            "street": datasets.camvid(root, args.split)}
    if args.limit:
        sets = {k: v[: args.limit] for k, v in sets.items()}
    rows = {k: collect(v, k, scene=False) for k, v in sets.items()}  # only the cascade's own answers
    default = orientation.default_min_confidence()
    pooled = [(k, p) for r in rows.values() for k, p, _, no_face in r if no_face and k == 0]
    conf = np.array([p.max() for _, p in pooled])
    pred = np.array([int(p.argmax()) for _, p in pooled])
    thr = max(default, calibration.choose_min_confidence(conf, pred))
    print(f"command: python benchmarks/scene_evidence.py --split {args.split} --no-face\n")
    print(f"upright pictures with no face found (pooled): {len(pooled)}; threshold by the 0.5% rule: "
          f"{calibration.choose_min_confidence(conf, pred):.4f} (the default now: {default:.4f})\n")
    print("| set | cases | no face found | accuracy | coverage at the default | coverage at the new | "
          "upright turned at the default | upright turned at the new |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        t = np.array([k for k, *_ in r])
        p = np.array([int(x.argmax()) for _, x, _, _ in r])
        c = np.array([x.max() for _, x, _, _ in r])
        nf = np.array([f for *_, f in r])
        new = np.where(nf, thr, default)
        up = t == 0
        print(f"| {name} | {len(t)} | {nf.mean():.1%} | {(t == p).mean():.2%} | {(c >= default).mean():.1%} | "
              f"{(c >= new).mean():.1%} | {((p != 0) & (c >= default))[up].mean():.2%} | "
              f"{((p != 0) & (c >= new))[up].mean():.2%} |", flush=True)
    if args.install and thr > default:
        import json

        from faceup.models.base import WEIGHTS

        reg_path = WEIGHTS / "registry.json"
        reg = json.loads(reg_path.read_text())
        reg["orientation"]["meta"]["min_confidence_no_face"] = thr
        reg["orientation"]["meta"]["min_confidence_no_face_rule"] = (
            "calibration.choose_min_confidence (0.5% turned) on the upright validation scenes, everyday photos "
            "and street frames in which the cascade finds no face, pooled: "
            "benchmarks/scene_evidence.py --split val --no-face --install")
        reg_path.write_text(json.dumps(reg, indent=2) + "\n")
        print(f"\nthe threshold where no face is found is now {thr:.4f}")


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
