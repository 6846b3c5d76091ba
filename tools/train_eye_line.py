"""Train the eye-line reader: a small network that reads the clockwise tilt of the
eye line from a crop around the eyes (`eye_crop`).

    .venv/bin/python tools/train_eye_line.py --out runs/eye-line [--epochs 12] [--install]

Faces: the video frames of the 68-landmark pack whose person has no frame in its
validation part (so `benchmarks/fine_angle.py`'s video frames are never learnt
from); the truth is the line between the centres of the two eyes' landmarks. Each
frame gives CROPS crops, each with a random tilt within TILT degrees, a shift and a
span of the crop (as BlazeFace's eye points would place it), and half of them mirrored (the
tilt then changes sign). The network (four convolutions, from scratch; 0..255 RGB
in, normalised inside) is exported to ONNX; --install copies it into the package
as `eyeline`. Needs the train extra.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from rich.progress import track
from torch import nn

from faceup import datasets
from faceup.models.preprocess import to_nchw
from faceup.train.calibrate import install

#: The eye-line reader's crop: EYE_CROP_SIZE px square, EYE_CROP_SPAN times the
#: distance between the eyes on a side, centred between them.
EYE_CROP_SIZE = 64
EYE_CROP_SPAN = 2.6


def eye_crop(image: Image.Image, right_eye, left_eye, tilt_cw: float = 0.0, span: float = EYE_CROP_SPAN,
             shift=(0.0, 0.0)) -> Image.Image:
    """The square around the eyes (`right_eye`: the subject's, on the image's left),
    turned so that the eye line's clockwise tilt becomes `tilt_cw` (0: level);
    `span` and `shift` (in eye distances) move the crop as a detector's eyes would."""
    r, l = np.asarray(right_eye, dtype=float), np.asarray(left_eye, dtype=float)
    dist = max(float(np.linalg.norm(l - r)), 1.0)
    now = float(np.degrees(np.arctan2(l[1] - r[1], l[0] - r[0])))
    cx, cy = (r + l) / 2 + np.asarray(shift) * dist
    turned = image.convert("RGB").rotate(now - tilt_cw, resample=Image.Resampling.BILINEAR,
                                         center=(float(cx), float(cy)))
    half = span * dist / 2
    box = tuple(int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    return turned.crop(box).resize((EYE_CROP_SIZE, EYE_CROP_SIZE), Image.Resampling.BILINEAR)


CROPS = 16
TILT = 12.0


def person(p: Path) -> str:
    return re.sub(r"_\d+$", "", p.stem)


def samples(frames: list[Path], marks: dict, rng: random.Random, crops: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for p in track(frames, description="crops", transient=True):
        img = Image.open(p).convert("RGB")
        pts = np.asarray(marks[p.name], dtype=float)
        right, left = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
        for _ in range(crops):
            tilt = rng.uniform(-TILT, TILT)
            crop = eye_crop(img, right, left, tilt, span=EYE_CROP_SPAN * rng.uniform(0.85, 1.15),
                            shift=(rng.uniform(-0.12, 0.12), rng.uniform(-0.12, 0.12)))
            if rng.random() < 0.5:
                crop, tilt = ImageOps.mirror(crop), -tilt
            xs.append(np.asarray(crop))
            ys.append(tilt)
    return np.stack(xs), np.array(ys, dtype=np.float32)


class EyeLine(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for cout in (16, 32, 64, 128):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                       nn.MaxPool2d(2)]
            cin = cout
        side = EYE_CROP_SIZE // 16
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(128 * side * side, 64), nn.ReLU(),
                                  nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x / 127.5 - 1.0)[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/eye-line"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--install", action="store_true")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    root = datasets.data_root(args.data)
    marks = datasets.frames68_landmarks(root)
    held = {person(p) for p in datasets.frames68(root, "val")}
    frames = [p for p in datasets.frames68(root, "train") if person(p) not in held]
    people = sorted({person(p) for p in frames})
    rng.shuffle(people)
    check = set(people[:15])  # a few people kept aside to watch the training, never a figure that chooses
    t0 = time.time()
    xt, yt = samples([p for p in frames if person(p) not in check], marks, rng, CROPS)
    xc, yc = samples([p for p in frames if person(p) in check], marks, rng, 4)
    print(f"{len(yt)} training crops, {len(yc)} to watch ({len(people)} people; {time.time() - t0:.0f} s)",
          flush=True)
    net = EyeLine()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = args.epochs * ((len(yt) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    xt_t, yt_t = torch.from_numpy(to_nchw(xt)), torch.from_numpy(yt)
    xc_t = torch.from_numpy(to_nchw(xc))
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(yt))
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            loss = nn.functional.smooth_l1_loss(net(xt_t[idx]), yt_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            err = np.abs(net(xc_t).numpy() - yc)
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}; people set aside: mean error {err.mean():.2f}°, "
              f"median {np.median(err):.2f}°", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "eyeline.onnx"
    torch.onnx.export(net.eval(), (torch.zeros(1, 3, EYE_CROP_SIZE, EYE_CROP_SIZE),), str(path),
                      input_names=["crop"], output_names=["tilt"],
                      dynamic_axes={"crop": {0: "batch"}, "tilt": {0: "batch"}}, opset_version=17, dynamo=False)
    meta = {"crop_size": EYE_CROP_SIZE, "crop_span": EYE_CROP_SPAN, "trained_on": f"{len(frames)} video frames, "
            f"{len(people)} people with no frame in the validation part", "max_tilt": TILT}
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    if args.install:
        print(f"installed as {install(path, meta, name='eyeline')}")


if __name__ == "__main__":
    main()
