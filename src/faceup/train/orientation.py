"""Train the 4-way orientation classifier and export it to ONNX.

    faceup train --data ../shared/data --out runs/orientation

Labels come from exact quarter turns of square, JPEG re-encoded, upright samples
(see samples.py). MobileNetV2 from ImageNet weights, the first 7 blocks frozen
(the 2-core budget: about 70 pictures/s at 128 px), AdamW with a cosine schedule.
After each epoch the accuracy on validation squares (four turns each) is measured,
recorded and drawn (train.watch); --resume goes on from the last epoch, the run
stops early when it no longer improves, and the export holds the best epoch.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceup.models.orientation import INPUT_SIZE, NUM_CLASSES
from faceup.train import samples
from faceup.train.backbone import export_onnx, trainee
from faceup.train.watch import VAL_LIMIT, Watch, batched


@dataclass
class TrainConfig:
    data: str
    out: str
    epochs: float = 3.0
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    freeze_blocks: int = 7
    scale: float = 1.0  # fraction of the data to use (tiny runs for tests)
    max_steps: int | None = None
    seed: int = 0
    threads: int = 2
    size: int = INPUT_SIZE
    resume: bool = False
    patience: int = 3
    #: pictures of the hard kinds (faceup.train.hard) added to the training samples
    hard: int = 0
    #: times each training everyday photo is sampled (street frames from a car twice when > 0)
    everyday: int = 0


def _cached(path: Path, plans: list[samples.Plan], size: int) -> np.ndarray:
    if path.exists():
        arr = np.load(path)
        if len(arr) == len(plans):
            return arr
    arr = samples.build(plans, size)
    np.save(path, arr)
    return arr


def quarter_turn_batch(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Turn each upright picture in NxCxHxW by k[i] quarter turns clockwise
    (label k = rotation k*90 degrees clockwise)."""
    out = torch.empty_like(x)
    for j in range(NUM_CLASSES):
        idx = (k == j).nonzero(as_tuple=True)[0]
        if len(idx):
            # torch.rot90 with k>0 turns counter-clockwise in (H, W); clockwise is -k
            out[idx] = torch.rot90(x[idx], -j, dims=(2, 3))
    return out


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    gain = 0.75 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
    bias = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 40
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 0.75 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
    x = (x - mean) * contrast + mean * gain + bias
    return x.clamp(0, 255)


def train(cfg: TrainConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(cfg.data)
    plans = samples.plan_training(root, seed=cfg.seed, scale=cfg.scale, hard=cfg.hard,
                                   everyday=cfg.everyday)
    tag = f"s{cfg.size}_x{cfg.scale:g}_seed{cfg.seed}" + (f"_hard{cfg.hard}" if cfg.hard else "") \
        + (f"_everyday{cfg.everyday}" if cfg.everyday else "")
    data = _cached(out / f"train_{tag}.npy", plans, cfg.size)
    print(f"training samples: {len(data)}", flush=True)

    steps_per_epoch = max(1, len(data) // cfg.batch)
    total = int(cfg.epochs * steps_per_epoch)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    t = trainee(NUM_CLASSES, cfg.freeze_blocks, cfg.lr, cfg.weight_decay, max(total, 1))
    model, frozen, wrapped, opt, sched = t.model, t.frozen, t.wrapped, t.opt, t.sched
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.02)

    val_plans = samples.plan_validation(root, scale=min(1.0, cfg.scale * 10))
    random.Random(cfg.seed).shuffle(val_plans)
    val = _cached(out / f"val_{tag}.npy", val_plans[:VAL_LIMIT], cfg.size)

    def validate() -> dict[str, float]:
        loss, correct = 0.0, 0

        def part(sl: slice) -> None:
            nonlocal loss, correct
            x = torch.from_numpy(val[sl]).permute(0, 3, 1, 2).float()
            for j in range(NUM_CLASSES):
                y = torch.full((len(x),), j)
                logits = wrapped(quarter_turn_batch(x, y))
                loss += loss_fn(logits, y).item() * len(x)
                correct += int((logits.argmax(1) == y).sum())
        batched(part, len(val))
        n = NUM_CLASSES * len(val)
        return {"val_loss": loss / n, "val_accuracy": correct / n}

    watch = Watch(out, "val_accuracy", True, steps_per_epoch, cfg.patience)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = watch.resume(model, opt, sched, gen, total) if cfg.resume else 0
    t0, seen, run_loss, run_acc = time.time(), 0, 0.0, 0.0
    while step < total:
        model.train()
        frozen.eval()  # frozen blocks keep their ImageNet batch-norm statistics
        idx = torch.randint(0, len(data), (cfg.batch,), generator=gen)
        x = torch.from_numpy(data[idx.numpy()]).permute(0, 3, 1, 2).float()
        x = _augment(x, gen)
        k = torch.randint(0, NUM_CLASSES, (cfg.batch,), generator=gen)
        x = quarter_turn_batch(x, k)
        logits = wrapped(x)
        loss = loss_fn(logits, k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        seen += cfg.batch
        acc = (logits.argmax(1) == k).float().mean().item()
        watch.step(loss.item(), acc)
        run_loss = 0.98 * run_loss + 0.02 * loss.item() if step > 1 else loss.item()
        run_acc = 0.98 * run_acc + 0.02 * acc
        if step % 50 == 0 or step == total:
            rate = seen / (time.time() - t0)
            eta = (total - step) * cfg.batch / max(rate, 1e-6)
            print(f"step {step}/{total} loss {run_loss:.4f} acc~{run_acc:.3f} {rate:.0f} img/s eta {eta/60:.1f} min", flush=True)
        if (step % steps_per_epoch == 0 or step == total) and \
                watch.epoch_end(step, total, model, opt, sched, gen, validate):
            break
    watch.load_best(model)

    onnx_path = out / "orientation.onnx"
    export_onnx(wrapped, onnx_path, cfg.size)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return onnx_path
