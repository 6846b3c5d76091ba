"""Train the face-free expert: EfficientNet-Lite2's ImageNet features (frozen) at
224 px and a small head that tells the four quarter turns.

    .venv/bin/python tools/train_scene_expert.py --out runs/scene-expert [--epochs 30]

Pictures: the training parts of the everyday photos (three random crops each),
the face-free scenes, the street frames and the crowd photos; each saved as JPEG
q90, squashed to 224 px as the classifier squashes (`square_input`) and turned
0/90/180/270 exactly. The backbone's 7x7 feature maps are computed once (cached in
--out), the head learns on them, and the whole network (normalisation inside,
Nx3x224x224 RGB 0..255 in, four logits out) is exported to ONNX, quantized to int8
on validation squares and calibrated (temperature) on the validation parts. Writes
--out/expert.onnx (float), --out/int8/orientation.onnx and --out/int8/calibration.json
(what `benchmarks/everyday_expert.py` reads). Needs the train extra.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.progress import track
from torch import nn

from faceup import datasets
from faceup.calibration import fit_temperature, log_softmax
from faceup.models.preprocess import square_input, to_nchw
from faceup.train.backbone import BACKBONES, efficientnet_lite2, export_onnx
from faceup.train.quantize import quantize_int8

SIZE = 224
CROPS = {"everyday": 3}  # random crops per training picture of that kind (1 elsewhere: the picture itself)


def pictures(root: Path, split: str, limit: int = 0) -> list[tuple[Path, str]]:
    kinds = {"everyday": datasets.objects, "scene": datasets.scenes, "street": datasets.camvid,
             "crowd": datasets.crowds}
    return [(p, kind) for kind, fn in kinds.items() for p in fn(root, split)[:limit or None]]


def square(path: Path, rng: random.Random | None) -> np.ndarray:
    """The picture (a random crop and mirror with `rng`) as a JPEG q90 would
    arrive, squashed to SIZE."""
    img = Image.open(path).convert("RGB")
    if rng is not None:
        w, h = img.size
        area, aspect = rng.uniform(0.6, 1.0), np.exp(rng.uniform(-0.2, 0.2))
        cw, ch = min(w, int(round(w * np.sqrt(area * aspect)))), min(h, int(round(h * np.sqrt(area / aspect))))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img = img.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return square_input(Image.open(buf), SIZE)


class Expert(nn.Module):
    """Normalisation, the frozen backbone's features, the head: 0..255 RGB in, logits out."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head
        mean, std = BACKBONES["lite2"]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.extract_features((x - self.mean) / self.std))


def make_head() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1280, 32, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 4))


def features(backbone: Expert, squares: list[np.ndarray], batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Features (float16, Nx1280x7x7) and labels of every square in its four turns."""
    feats, labels = [], []
    turned = [(np.rot90(sq, -k), k) for sq in squares for k in range(4)]  # k quarter turns clockwise: label k
    with torch.no_grad():
        for i in track(range(0, len(turned), batch), description="features", transient=True):
            part = turned[i:i + batch]
            x = torch.from_numpy(to_nchw(np.stack([sq for sq, _ in part])))
            feats.append(backbone(x).numpy().astype(np.float16))
            labels += [k for _, k in part]
    return np.concatenate(feats), np.array(labels)


def cached(path: Path, make) -> tuple[np.ndarray, np.ndarray]:
    if path.exists():
        with np.load(path) as z:
            return z["x"], z["y"]
    x, y = make()
    np.savez(path, x=x, y=y)
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/scene-expert"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="at most this many pictures of each kind (a quick try)")
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    root = datasets.data_root(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    net = efficientnet_lite2(4, SIZE).eval()
    for p in net.parameters():
        p.requires_grad = False
    backbone = Expert(net, nn.Identity()).eval()

    rng = random.Random(args.seed)
    train_pics = pictures(root, "train", args.limit)
    val_pics = pictures(root, "val", args.limit)
    t0 = time.time()

    def train_squares():
        out = []
        for p, kind in track(train_pics, description="train pictures", transient=True):
            out += [square(p, rng) for _ in range(CROPS.get(kind, 1))] if kind in CROPS else [square(p, None)]
        return features(backbone, out)

    val_squares = [square(p, None) for p, _ in val_pics]
    xt, yt = cached(args.out / "train_features.npz", train_squares)
    xv, yv = cached(args.out / "val_features.npz", lambda: features(backbone, val_squares))
    val_kind = np.repeat([k for _, k in val_pics], 4)
    print(f"features: {len(yt)} training and {len(yv)} validation cases ({time.time() - t0:.0f} s)", flush=True)

    head = make_head()
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.05)
    steps = args.epochs * ((len(yt) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    xt_t, yt_t = torch.from_numpy(xt), torch.from_numpy(yt)
    for epoch in range(args.epochs):
        head.train()
        order = torch.randperm(len(yt))
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            loss = nn.functional.cross_entropy(head(xt_t[idx].float()), yt_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        head.eval()
        with torch.no_grad():
            pv = head(torch.from_numpy(xv).float()).argmax(1).numpy()
        per = {k: float((pv == yv)[val_kind == k].mean()) for k in ("everyday", "scene", "street", "crowd")}
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}; validation " +
              ", ".join(f"{k} {v:.2%}" for k, v in per.items()), flush=True)

    expert = Expert(net, head).eval()
    float_path = args.out / "expert.onnx"
    export_onnx(expert, float_path, SIZE)
    int8_dir = args.out / "int8"
    int8_dir.mkdir(exist_ok=True)
    calib = random.Random(1).sample(val_squares, min(128, len(val_squares)))
    int8 = quantize_int8(float_path, int8_dir / "orientation.onnx",
                         (to_nchw(np.rot90(sq, k)[None]) for sq in calib for k in range(4)))

    import onnxruntime as ort

    sess = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    turned = [np.rot90(sq, -k) for sq in val_squares for k in range(4)]
    z = np.concatenate([sess.run(None, {name: to_nchw(np.stack(turned[i:i + 32]))})[0]
                        for i in range(0, len(turned), 32)])
    labels = np.tile(np.arange(4), len(val_squares))
    t = fit_temperature(log_softmax(z), labels)
    pred = z.argmax(1)
    per = {k: float((pred == labels)[val_kind == k].mean()) for k in ("everyday", "scene", "street", "crowd")}
    meta = {"temperature": t, "input_size": SIZE, "validation_int8": per,
            "float_mb": float_path.stat().st_size / 1e6, "int8_mb": int8.stat().st_size / 1e6}
    (int8_dir / "calibration.json").write_text(json.dumps(meta, indent=2))
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
