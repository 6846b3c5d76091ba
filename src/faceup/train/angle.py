"""Train a generic 360-degree angle model on any folder of upright pictures (RotNet's
generic case) and export it to ONNX.

    faceup train --task angle DIR --out runs/angle

Samples: each upright picture is rotated by a random angle on an expanded canvas,
then (`samples="square"`, the default) a centred square of side min(w, h)/sqrt(2)
x U(0.75, 1) is cut out: that square lies inside the rotated picture for *every*
angle, so no sample has empty corners and every angle is seen at the same scale
(the model cannot read the angle from corners or from how much the crop was
enlarged). With `samples="inner"`, the rotated picture is cut to its largest
upright rectangle without empty corners (what faceup is shown when a turned
photo has been cropped) and the centred square of that, x U(0.8, 1), is used:
more of the scene, at a scale that varies with the angle. Each sample is
re-encoded as JPEG. Output: 72 bins of 5 degrees trained with soft labels; the
angle is read from the posterior by `models.angle.read_angle` (finer than a bin).
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from dataclasses import asdict, dataclass, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from faceup import geometry
from faceup.models.angle import BINS, INPUT_SIZE, circular_mean
from faceup.train.backbone import export_onnx, total_steps, trainee
from faceup.train.options import parse_also
from faceup.train.watch import VAL_LIMIT, Watch, batched


@dataclass
class AngleConfig:
    data: str
    out: str
    epochs: float = 3.0
    samples_per_picture: int = 12
    batch: int = 64
    lr: float = 1e-3
    freeze_blocks: int = 7
    max_steps: int | None = None
    limit: int | None = None
    seed: int = 0
    threads: int = 2
    size: int = INPUT_SIZE
    #: "square" (a fixed-scale square inside the picture for every angle) or
    #: "inner" (the centre of the largest inner rectangle); see the module docstring
    samples: str = "square"
    resume: bool = False
    patience: int = 3
    #: validation pictures (turned twice each) measured after each epoch; none
    #: given: every tenth of the training pictures, then not trained on
    val_paths: tuple[str, ...] = ()
    #: start the features from this checkpoint (a faceup run's best.pt, e.g. the
    #: orientation classifier's) instead of ImageNet
    init: str | None = None
    #: the ImageNet backbone (faceup.train.backbone.BACKBONES): mobilenet or lite2
    backbone: str = "mobilenet"
    #: more upright pictures to learn from besides `paths`, as "name:samples per
    #: picture" (their pictures are passed to train_angle; validation stays as it is)
    also: tuple[str, ...] = ()


SAMPLERS = ("square", "inner")


def rotated_square(img: Image.Image, angle_cw: float, scale: float, size: int) -> Image.Image:
    """The centred square (side min(w,h)/sqrt(2) * scale) of `img` rotated by angle_cw."""
    w, h = img.size
    rot = img.rotate(-angle_cw, resample=Image.Resampling.BICUBIC, expand=True)
    return _square(rot, rot.width / 2, rot.height / 2, min(w, h) / math.sqrt(2) * scale, size)


def inner_square(img: Image.Image, angle_cw: float, scale: float, size: int) -> Image.Image:
    """The centred square (side: the shorter side x scale) of the largest upright
    rectangle without empty corners of `img` rotated by angle_cw."""
    w, h = img.size
    rot = geometry.rotate(img, angle_cw, expand=True)
    x0, y0, x1, y1 = geometry.crop_box_inscribed(w, h, angle_cw)
    return _square(rot, (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) * scale, size)


def _square(img: Image.Image, cx: float, cy: float, side: float, size: int) -> Image.Image:
    """The square of `side` centred on (cx, cy), resized to size x size."""
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return img.resize((size, size), Image.Resampling.BILINEAR, box=box)


def _sample(args: tuple[str, int, int, str]) -> tuple[np.ndarray, float]:
    path, seed, size, sampler = args
    rng = random.Random(seed)
    with Image.open(path) as im:
        img = im.convert("RGB")
    angle = rng.uniform(0, 360)
    if sampler == "inner":
        sq = inner_square(img, angle, rng.uniform(0.8, 1.0), size)
    else:
        sq = rotated_square(img, angle, rng.uniform(0.75, 1.0), size)
    if rng.random() < 0.1:
        sq = sq.convert("L").convert("RGB")
    buf = io.BytesIO()
    sq.save(buf, "JPEG", quality=rng.randint(60, 95))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8), angle


def build(paths: list[Path], per_picture: int, size: int, seed: int,
          sampler: str = "square") -> tuple[np.ndarray, np.ndarray]:
    from tqdm import tqdm

    rng = random.Random(seed)
    args = [(str(p), rng.getrandbits(32), size, sampler) for p in paths for _ in range(per_picture)]
    xs = np.empty((len(args), size, size, 3), dtype=np.uint8)
    ys = np.empty(len(args), dtype=np.float32)
    with Pool(2) as pool:
        for i, (x, y) in enumerate(tqdm(pool.imap(_sample, args, chunksize=64), total=len(args),
                                         desc=f"making {len(args)} rotated samples")):
            xs[i], ys[i] = x, y
    return xs, ys


def cached_build(cache: Path, paths: list[Path], per_picture: int, size: int, seed: int,
                 sampler: str) -> tuple[np.ndarray, np.ndarray]:
    """`build`'s samples, read from `cache` (an .npz) when a run made them before."""
    if cache.exists():
        z = np.load(cache)
        return z["x"], z["y"]
    xs, ys = build(paths, per_picture, size, seed, sampler)
    np.savez(cache, x=xs, y=ys)
    return xs, ys


