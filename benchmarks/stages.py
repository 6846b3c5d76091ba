"""What each stage of the orientation cascade contributes, on held-out data only.

    .venv/bin/python benchmarks/stages.py [--limit 200]

Sources (none trained on): crowd photos whose number ends in 0 or 5; face-free
scenes (held-out part); LFW faces; and synthetic scenes made of LFW faces pasted
onto held-out scenes. Each upright picture is turned by 0/90/180/270, saved as
JPEG q90 and decoded as `faceup predict` would. Prints a table per stage.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faceup import datasets, faces, imageio, pipeline  # noqa: E402
from faceup.evaluate import turned_jpeg  # noqa: E402
from faceup.models.orientation import log_softmax  # noqa: E402
from faceup.orientation import model  # noqa: E402


def synthetic_heldout(root: Path, n: int, seed: int = 7) -> list[tuple[str, Image.Image]]:
    rng = random.Random(seed)
    scenes = datasets.scenes(root, "test")
    lfw = datasets.lfw(root)
    out = []
    for i in range(n):
        bg = Image.open(rng.choice(scenes)).convert("RGB").resize(rng.choice([(320, 240), (240, 320), (400, 300), (300, 300)]))
        for _ in range(rng.choice([1, 1, 2, 3, 5])):
            face = Image.open(rng.choice(lfw)).convert("RGB")
            fw = int(min(bg.size) * rng.uniform(0.12, 0.5))
            face = face.resize((fw, fw))
            mask = Image.new("L", (fw, fw), 0)
            ImageDraw.Draw(mask).ellipse((fw * 0.08, 0, fw * 0.92, fw), fill=255)
            mask = mask.filter(ImageFilter.GaussianBlur(fw * 0.05))
            bg.paste(face, (rng.randint(0, bg.width - fw), rng.randint(0, bg.height - fw)), mask)
        if rng.random() < 0.2:
            bg = bg.convert("L").convert("RGB")
        out.append((f"synthetic-{i}", bg))
    return out


def load(paths: list[Path]) -> list[tuple[str, Image.Image]]:
    return [(str(p), imageio.read(p).image) for p in paths]


def collect(items, with_faces: bool = True):
    rows = []
    m = model()
    for name, img in items:
        for r, k in zip((0, 90, 180, 270), range(4)):
            pic = imageio.read(turned_jpeg(img, r), reduce_to=pipeline.PREDICT_DECODE_SIDE)
            t0 = time.perf_counter()
            p_tta = np.log(m.scores(pic.image, tta=True))
            t1 = time.perf_counter()
            p_one = np.log(m.scores(pic.image, tta=False))
            t2 = time.perf_counter()
            ev = np.array([v.evidence for v in faces.views(pic.image)]) if with_faces else np.zeros(4)
            t3 = time.perf_counter()
            rows.append((k, p_one, p_tta, ev, t1 - t0, t2 - t1, t3 - t2))
    return rows


def table(results: dict[str, list], strengths=(0.0, 2.0, 4.0, 8.0)) -> None:
    header = f"{'source':<12} {'cases':>6} {'single':>8} {'TTA':>8} {'faces':>8} " + " ".join(
        f"{'TTA+f' + str(s):>9}" for s in strengths[1:]) + f" {'ms cls':>7} {'ms faces':>8}"
    print(header)
    for name, rows in results.items():
        y = np.array([r[0] for r in rows])
        one = np.array([r[1] for r in rows]).argmax(1)
        tta = np.array([r[2] for r in rows])
        ev = np.array([r[3] for r in rows])
        faces_only = ev.argmax(1)
        has_face = ev.max(1) > 0
        cells = [f"{(one == y).mean():8.2%}", f"{(tta.argmax(1) == y).mean():8.2%}",
                 f"{(faces_only[has_face] == y[has_face]).mean() if has_face.any() else float('nan'):8.2%}"]
        for s in strengths[1:]:
            comb = log_softmax(tta + s * ev).argmax(1)
            cells.append(f"{(comb == y).mean():9.2%}")
        ms_cls = 1000 * np.mean([r[4] for r in rows])
        ms_faces = 1000 * np.mean([r[6] for r in rows])
        print(f"{name:<12} {len(y):>6} " + " ".join(cells) + f" {ms_cls:7.1f} {ms_faces:8.1f}")
    print("faces: accuracy of face evidence alone where any face was found; TTA+fS: combined with strength S")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--data", default=None)
    ap.add_argument("--save", default=None, help="save the raw per-case arrays (npz)")
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    rng = random.Random(0)

    def pick(paths):
        return sorted(rng.sample(paths, min(args.limit, len(paths))))

    sets = {
        "crowds": load(pick(datasets.crowds(root, "test"))),
        "synthetic": synthetic_heldout(root, args.limit),
        "lfw": load(pick(datasets.lfw(root))),
        "scenes": load(pick(datasets.scenes(root, "test"))),
    }
    results = {name: collect(items) for name, items in sets.items()}
    table(results)
    if args.save:
        arrays = {}
        for n, rows in results.items():
            arrays[f"{n}_y"] = np.array([r[0] for r in rows])
            arrays[f"{n}_one"] = np.array([r[1] for r in rows])
            arrays[f"{n}_tta"] = np.array([r[2] for r in rows])
            arrays[f"{n}_faces"] = np.array([r[3] for r in rows])
        np.savez(args.save, **arrays)


if __name__ == "__main__":
    main()
