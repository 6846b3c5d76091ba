"""Measure the orientation decision on upright pictures turned by exact quarter turns.

Each upright picture is turned by 0, 90, 180 and 270 degrees clockwise, saved as
JPEG (quality 90, as pictures arrive) and fed through `pipeline.predict`, the
same path `faceup predict` takes; timing covers decoding and inference.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from faceup import geometry, pipeline
from faceup.calibration import reliability
from faceup.errors import missing_extra
from faceup.models.orientation import ROTATIONS


def turned_jpeg(img: Image.Image, rotation: int, quality: int = 90) -> bytes:
    """The upright picture turned `rotation` degrees clockwise, as JPEG."""
    out = geometry.quarter_turn(img.convert("RGB"), rotation)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@dataclass
class Report:
    name: str
    truth: list[int] = field(default_factory=list)
    pred: list[int] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    confident: list[bool] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def add(self, truth: int, p: pipeline.Prediction) -> None:
        if p.error or p.rotation is None:
            self.errors += 1
            return
        self.truth.append(truth)
        self.pred.append(p.rotation)
        self.confidence.append(float(p.confidence or 0.0))
        self.confident.append(bool(p.confident))

    @property
    def n(self) -> int:
        return len(self.truth)

    @classmethod
    def merge(cls, name: str, reports: Iterable[Report]) -> Report:
        """One report of every case of `reports` (the "all" row)."""
        total = cls(name=name)
        for rep in reports:
            for attr in ("truth", "pred", "confidence", "confident"):
                getattr(total, attr).extend(getattr(rep, attr))
            total.errors += rep.errors
            total.seconds += rep.seconds
        return total

    def summary(self) -> dict:
        t, p = np.array(self.truth), np.array(self.pred)
        conf, ok = np.array(self.confident, dtype=bool), t == p
        cm = np.zeros((4, 4), dtype=int)
        for a, b in zip(t, p):
            cm[ROTATIONS.index(int(a)), ROTATIONS.index(int(b))] += 1
        per_class = {str(r): float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None for i, r in enumerate(ROTATIONS)}
        upright = t == 0
        return {
            "name": self.name,
            "cases": int(self.n),
            "errors": self.errors,
            "accuracy": float(ok.mean()) if self.n else None,
            "coverage": float(conf.mean()) if self.n else None,
            "accuracy_when_confident": float(ok[conf].mean()) if conf.any() else None,
            "upright_turned_share": float(((p != 0) & conf)[upright].mean()) if upright.any() else None,
            "per_class_accuracy": per_class,
            "confusion": cm.tolist(),
            "pictures_per_second": float(self.n / self.seconds) if self.seconds else None,
            "ms_per_picture": float(1000 * self.seconds / self.n) if self.n else None,
            "reliability": reliability(np.array(self.confidence), ok) if self.n else None,
        }


def trimmed(img: Image.Image, most: int, rng) -> Image.Image:
    """The picture with 1..`most` pixels (drawn from `rng`, a random.Random) cut
    from each edge: a turned copy then shares no block grid or edge with the
    upright file it came from (the issue's outside check crops a few pixels)."""
    if most <= 0:
        return img
    w, h = img.size
    most = max(1, min(most, (w - 1) // 3, (h - 1) // 3))
    left, top, right, bottom = (rng.randint(1, most) for _ in range(4))
    return img.crop((left, top, w - right, h - bottom))


def evaluate_pictures(
    items: Iterable[tuple[str, Image.Image]],
    options: pipeline.Options,
    report: Report,
    on_step: Callable[[], None] | None = None,
    trim: int = 0,
    seed: int = 0,
) -> Report:
    """Each picture turned four ways through `pipeline.predict`; with `trim`, a few
    pixels (1..trim, seeded) are first cut from each edge, once per picture."""
    import random

    rng = random.Random(seed)
    for name, img in items:
        img = trimmed(img, trim, rng)
        for r in ROTATIONS:
            data = turned_jpeg(img, r)
            t0 = time.perf_counter()
            pred = pipeline.predict(data, options, path=f"{name}@{r}")
            report.seconds += time.perf_counter() - t0
            report.add(r, pred)
        if on_step:
            on_step()
    return report


#: The held-out parts of the shared data `sources(heldout=...)` knows.
HELDOUT = ("faces", "crowds", "scenes", "people", "everyday", "street")


def sources(directory: Path | None = None, heldout: str | None = None, data: Path | None = None,
            limit: int | None = None) -> dict[str, list[Path]]:
    """The upright pictures to measure, by source: held-out parts of the shared
    data (faces: LFW, crowds, scenes, people, everyday: the everyday photos,
    street: the street frames' held-out drive; several with commas, or "all"),
    or a folder whose own files form one source and each sub-folder another. `limit`: at most this many per source
    (a seeded sample)."""
    import random

    from faceup import datasets
    from faceup.errors import BadOptionError
    from faceup.files import walk

    found: dict[str, list[Path]] = {}
    if heldout:
        names = HELDOUT if heldout == "all" else tuple(n.strip() for n in heldout.split(","))
        for name in names:
            if name not in HELDOUT:
                raise BadOptionError(f"`heldout` must be one of {', '.join(HELDOUT)} (several with commas, or all), "
                                     f"not {name!r}")
        root = datasets.data_root(data)
        pick = {"faces": lambda: datasets.lfw(root), "crowds": lambda: datasets.crowds(root, "test"),
                "scenes": lambda: datasets.scenes(root, "test"), "people": lambda: datasets.people(root),
                "everyday": lambda: datasets.objects(root, "test"), "street": lambda: datasets.camvid(root, "test")}
        for name in names:
            found[name] = pick[name]()
    elif directory is not None and directory.is_dir():
        subdirs = sorted(d for d in directory.iterdir() if d.is_dir() and not d.name.startswith("."))
        top = list(walk(directory, False))
        if top or not subdirs:
            found[directory.name] = top
        for d in subdirs:
            found[d.name] = walk(d, True)
    else:
        raise BadOptionError("give a directory of upright pictures or `heldout`")
    if limit:
        found = {k: sorted(random.Random(0).sample(v, min(limit, len(v)))) for k, v in found.items()}
    return found


def run(sources: dict[str, list[Path]], options: pipeline.Options, trim: int = 0,
        on_step: Callable[[], None] | None = None) -> tuple[list[dict], dict]:
    """Every source's pictures turned four ways and judged: each source's summary,
    and the summary of all of them."""
    reports = [evaluate_pictures(load_upright(paths), options, Report(name=name), on_step=on_step, trim=trim)
               for name, paths in sources.items()]
    return [r.summary() for r in reports], Report.merge("all", reports).summary()


def load_upright(paths: list[Path]) -> Iterable[tuple[str, Image.Image]]:
    from faceup import imageio
    from faceup.errors import FaceupError

    for p in paths:
        try:
            yield str(p), imageio.read(p).image
        except FaceupError:
            continue


def pyplot():
    """matplotlib's pyplot (headless), or MissingExtraError naming the plots extra."""
    try:
        import matplotlib
    except ImportError as exc:
        raise missing_extra("drawing plots", "plots", exc) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(summary: dict, path: str | Path) -> None:
    plt = pyplot()

    cm = np.array(summary["confusion"])
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(4), [str(r) for r in ROTATIONS])
    ax.set_yticks(range(4), [str(r) for r in ROTATIONS])
    ax.set_xlabel("predicted rotation (deg cw)")
    ax.set_ylabel("true rotation (deg cw)")
    for i in range(4):
        for j in range(4):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=9)
    ax.set_title(f"{summary['name']}: accuracy {summary['accuracy']:.2%}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(summary: dict, path: str | Path) -> None:
    plt = pyplot()

    rel = summary["reliability"]
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    xs = [b["confidence"] for b in rel["bins"]]
    ys = [b["accuracy"] for b in rel["bins"]]
    ax.plot(xs, ys, "o-")
    for b in rel["bins"]:
        ax.annotate(f"n={b['n']}", (b["confidence"], b["accuracy"]), textcoords="offset points",
                    xytext=(-8, -12), fontsize=7, ha="right")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0.2, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{summary['name']}: {summary['cases']} cases, ECE {rel['ece']:.3f}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def rotated_case(img: Image.Image, angle_cw: float, quality: int = 90) -> bytes:
    """An upright picture turned by angle_cw (clockwise), cropped to the largest
    upright rectangle without empty corners, saved as JPEG."""
    w, h = img.size
    rot = geometry.rotate(img.convert("RGB"), angle_cw, expand=True)
    rot = rot.crop(geometry.crop_box_inscribed(w, h, angle_cw))
    buf = io.BytesIO()
    rot.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def evaluate_angles(name: str, paths: list[Path], seed: int = 0, draws: int = 1,
                    on_step: Callable[[], None] | None = None, model=None) -> dict:
    """The generic angle model on upright pictures turned by random angles (`draws`
    of them per picture: a few hundred pictures turned once give a noisy mean):
    mean and median error (RotNet's angle_error) and the share within 5 and 10 degrees."""
    import random

    from faceup import imageio
    from faceup.errors import FaceupError
    from faceup.models import get
    from faceup.models.angle import AngleModel

    model = model or get(AngleModel)  # or a candidate (models.angle.AngleModel.from_file)
    rng = random.Random(seed)
    errors, seconds = [], 0.0
    for p in paths:
        try:
            img = imageio.read(p).image
        except FaceupError:
            continue
        for _ in range(draws):
            angle = rng.uniform(0, 360)
            data = rotated_case(img, angle)
            t0 = time.perf_counter()
            est, _ = model.predict(imageio.read(data).image)
            seconds += time.perf_counter() - t0
            errors.append(abs((est - angle + 180.0) % 360.0 - 180.0))
        if on_step:
            on_step()
    e = np.array(errors)
    return {"name": name, "cases": int(len(e)), "draws": draws, "mean_error": float(e.mean()),
            "median_error": float(np.median(e)),
            "within_5": float((e <= 5).mean()), "within_10": float((e <= 10).mean()),
            "pictures_per_second": float(len(e) / seconds) if seconds else 0.0}