def soft_labels(angles: torch.Tensor, sigma_bins: float = 1.0) -> torch.Tensor:
    centres = torch.arange(BINS, dtype=torch.float32) * (360.0 / BINS)
    d = (angles[:, None] - centres[None, :] + 180.0) % 360.0 - 180.0
    w = torch.exp(-0.5 * (d / (sigma_bins * 360.0 / BINS)) ** 2)
    return w / w.sum(1, keepdim=True)


def train_angle(cfg: AngleConfig, paths: list[Path], also: dict[str, list[Path]] | None = None) -> Path:
    """Train on `paths` (cfg.samples_per_picture samples each) and on the pictures
    of each `cfg.also` entry (`also[name]`, its own samples per picture)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.val_paths:  # a folder of the user's own: every tenth picture validates, none of them trains
        paths, val = [p for i, p in enumerate(paths) if i % 10], [p for i, p in enumerate(paths) if not i % 10]
        cfg = replace(cfg, val_paths=tuple(str(p) for p in val))
    if cfg.limit:
        paths = paths[: cfg.limit]
        cfg = replace(cfg, val_paths=cfg.val_paths[: max(2, cfg.limit // 4)])
    if cfg.samples not in SAMPLERS:
        raise ValueError(f"samples must be one of {', '.join(SAMPLERS)}, not {cfg.samples!r}")
    tag = "" if cfg.samples == "square" else f"_{cfg.samples}"
    xs, ys = cached_build(out / f"angle_{cfg.size}_{len(paths)}x{cfg.samples_per_picture}_s{cfg.seed}{tag}.npz",
                          paths, cfg.samples_per_picture, cfg.size, cfg.seed, cfg.samples)
    for name, per_picture in parse_also(",".join(cfg.also), tuple((also or {}).keys())):
        more = also[name][: cfg.limit] if cfg.limit else also[name]
        mx, my = cached_build(out / f"angle_{cfg.size}_{name}{len(more)}x{per_picture}_s{cfg.seed}{tag}.npz",
                              more, per_picture, cfg.size, cfg.seed, cfg.samples)
        xs, ys = np.concatenate([xs, mx]), np.concatenate([ys, my])
    print(f"angle samples: {len(xs)} from {len(paths)} pictures" + "".join(f" + {a}" for a in cfg.also), flush=True)

    total = total_steps(cfg.epochs, len(xs), cfg.batch, cfg.max_steps)
    t = trainee(BINS, cfg.freeze_blocks, cfg.lr, 1e-4, total, init=Path(cfg.init) if cfg.init else None,
                backbone=cfg.backbone, input_size=cfg.size)
    model, frozen, wrapped, opt, sched = t.model, t.frozen, t.wrapped, t.opt, t.sched
    val_paths = [Path(p) for p in cfg.val_paths][:VAL_LIMIT // 2]
    vx, vy = cached_build(out / f"angle_val_{cfg.size}_{len(val_paths)}x2_s{cfg.seed + 1}{tag}.npz",
                          val_paths, 2, cfg.size, cfg.seed + 1, cfg.samples)

    def validate() -> dict[str, float]:
        loss, errors = 0.0, []

        def part(sl: slice) -> None:
            nonlocal loss
            x = torch.from_numpy(vx[sl]).permute(0, 3, 1, 2).float()
            y = torch.from_numpy(vy[sl])
            logits = wrapped(x)
            loss += float(-(soft_labels(y) * torch.log_softmax(logits, 1)).sum(1).sum())
            errors.extend(angle_error(circular_mean(torch.softmax(logits, 1).numpy()), y.numpy()))
        batched(part, len(vx))
        return {"val_loss": loss / len(vx), "val_angle_error": float(np.mean(errors))}

    steps_per_epoch = max(1, len(xs) // cfg.batch)
    watch = Watch(out, "val_angle_error", False, steps_per_epoch, cfg.patience)
    gen = torch.Generator().manual_seed(cfg.seed)
    start = watch.resume(model, opt, sched, gen, total) if cfg.resume else 0
    t0, err_avg = time.time(), None
    for step in range(start + 1, total + 1):
        model.train()
        frozen.eval()
        idx = torch.randint(0, len(xs), (cfg.batch,), generator=gen).numpy()
        x = torch.from_numpy(xs[idx]).permute(0, 3, 1, 2).float()
        y = torch.from_numpy(ys[idx])
        # mirror: angle a becomes -a, a free extra sample of the same kind
        flip = torch.rand(cfg.batch, generator=gen) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        y = torch.where(flip, (360.0 - y) % 360.0, y)
        logits = wrapped(x)
        loss = -(soft_labels(y) * torch.log_softmax(logits, 1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            pred = circular_mean(torch.softmax(logits, 1).numpy())
            err = float(np.mean(angle_error(pred, y.numpy())))
        watch.step(loss.item(), err)
        err_avg = err if err_avg is None else 0.98 * err_avg + 0.02 * err
        if step % 50 == 0 or step == total:
            rate = (step - start) * cfg.batch / (time.time() - t0)
            print(f"step {step}/{total} loss {loss.item():.3f} train angle error ~{err_avg:.1f} deg "
                  f"{rate:.0f} img/s eta {(total - step) * cfg.batch / rate / 60:.1f} min", flush=True)
        if (step % steps_per_epoch == 0 or step == total) and \
                watch.epoch_end(step, total, model, opt, sched, gen, validate):
            break
    watch.load_best(model)
    onnx_path = out / "angle.onnx"
    export_onnx(wrapped, onnx_path, cfg.size)
    (out / "angle_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return onnx_path


def angle_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RotNet's angle_error: the smallest difference between two angles, in degrees."""
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)

