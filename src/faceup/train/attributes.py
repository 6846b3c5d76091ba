"""Train the per-face models: smile, and age + gender, on every source that carries the label.

    faceup train --task smile        # SMILEsmileD, GENKI-4K and FER-2013 (--sources to choose)
    faceup train --task agegender    # UTKFace (age, gender) and the web faces (gender only)

Every (source, label) group is drawn equally often, so a model learns faces rather
than one source's size or label prior; `--sources` leaves a source out to measure
a model on a source it never saw.

Inputs are face crops cut exactly as faceup cuts them at run time: BlazeFace on the
training picture (with grey room around it when the face fills it), then the
levelled square of faces.face_crop. The smile sources are cut differently (tight
SMILEsmileD crops, loose GENKI-4K ones); cutting them again this way puts every
face at the same scale. Pictures where no face is found are left out (at run time
they give no face either). Race labels are never a target: they are read only to
report accuracy per group.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from faceup import datasets
from faceup.models.attributes import AGE_SCALE, AGEGENDER_SIZE, SMILE_SIZE
from faceup.train.backbone import export_onnx, total_steps, trainee
from faceup.train.watch import Watch, batched


@dataclass
class AttrConfig:
    data: str
    out: str
    task: str  # "smile" or "agegender"
    epochs: float = 3.0
    batch: int = 64
    lr: float = 1e-3
    freeze_blocks: int = 7
    max_steps: int | None = None
    limit: int | None = None
    seed: int = 0
    threads: int = 2
    #: sources to train on (leave one out to measure a new source); None: every source of the task
    sources: tuple[str, ...] | None = None
    #: resize the crops to this size inside the network (None: the crop size)
    net_size: int | None = None
    resume: bool = False
    patience: int = 3
    #: agegender: within each (source, gender), draw every age group of
    #: models.attributes.AGE_GROUPS equally often (children as often as adults)
    balance_ages: bool = False
    #: smile: how faces are cut: "level" (faces.face_crop, the square around the
    #: detector's box, eye line level) or "aligned" (faces.aligned_chip: the eyes at
    #: fixed points, so every source's faces have the same scale and place)
    crop: str = "level"
    #: smile: the network: "mobilenet" (MobileNetV2 from ImageNet weights) or
    #: "expression" (the FER-2013 expression network of train.expression, fine-tuned)
    backbone: str = "mobilenet"
    #: the converted expression network (tools/convert_fer_expression.py)
    expression_net: str = "runs/expression.onnx"


def draw_weights(strata: np.ndarray, ages: np.ndarray | None = None) -> np.ndarray:
    """Sampling weights: every stratum drawn equally often; with `ages`, within
    each stratum every age group too (faces without an age form one group)."""
    if ages is None:
        return 1.0 / np.bincount(strata)[strata]
    from faceup.models.attributes import AGE_GROUPS, age_group

    groups = np.array([len(AGE_GROUPS) if np.isnan(a) else age_group(a) for a in ages])
    sub = strata * (len(AGE_GROUPS) + 1) + groups
    per_sub = np.bincount(sub)[sub]
    subs_in_stratum = np.array([len(np.unique(sub[strata == s])) for s in range(strata.max() + 1)])[strata]
    return 1.0 / (per_sub * subs_in_stratum)


def _crop(args: tuple[str, int, bool, str]) -> np.ndarray | None:
    from faceup import faces

    path, size, grey, kind = args
    with Image.open(path) as im:
        img = im.convert("RGB")
    if kind == "aligned":
        d = faces.largest_face(img)
        if d is None:
            return None
        chip = faces.aligned_chip(img, d)
        crop = Image.fromarray(chip.transpose(1, 2, 0).astype(np.uint8))
    else:
        crop = faces.main_face_crop(img)
    if crop is None:
        return None
    crop = crop.convert("L").convert("RGB") if grey else crop
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "faceup" / "crops"


#: Validation faces per epoch (a few seconds of inference; enough for a figure per source).
ATTR_VAL_LIMIT = 4000

#: Bump when the way faces are cut changes (invalidates cached crops).
CROP_VERSION = 1


def _load(paths: list[Path], size: int, grey: bool, kind: str = "level") -> tuple[np.ndarray, np.ndarray]:
    """Face crops of the pictures (N x size x size x 3) and the indices of the
    pictures they come from (pictures with no face found are left out). Cached
    (keyed by the list of files, the size, the colour mode and the kind of crop)."""
    tag = f"{CROP_VERSION}|{size}|{grey}|" + ("" if kind == "level" else f"{kind}|")
    key = hashlib.sha1(tag.encode() + "\n".join(map(str, paths)).encode()).hexdigest()[:16]
    cache = _cache_dir() / f"{key}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["x"], z["kept"]
    xs, kept = _cut(paths, size, grey, kind)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=xs, kept=kept)
    return xs, kept


def _cut(paths: list[Path], size: int, grey: bool, kind: str = "level") -> tuple[np.ndarray, np.ndarray]:
    from multiprocessing import Pool

    from tqdm import tqdm

    crops, kept = [], []
    with Pool(2) as pool:
        it = pool.imap(_crop, [(str(p), size, grey, kind) for p in paths], chunksize=32)
        for i, c in enumerate(tqdm(it, total=len(paths), desc=f"cutting {len(paths)} faces")):
            if c is not None:
                crops.append(c)
                kept.append(i)
    print(f"faces found in {len(kept)} of {len(paths)} pictures", flush=True)
    return np.stack(crops) if crops else np.empty((0, size, size, 3), np.uint8), np.array(kept, dtype=np.int64)


def smile_data(root: Path, limit: int | None, sources: tuple[str, ...],
               kind: str = "level") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face crops, labels (1 = smiling) and strata (source x label, for balanced sampling)."""
    xs_all, ys_all, strata = [], [], []
    for k, source in enumerate(sources):
        _, xs, ys = smile_faces(root, source, limit, kind)
        xs_all.append(xs)
        ys_all.append(ys)
        strata.append(2 * k + ys)
    return np.concatenate(xs_all), np.concatenate(ys_all), np.concatenate(strata)


