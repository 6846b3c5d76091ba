"""Upright training samples for the orientation model, decoded once and cached.

Every sample is an *upright* square uint8 picture; the label comes later from an
exact quarter turn of the square (np.rot90), so there is no interpolation and no
empty border for the model to read the label from. Each sample is re-encoded as
JPEG at its final size (a multiple of 8 and of 16, so the block grid and the
chroma subsampling look the same after any quarter turn).

Kinds of samples, so that the model sees scenes as well as faces:
- face crops (UTKFace, GENKI-4K, the web gender faces): random crops, any aspect ratio;
- crowd and street photos (training part only): whole and random crops;
- video frames of people (frames68, training part only): whole and random crops;
- face-free scenes (training part only);
- with `everyday`: everyday photos (photos/objects) and street frames from a car
  (scenes/camvid), training parts only, whole and random crops;
- synthetic scenes: face crops pasted with soft edges onto face-free scenes at
  many scales, one to six faces;
- with `hard`: the kinds of faceup.train.hard (small faces, a grey portrait in a
  circle, a cover with text, a painted group), from training faces, frames and scenes.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from faceup import datasets
from faceup.models.preprocess import square_input


@dataclass(frozen=True)
class Plan:
    kind: str
    paths: tuple[str, ...]
    seed: int


def _open(path: str) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def _jpeg_roundtrip(img: Image.Image, rng: random.Random) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=rng.randint(55, 95))
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def _random_crop(img: Image.Image, rng: random.Random, min_area: float, max_ratio: float = 1.6) -> Image.Image:
    w, h = img.size
    for _ in range(10):
        area = rng.uniform(min_area, 1.0) * w * h
        ratio = float(np.exp(rng.uniform(-np.log(max_ratio), np.log(max_ratio))))
        cw, ch = int(round((area * ratio) ** 0.5)), int(round((area / ratio) ** 0.5))
        if 8 <= cw <= w and 8 <= ch <= h:
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            return img.crop((x, y, x + cw, y + ch))
    return img


def _soft_mask(size: tuple[int, int], feather: float) -> Image.Image:
    w, h = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((w * 0.06, h * 0.02, w * 0.94, h * 0.98), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(max(1.0, feather * min(w, h))))


def _synthetic(paths: tuple[str, ...], rng: random.Random) -> Image.Image:
    bg = _open(paths[0])
    side = rng.choice([128, 160, 224, 320])
    ratio = rng.choice([0.75, 1.0, 1.33, 1.5, 0.66])
    bw, bh = int(side * ratio ** 0.5), int(side / ratio ** 0.5)
    bg = _random_crop(bg, rng, 0.4).resize((bw, bh), Image.Resampling.BILINEAR)
    faces = paths[1:]
    for face_path in faces:
        face = _random_crop(_open(face_path), rng, 0.7, 1.2)
        scale = rng.uniform(0.06, 0.6) if len(faces) > 1 else rng.uniform(0.1, 0.9)
        fw = max(6, int(min(bw, bh) * scale))
        fh = max(6, int(fw * face.height / face.width))
        if fw >= bw or fh >= bh:
            continue
        face = face.resize((fw, fh), Image.Resampling.BILINEAR)
        x, y = rng.randint(0, bw - fw), rng.randint(0, bh - fh)
        bg.paste(face, (x, y), _soft_mask((fw, fh), rng.uniform(0.03, 0.1)))
    return bg


def _hard(kind: str, paths: tuple[str, ...], rng: random.Random) -> Image.Image:
    """A picture of a hard kind: paths[0] the scene, the rest the faces, in turn."""
    from itertools import cycle

    from faceup.train import hard

    faces = cycle(paths[1:])
    return hard.MAKERS[kind](lambda: _open(paths[0]), lambda: _open(next(faces)), rng)


def _make(plan: Plan, size: int) -> np.ndarray:
    rng = random.Random(plan.seed)
    if plan.kind == "synthetic":
        img = _synthetic(plan.paths, rng)
    elif plan.kind.startswith("hard-"):
        img = _hard(plan.kind.removeprefix("hard-"), plan.paths, rng)
    else:
        img = _open(plan.paths[0])
        if plan.kind == "face":
            img = _random_crop(img, rng, 0.55, 1.3)
        elif plan.kind in ("crowd", "scene", "frame", "object"):
            if rng.random() < 0.7:
                img = _random_crop(img, rng, 0.25)
        # "whole": the picture as it is (validation)
    if rng.random() < 0.12:
        img = img.convert("L").convert("RGB")
    sq = Image.fromarray(square_input(img, size))
    return np.asarray(_jpeg_roundtrip(sq, rng), dtype=np.uint8)


def _make_star(args: tuple[Plan, int]) -> np.ndarray:
    return _make(*args)


def plan_training(root: Path, seed: int = 0, faces_limit: int = 12000, scale: float = 1.0,
                  hard: int = 0, everyday: int = 0) -> list[Plan]:
    rng = random.Random(seed)
    utk = [str(p) for p in datasets.utkface(root, "train")]
    genki = [str(p) for p in datasets.genki(root, "train")]
    scenes = [str(p) for p in datasets.scenes(root, "train")]
    crowds = [str(p) for p in datasets.crowds(root, "train")]
    web = [str(p) for p, _ in datasets.gender_web(root, "train")]
    frames = [str(p) for p in datasets.frames68(root, "train")]
    rng.shuffle(utk)
    plans: list[Plan] = []

    def n(x: float) -> int:
        return max(1, int(x * scale))

    for p in utk[: n(faces_limit)] + genki[: n(len(genki))] + web[: n(len(web))]:
        plans.append(Plan("face", (p,), rng.getrandbits(32)))
    for _ in range(2):
        for p in frames[: n(len(frames))]:
            plans.append(Plan("frame", (p,), rng.getrandbits(32)))
    for _ in range(2):
        for p in scenes[: n(len(scenes))]:
            plans.append(Plan("scene", (p,), rng.getrandbits(32)))
    for _ in range(12):
        for p in crowds[: n(len(crowds))]:
            plans.append(Plan("crowd", (p,), rng.getrandbits(32)))
    if everyday:
        objects = [str(p) for p in datasets.objects(root, "train")]
        camvid = [str(p) for p in datasets.camvid(root, "train")]
        for _ in range(everyday):
            for p in objects[: n(len(objects))]:
                plans.append(Plan("object", (p,), rng.getrandbits(32)))
        for _ in range(2):
            for p in camvid[: n(len(camvid))]:
                plans.append(Plan("scene", (p,), rng.getrandbits(32)))
    face_pool = utk + genki
    for _ in range(n(10000)):
        k = rng.choice([1, 1, 1, 2, 3, 4, 6])
        plans.append(Plan("synthetic", (rng.choice(scenes),) + tuple(rng.choice(face_pool) for _ in range(k)), rng.getrandbits(32)))
    if hard:
        from faceup.train.hard import MAKERS, PERSON_KINDS

        for i in range(n(hard)):
            kind = list(MAKERS)[i % len(MAKERS)]
            pool = frames if kind in PERSON_KINDS else face_pool + web
            plans.append(Plan(f"hard-{kind}", (rng.choice(scenes),) + tuple(rng.choice(pool) for _ in range(4)),
                              rng.getrandbits(32)))
    rng.shuffle(plans)
    return plans


def plan_validation(root: Path, seed: int = 1, scale: float = 1.0) -> list[Plan]:
    """Validation part (never trained on, never reported as a held-out figure):
    used to calibrate confidence and to choose the default --min-confidence."""
    rng = random.Random(seed)
    utk = [str(p) for p in datasets.utkface(root, "val")]
    rng.shuffle(utk)
    scenes = datasets.scenes(root, "val")
    crowds = datasets.crowds(root, "val")
    plans = [Plan("whole", (p,), rng.getrandbits(32)) for p in utk[: max(1, int(1500 * scale))]]
    extra = [str(p) for p, _ in datasets.gender_web(root, "val")] + [str(p) for p in datasets.frames68(root, "val")]
    plans += [Plan("whole", (p,), rng.getrandbits(32)) for p in extra[: max(1, int(len(extra) * scale))]]
    plans += [Plan("whole", (str(p),), rng.getrandbits(32)) for p in scenes[: max(1, int(len(scenes) * scale))]]
    plans += [Plan("whole", (str(p),), rng.getrandbits(32)) for p in crowds[: max(1, int(len(crowds) * scale))]]
    everyday = datasets.objects(root, "val") + datasets.camvid(root, "val")
    plans += [Plan("whole", (str(p),), rng.getrandbits(32)) for p in everyday[: max(1, int(len(everyday) * scale))]]
    return plans


def build(plans: list[Plan], size: int, workers: int = 2, progress: bool = True) -> np.ndarray:
    out = np.empty((len(plans), size, size, 3), dtype=np.uint8)
    args = [(p, size) for p in plans]
    from tqdm import tqdm

    with Pool(workers) as pool:
        it = pool.imap(_make_star, args, chunksize=64)
        if progress:
            it = tqdm(it, total=len(args), desc=f"decoding {len(args)} samples")
        for i, arr in enumerate(it):
            out[i] = arr
    return out
