"""Train the face-crop witness: is a small picture, as a whole, a face crop (a
thumbnail, an ID picture, a face cut from a photo) or something else (a scene,
an everyday photo, an animal, a piece of a street or crowd photo)?

    .venv/bin/python tools/train_facecrop.py --out runs/facecrop [--epochs 6] [--install]

A mini-Xception (faceup.train.expression's layout, two outputs, trained from
scratch: about 60k weights) on 64x64 squashes of the picture, the way
`faces.whole_picture_face` asks it. Face crops: the training parts of UTKFace,
GENKI-4K, the adult web faces and FER-2013, randomly cropped around the face.
Not face crops: random crops of the training parts of the scenes, everyday photos,
street frames and crowd photos. LFW and SMILEsmileD (one collection) are never
used: they are the held-out face source. Each epoch is measured on the
validation parts (whole pictures); the export holds the best epoch. Needs the
train extra.
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
from torch import nn

from faceup import datasets
from faceup.models.facecrop import INPUT_SIZE
from faceup.train.backbone import export_onnx, optimiser
from faceup.train.expression import MiniXception
from faceup.train.samples import _random_crop as _crop  # the orientation samples' random crop


def sources(root: Path, split: str) -> tuple[list[Path], list[Path]]:
    fer = [p for p in datasets.list_pictures(root / "smile" / "fer2013") if datasets._split_by_hash(p) == split]
    face = (datasets.utkface(root, split) + datasets.genki(root, split)
            + [p for p, _ in datasets.gender_web(root, split)] + fer)
    other = (datasets.scenes(root, split) + datasets.objects(root, split) + datasets.camvid(root, split)
             + datasets.crowds(root, split))
    return face, other


def sample(path: Path, is_face: bool, rng: random.Random | None) -> np.ndarray:
    """64x64 RGB: the whole picture (validation, rng None), or a random crop
    (a face crop stays a face crop: most of it kept), a JPEG round trip and
    sometimes grey."""
    with Image.open(path) as im:
        img = im.convert("RGB")
    if rng is not None:
        img = _crop(img, rng, 0.6, 1.3) if is_face else _crop(img, rng, 0.08, 1.67)
        if rng.random() < 0.15:
            img = img.convert("L").convert("RGB")
    img = img.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    if rng is not None:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(60, 95))
        img = Image.open(buf).convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def build(items: list[tuple[Path, bool]], seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = None if seed is None else random.Random(seed)
    x = np.stack([sample(p, f, rng) for p, f in items])
    return x, np.array([int(f) for _, f in items])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("runs/facecrop"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--faces", type=int, default=12000, help="face crops drawn per epoch")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--install", action="store_true", help="copy the best epoch into the package registry")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    root = datasets.data_root(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    face, other = sources(root, "train")
    vface, vother = sources(root, "val")
    vx, vy = build([(p, True) for p in vface] + [(p, False) for p in vother], None)
    print(f"training: {len(face)} face crops, {len(other)} other pictures; validation {len(vface)} / {len(vother)}",
          flush=True)
    model = MiniXception(num_out=2)
    per_epoch = 2 * args.faces
    steps = args.epochs * per_epoch // args.batch
    opt, sched = optimiser(model.parameters(), args.lr, 1e-4, steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.02)
    rng = random.Random(0)
    best, history = -1.0, []
    for epoch in range(args.epochs):
        t0 = time.time()
        items = [(p, True) for p in rng.sample(face, min(args.faces, len(face)))]
        items += [(rng.choice(other), False) for _ in range(args.faces)]
        rng.shuffle(items)
        x, y = build(items, rng.getrandbits(32))
        model.train()
        for i in range(0, len(x) - args.batch + 1, args.batch):
            xb = torch.from_numpy(x[i:i + args.batch]).permute(0, 3, 1, 2).float()
            xb = torch.where(torch.rand(len(xb), 1, 1, 1) < 0.5, xb.flip(3), xb)
            loss = loss_fn(model(xb), torch.from_numpy(y[i:i + args.batch]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            p = torch.cat([torch.softmax(model(torch.from_numpy(vx[i:i + 512]).permute(0, 3, 1, 2).float()), 1)[:, 1]
                           for i in range(0, len(vx), 512)]).numpy()
        face_acc, other_acc = float((p[vy == 1] >= 0.5).mean()), float((p[vy == 0] < 0.5).mean())
        balanced = (face_acc + other_acc) / 2
        history.append({"epoch": epoch + 1, "face_crops_right": face_acc, "others_right": other_acc,
                        "balanced": balanced, "seconds": round(time.time() - t0, 1)})
        print(json.dumps(history[-1]), flush=True)
        if balanced > best:
            best = balanced
            torch.save(model.state_dict(), args.out / "best.pt")
    model.load_state_dict(torch.load(args.out / "best.pt"))
    onnx_path = args.out / "facecrop.onnx"
    export_onnx(model, onnx_path, INPUT_SIZE)
    meta = {"input_size": INPUT_SIZE, "validation": max(history, key=lambda h: h["balanced"]),
            "trained_by": "tools/train_facecrop.py"}
    (args.out / "facecrop.json").write_text(json.dumps({"meta": meta, "history": history}, indent=2))
    if args.install:
        from faceup.train.calibrate import install

        install(onnx_path, meta, name="facecrop")
    print(f"wrote {onnx_path}")


if __name__ == "__main__":
    main()