def smile_faces(root: Path, source: str, limit: int | None = None,
                kind: str = "level") -> tuple[list[Path], np.ndarray, np.ndarray]:
    """One smile source's faces in training order (shuffled, seed 0; the first
    `limit`), those where a face is found: their paths, crops and labels."""
    paths, labels = smile_source(root, source)
    idx = list(range(len(paths)))
    random.Random(0).shuffle(idx)
    idx = idx[:limit] if limit else idx
    xs, kept = _load([paths[i] for i in idx], SMILE_SIZE, grey=True, kind=kind)
    return [paths[idx[j]] for j in kept], xs, np.array([labels[idx[j]] for j in kept], dtype=np.int64)


def validation_tenth(strata: np.ndarray) -> np.ndarray:
    """Every tenth face of each (source, label) stratum: validates, never trained on."""
    rank = np.zeros(len(strata), dtype=int)
    for g in np.unique(strata):
        members = np.flatnonzero(strata == g)
        rank[members] = np.arange(len(members))
    return rank % 10 == 9


def smile_source(root: Path, source: str) -> tuple[list[Path], np.ndarray]:
    """Every crop of one smile source (to test a model that never saw it)."""
    base = root / "smile" / source
    paths, labels = [], []
    for label in (0, 1):
        for p in datasets.list_pictures(base / str(label)):
            paths.append(p)
            labels.append(label)
    return paths, np.array(labels)


#: Every source that carries each label (folders under smile/; face sources for gender).
SMILE_SOURCES = ("smilesmiled", "genki4k_train", "fer2013")
GENDER_SOURCES = ("utkface", "gender_web")


