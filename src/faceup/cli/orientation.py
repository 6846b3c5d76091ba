"""Commands that judge and turn pictures: predict, fix, explain."""

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceup import imageio, pipeline
from faceup.cli.common import (
    Fine,
    IncludeOutputs,
    MaxPixels,
    MinConfidence,
    Recursive,
    Table,
    Thorough,
    Workers,
    app,
    err,
    error_line,
    failed_line,
    out,
    print_json,
    printable,
    progress,
    unexpected,
    use_threads,
    warning_line,
)
from faceup.errors import FaceupError
from faceup.files import walk


@app.command()
def predict(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Pictures or directories.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line and per picture.")] = False,
    recursive: Recursive = True,
    include_outputs: IncludeOutputs = False,
    fine: Fine = False,
    thorough: Thorough = False,
    min_confidence: MinConfidence = None,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
    workers: Workers = None,
) -> None:
    """Report how each picture is turned, without writing anything. A PATH of -
    reads one picture from standard input."""
    use_threads(workers)
    options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, fine=fine, thorough=thorough)
    items: list = []
    for p in paths:
        if str(p) == "-":
            items.append((sys.stdin.buffer.read(), "-"))
        elif p.is_dir():
            items += [(f, printable(f)) for f in walk(p, recursive, outputs=include_outputs)]
        else:
            items.append((p, printable(p)))
    failures = 0
    table = None if as_json else Table("path", "rotation", "confidence", "confident", "exif", "error")
    with progress(len(items), "predicting") as bar:
        task = bar.add_task("", total=len(items))
        for pred in pipeline.predict_iter([p for p, _ in items], options, [label for _, label in items], workers):
            failures += pred.error is not None
            if table is None:
                print_json(pred.to_json())
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
        warning_line(f"{failures} of {len(items)} files could not be read")
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


