"""Does a classifier that also learnt everyday photos help as a second expert?

    .venv/bin/python benchmarks/everyday_expert.py EXPERT.onnx [--split val|test] [--weights 0,0.5,1,2]

EXPERT.onnx: an orientation classifier trained with `faceup train --everyday N`
or `tools/train_scene_expert.py` (its calibration.json beside it gives its
temperature, and its input side when it is not the classifier's). Each upright picture
(everyday photos, face-free scenes, crowd photos, street frames) is turned
0/90/180/270, saved as JPEG q90 and decoded as `faceup predict` does. Where the
cascade looked for faces (the shipped classifier not sure) and found none, the
expert's calibrated probabilities e join the product: log p + w log e. Prints,
for each w, 4-way accuracy per set, the threshold by the shipped rule (0.5% of
upright scenes of the same split turned), coverage and the upright everyday
photos that `fix` would turn at it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from rich.progress import track

from faceup import calibration, datasets, imageio, orientation, pipeline
from faceup.calibration import log_softmax
from faceup.evaluate import turned_jpeg
from faceup.models.orientation import INPUT_SIZE, OrientationModel
from faceup.models.preprocess import square_input


class Expert(OrientationModel):
    """The candidate, with the temperature (and input side) of its own calibration."""

    def __init__(self, path: Path):
        base = OrientationModel.from_file(path)
        super().__init__(info=base.info)
        cal = json.loads((path.parent / "calibration.json").read_text())
        cal = cal.get("int8", cal)  # tools/quantize_orientation.py keeps both
        self._t, self.size = cal["temperature"], int(cal.get("input_size", INPUT_SIZE))

    @property
    def temperature(self) -> float:
        return self._t

    def scores(self, picture, tta: bool | None = None) -> np.ndarray:
        return self.scores_many([picture], tta, squares=[square_input(picture, self.size)])[0]


def collect(paths, label, expert: Expert):
    rows = []
    for p in track(paths, description=label, transient=True):
        img = Image.open(p).convert("RGB")
        for k, r in enumerate((0, 90, 180, 270)):
            pic = imageio.read(turned_jpeg(img, r), reduce_to=pipeline.PREDICT_DECODE_SIDE).image
            o = orientation.estimate(pic)
            e = expert.scores(pic) if o.used_faces and o.faces_found == 0 else None
            rows.append((k, np.array(o.scores), e))
    return rows


def decide(rows, w):
    truth, pred, conf = [], [], []
    for k, p, e in rows:
        logp = np.log(np.clip(p, 1e-12, 1))
        if e is not None and w:
            logp = logp + w * np.log(np.clip(e, 1e-12, 1))
        pp = np.exp(log_softmax(logp))
        truth.append(k)
        pred.append(int(pp.argmax()))
        conf.append(float(pp.max()))
    return np.array(truth), np.array(pred), np.array(conf)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("expert", type=Path)
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--weights", default="0,0.5,1,2")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    expert = Expert(args.expert)
    sets = {"everyday": datasets.objects(root, args.split), "scenes": datasets.scenes(root, args.split),
            "crowds": datasets.crowds(root, args.split), "street": datasets.camvid(root, args.split)}
    rows = {k: collect(v, k, expert) for k, v in sets.items()}
    consulted = {k: float(np.mean([e is not None for _, _, e in r])) for k, r in rows.items()}
    print(f"command: python benchmarks/everyday_expert.py {args.expert} --split {args.split} --weights {args.weights}")
    print("expert consulted on: " + ", ".join(f"{k} {v:.1%}" for k, v in consulted.items()) + "\n")
    print("| w | everyday: 4-way | scenes | crowds | street | threshold (0.5% rule) | everyday: coverage | "
          "everyday: when confident | upright everyday turned |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in (float(x) for x in args.weights.split(",")):
        res = {k: decide(r, w) for k, r in rows.items()}
        t, p, c = res["scenes"]
        thr = calibration.choose_min_confidence(c[t == 0], p[t == 0])
        et, ep, ec = res["everyday"]
        sure = ec >= thr
        up = et == 0
        turned = float(((ep[up] != 0) & (ec[up] >= thr)).mean())
        acc = {k: float((tt == pp).mean()) for k, (tt, pp, _) in res.items()}
        print(f"| {w:g} | {acc['everyday']:.2%} | {acc['scenes']:.2%} | {acc['crowds']:.2%} | {acc['street']:.2%} | "
              f"{thr:.3f} | {sure.mean():.1%} | {(et == ep)[sure].mean():.2%} | {turned:.2%} |", flush=True)


if __name__ == "__main__":
    main()