def agegender_data(root: Path, split: str, limit: int | None,
                   sources: tuple[str, ...] = GENDER_SOURCES) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Face crops, ages (NaN where the source has none), genders (0 male, 1 female)
    and strata (source x gender, for balanced sampling and per-source figures)."""
    xs_all, ages_all, genders_all, strata = [], [], [], []
    for k, source in enumerate(sources):
        paths, ages, genders = [], [], []
        if source == "utkface":
            for p in datasets.utkface(root, split):
                lab = datasets.utkface_labels(p)
                if lab["age"] is None or lab["gender"] not in (0, 1):
                    continue
                paths.append(p)
                ages.append(float(lab["age"]))
                genders.append(lab["gender"])
        elif source == "gender_web":
            for p, g in datasets.gender_web(root, split):
                paths.append(p)
                ages.append(float("nan"))
                genders.append(g)
        else:
            raise ValueError(f"unknown gender source {source!r} (known: {', '.join(GENDER_SOURCES)})")
        if limit:
            idx = list(range(len(paths)))
            random.Random(0).shuffle(idx)
            idx = sorted(idx[:limit])
            paths, ages, genders = [paths[i] for i in idx], [ages[i] for i in idx], [genders[i] for i in idx]
        xs, kept = _load(paths, AGEGENDER_SIZE, grey=False)
        g = np.array(genders, np.int64)[kept]
        xs_all.append(xs)
        ages_all.append(np.array(ages, np.float32)[kept])
        genders_all.append(g)
        strata.append(2 * k + g)
    return np.concatenate(xs_all), np.concatenate(ages_all), np.concatenate(genders_all), np.concatenate(strata)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    gain = 0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen)
    bias = (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 30
    # small shifts: faces are never cut exactly the same way
    dx, dy = (torch.randint(-3, 4, (2,), generator=gen)).tolist()
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return (x * gain + bias).clamp(0, 255)


def train_attributes(cfg: AttrConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(cfg.data)
    sources = cfg.sources or (SMILE_SOURCES if cfg.task == "smile" else GENDER_SOURCES)
    vstrata = None
    if cfg.task == "smile":
        xs, ys, strata = smile_data(root, cfg.limit, sources, cfg.crop)
        held = validation_tenth(strata)
        vx, vy, vages, vstrata = xs[held], ys[held], None, strata[held]
        xs, ys, strata = xs[~held], ys[~held], strata[~held]
        n_out = 2
        # every (source, label) stratum equally often: the sources differ in size
        # (13k vs 2.8k) and in their share of smiles (28% vs 56%); a model that
        # learnt one source's prior misjudges the other's faces
        weights = torch.from_numpy(draw_weights(strata))
        metric = "val_accuracy"
    elif cfg.task == "agegender":
        xs, ages, ys, strata = agegender_data(root, "train", cfg.limit, sources)
        vx, vages, vy, vstrata = agegender_data(root, "val", None if cfg.limit is None else max(8, cfg.limit // 8),
                                                sources)
        # every (source, gender) group equally often, as for smiles (and, with
        # balance_ages, every age group within it)
        weights = torch.from_numpy(draw_weights(strata, ages if cfg.balance_ages else None))
        n_out = 3  # age / AGE_SCALE, gender logits (male, female)
        metric = "val_gender_accuracy"
    else:
        raise ValueError(f"unknown task {cfg.task}")
    if len(vx) > ATTR_VAL_LIMIT:
        pick = np.random.default_rng(cfg.seed).choice(len(vx), ATTR_VAL_LIMIT, replace=False)
        vx, vy, vstrata = vx[pick], vy[pick], vstrata[pick]
        vages = None if vages is None else vages[pick]
    print(f"{cfg.task}: {len(xs)} training faces, {len(vx)} validation faces", flush=True)
    total = total_steps(cfg.epochs, len(xs), cfg.batch, cfg.max_steps)
    if cfg.backbone == "expression":
        if cfg.task != "smile":
            raise ValueError("the expression network is for --task smile only")
        from faceup.train.expression import smile_trainee
        t = smile_trainee(cfg.lr, 1e-4, total, Path(cfg.expression_net))
    else:
        t = trainee(n_out, cfg.freeze_blocks, cfg.lr, 1e-4, total, cfg.net_size)
    model, frozen, wrapped, opt, sched = t.model, t.frozen, t.wrapped, t.opt, t.sched

    def losses(out_t: torch.Tensor, y: torch.Tensor, age: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, correct per face) for a batch: smile, or age + gender."""
        if cfg.task == "smile":
            return nn.functional.cross_entropy(out_t, y, label_smoothing=0.05), out_t.argmax(1) == y
        known = ~torch.isnan(age)  # sources without ages teach gender only
        age_loss = nn.functional.smooth_l1_loss(out_t[known, 0], age[known] / AGE_SCALE, beta=0.05) * 4 \
            if bool(known.any()) else out_t[:, 0].sum() * 0
        loss = age_loss + nn.functional.cross_entropy(out_t[:, 1:], y, label_smoothing=0.05)
        return loss, out_t[:, 1:].argmax(1) == y

    def validate() -> dict[str, float]:
        loss, age_err, age_n = 0.0, 0.0, 0
        right = np.zeros(len(vx), bool)

        def part(sl: slice) -> None:
            nonlocal loss, age_err, age_n
            out_t = wrapped(torch.from_numpy(vx[sl]).permute(0, 3, 1, 2).float())
            age = None if vages is None else torch.from_numpy(vages[sl])
            l, ok = losses(out_t, torch.from_numpy(vy[sl]).long(), age)
            loss += float(l) * len(ok)
            right[sl] = ok.numpy()
            if age is not None:
                known = ~torch.isnan(age)
                age_err += float((out_t[known, 0] * AGE_SCALE - age[known]).abs().sum())
                age_n += int(known.sum())
        batched(part, len(vx))
        figures = {"val_loss": loss / len(vx), metric: float(right.mean())}
        for k, source in enumerate(sources):  # the figure of each source on its own
            mine = vstrata // 2 == k
            if mine.any():
                figures[f"val_accuracy_{source}"] = float(right[mine].mean())
        if age_n:
            figures["val_age_mae"] = age_err / age_n
        return figures

    steps_per_epoch = max(1, len(xs) // cfg.batch)
    watch = Watch(out, metric, True, steps_per_epoch, cfg.patience)
    gen = torch.Generator().manual_seed(cfg.seed)
    start = watch.resume(model, opt, sched, gen, total) if cfg.resume else 0
    t0, avg = time.time(), None
    for step in range(start + 1, total + 1):
        model.train()
        frozen.eval()
        if weights is None:
            idx = torch.randint(0, len(xs), (cfg.batch,), generator=gen).numpy()
        else:
            idx = torch.multinomial(weights, cfg.batch, replacement=True, generator=gen).numpy()
        x = _augment(torch.from_numpy(xs[idx]).permute(0, 3, 1, 2).float(), gen)
        out_t = wrapped(x)
        loss, ok = losses(out_t, torch.from_numpy(ys[idx]).long(),
                          None if cfg.task == "smile" else torch.from_numpy(ages[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc = ok.float().mean().item()
        watch.step(loss.item(), acc)
        avg = acc if avg is None else 0.98 * avg + 0.02 * acc
        if step % 50 == 0 or step == total:
            rate = (step - start) * cfg.batch / (time.time() - t0)
            print(f"step {step}/{total} loss {loss.item():.3f} train acc~{avg:.3f} {rate:.0f} img/s "
                  f"eta {(total - step) * cfg.batch / rate / 60:.1f} min", flush=True)
        if (step % steps_per_epoch == 0 or step == total) and \
                watch.epoch_end(step, total, model, opt, sched, gen, validate):
            break
    watch.load_best(model)
    size = SMILE_SIZE if cfg.task == "smile" else AGEGENDER_SIZE
    onnx_path = out / f"{cfg.task}.onnx"
    export_onnx(wrapped, onnx_path, size)
    (out / f"{cfg.task}_config.json").write_text(json.dumps({**asdict(cfg), "sources": list(sources)}, indent=2))
    return onnx_path