def _plan(input: Path, output: Path | None, in_place: bool, fmt: str | None, tag: str, recursive: bool = True,
          outputs: bool = False) -> list[_Job]:
    """Input -> output pairs for a file or a directory (walked recursively unless
    not `recursive`; faceup's own outputs in it left out unless `outputs`).
    Exits with a message when the output would overwrite an input without --in-place."""
    jobs: list[_Job] = []
    if not input.is_dir() and output is None and not in_place and input.stem.endswith(f".{tag}"):
        error_line(f"{printable(input)} is named as faceup's own output already (NAME.{tag}.EXT); give -o to "
                   "say where to write, or --in-place")
        raise typer.Exit(2)
    if input.is_dir():
        dest_root = input if in_place else (output or _default_output(input, None, tag))
        if not in_place and dest_root.resolve() == input.resolve():
            error_line("the output directory is the input directory; use --in-place to overwrite")
            raise typer.Exit(2)
        for f in walk(input, recursive, skip=None if in_place else dest_root.resolve(), outputs=outputs):
            dst = dest_root / f.relative_to(input)
            if fmt and not in_place:
                dst = dst.with_suffix(imageio.SUFFIX[imageio.normalize_format(fmt)])
            jobs.append(_Job(f, dst))
        by_target: dict[Path, list[_Job]] = {}
        for job in jobs:
            by_target.setdefault(job.dst, []).append(job)
        for group in by_target.values():
            if len(group) > 1:
                names = " and ".join(printable(j.src) for j in group)
                for job in group:
                    job.refused = (f"{names} would all be written to {printable(job.dst)}; nothing written for them "
                                   "(rename one, or leave out --format)")
        return jobs
    dst = input if in_place else (output or _default_output(input, fmt, tag))
    if output is not None and output.is_dir():
        dst = output / input.name
        if fmt:
            dst = dst.with_suffix(imageio.SUFFIX[imageio.normalize_format(fmt)])
    if not in_place and dst.resolve() == input.resolve():
        error_line("the output is the input; use --in-place to overwrite it")
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
    input: Annotated[Path, typer.Argument(metavar="INPUT", help="A picture or a directory (walked recursively).", show_default=False)],
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
    tag_only: Annotated[bool, typer.Option("--tag-only", help="No new pixels (as jhead and exiftran do): set "
                        "the EXIF Orientation tag so that viewers show the picture upright, every other byte "
                        "kept. JPEG and PNG; other formats are refused unless --sidecar.")] = False,
    sidecar: Annotated[bool, typer.Option("--sidecar", help="With --tag-only: leave the picture as it is and "
                       "write its orientation into an XMP sidecar beside it (NAME.EXT.xmp), for any format.")] = False,
    recursive: Recursive = True,
    include_outputs: IncludeOutputs = False,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
    workers: Workers = None,
) -> None:
    """Turn pictures upright. Never overwrites an input unless --in-place. An
    INPUT of - reads one picture from standard input; -o - writes the picture to
    standard output (the default for standard input), the report then on standard
    error."""
    use_threads(workers)
    if str(input) == "-" or str(output) == "-":
        _fix_stream(input, output, fmt, as_json, pipeline_options(min_confidence, max_pixels, fmt, fine, expand,
                                                                 fill, thorough, input, output))
        return
    if not input.exists():
        error_line(f"{input} does not exist")
        raise typer.Exit(2)
    if in_place and output is not None:
        error_line("give either --output or --in-place, not both")
        raise typer.Exit(2)
    if tag_only and (fmt or fine):
        error_line("--tag-only keeps the picture's own bytes: it takes neither --format nor --fine")
        raise typer.Exit(2)
    try:
        fmt = None if tag_only else _output_format(fmt, input, output)
        if fmt:
            imageio.normalize_format(fmt)
        options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, format=fmt,
                                   fine=fine, expand=expand, fill=fill, thorough=thorough)
    except FaceupError as exc:
        error_line(f"{exc}")
        raise typer.Exit(2) from None

    if sidecar and not tag_only:
        error_line("--sidecar goes with --tag-only")
        raise typer.Exit(2)
    jobs = _plan(input, output, in_place, fmt, "upright", recursive, include_outputs)
    if tag_only:
        from faceup.cli.tagging import tag_all

        raise typer.Exit(tag_all(jobs, options, in_place, sidecar, as_json))

    tally = Tally(len(jobs), as_json, options)
    todo = [job for job in jobs if job.refused is None]
    with progress(len(jobs), "fixing") as bar:
        task = bar.add_task("", total=len(jobs))
        results = pipeline.fix_iter([job.src for job in todo], options, [printable(job.src) for job in todo], workers)
        refused = [(job, FaceupError(job.refused)) for job in jobs if job.refused is not None]
        for job, result in [*refused, *zip(todo, results)]:
            try:
                if isinstance(result, Exception):
                    raise result
                imageio.write_atomic(job.dst, result.data, like=job.src if in_place else None)
            except Exception as exc:  # noqa: BLE001 - one bad file never ends the batch
                tally.failed(job.src, exc)
            else:
                tally.done(result.prediction, job.dst, describe(result.prediction, job.dst))
            bar.advance(task)
    raise typer.Exit(tally.close())


def pipeline_options(min_confidence, max_pixels, fmt, fine, expand, fill, thorough, input, output) -> pipeline.Options:
    try:
        return pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels,
                                format=fmt or (None if str(output) in ("-", "None") else
                                               imageio.format_for_suffix(Path(str(output)).suffix)),
                                fine=fine, expand=expand, fill=fill, thorough=thorough)
    except FaceupError as exc:
        error_line(f"{exc}")
        raise typer.Exit(2) from None


def _fix_stream(input: Path, output: Optional[Path], fmt: Optional[str], as_json: bool,
                options: pipeline.Options) -> None:
    """fix with standard input and/or standard output (as rembg does: `cat a.jpg |
    faceup fix - > b.jpg`); what is said goes to standard error."""
    if str(input) != "-" and not input.is_file():
        error_line(f"{input} is not a picture file (standard output takes one picture)")
        raise typer.Exit(2)
    data = sys.stdin.buffer.read() if str(input) == "-" else input.read_bytes()
    to_stdout = output is None or str(output) == "-"
    try:
        result = pipeline.fix(data, options, path=str(input))
        if to_stdout:
            sys.stdout.buffer.write(result.data)
            sys.stdout.buffer.flush()
        else:
            imageio.write_atomic(output, result.data)
    except FaceupError as exc:
        failed_line(input, str(exc))
        raise typer.Exit(1) from None
    pred = result.prediction
    where = Path("-") if to_stdout else output
    if as_json:
        typer.echo(json.dumps({**pred.to_json(), "output": str(where), "turned": pred.turned,
                               "status": pred.status}), err=to_stdout)
    else:
        typer.echo(describe(pred, where), err=to_stdout)


class Tally:
    """The lines of a run over many pictures, the same for fix, fix --tag-only and
    background: one JSON object per picture (--json), or a line per picture when
    no one watches a progress bar, then the count of each outcome and, by name,
    the pictures left as they were (not sure) and those that failed."""

    def __init__(self, total: int, as_json: bool, options: pipeline.Options) -> None:
        self.total, self.as_json, self.options = total, as_json, options
        self.turned, self.left, self.failures = 0, [], []

    def failed(self, src: Path, exc: Exception, **extra) -> None:
        msg = str(exc) if isinstance(exc, (FaceupError, OSError)) else unexpected(exc)
        self.failures.append((src, msg))
        if self.as_json:
            print_json({**pipeline.Prediction(path=printable(src), error=msg).to_json(), "output": None,
                        "turned": False, "status": "failed", **extra})
        else:
            failed_line(src, msg)

    def done(self, pred: pipeline.Prediction, dst: Path, line: str, **extra) -> None:
        self.turned += pred.turned
        if pred.status == "not sure":
            self.left.append(pred)
        if self.as_json:
            print_json({**pred.to_json(), "output": printable(dst), "turned": pred.turned, "status": pred.status,
                        **extra})
        elif self.total == 1 or not err.is_terminal:
            out.print(line)

    def close(self) -> int:
        """The closing lines (a run of several pictures, not --json); the exit code."""
        if self.total > 1 and not self.as_json:
            failures, left = self.failures, self.left
            upright = self.total - self.turned - len(left) - len(failures)
            out.print(f"{self.total - len(failures)} of {self.total} pictures written: {self.turned} turned upright, "
                      f"{upright} already upright, {len(left)} not sure (left as they were: below the minimum "
                      f"confidence), {len(failures)} failed")
            for pred in left:
                how = f"{pred.angle:.1f}°" if pred.angle is not None else f"{pred.rotation}°"
                out.print(f"  not sure {pred.path}: looks turned {how} but confidence {pred.confidence:.3f} is below "
                          f"{self.options.threshold():.3f}; left as it is")
            for src, msg in failures:
                failed_line(src, msg, indent="  ")
        return 1 if self.failures else 0


def describe(pred: pipeline.Prediction, dst: Path) -> str:
    exif = f", EXIF orientation {pred.exif_orientation} applied" if pred.exif_orientation not in (None, 1) else ""
    if pred.turned:
        how = f"{pred.angle:.1f}°" if pred.angle is not None else f"{pred.rotation}°"
        return (f"{pred.path}: was turned {how} clockwise, turned back "
                f"(confidence {pred.confidence:.3f}){exif} -> {printable(dst)}")
    if pred.looks_turned:
        how = f"{pred.angle:.1f}°" if pred.angle is not None else f"{pred.rotation}°"
        return (f"{pred.path}: looks turned {how} but confidence {pred.confidence:.3f} is below the "
                f"minimum; left as it is{exif} -> {printable(dst)}")
    return f"{pred.path}: already upright (confidence {pred.confidence:.3f}){exif} -> {printable(dst)}"
