"""Commands that judge and turn pictures: predict, fix, explain."""

import json
import sys
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
    error_line,
    failed_line,
    out,
    print_json,
    printable,
    progress,
    use_threads,
    warning_line,
)
from faceup.cli.outputs import Tally, _output_format, _plan, describe
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
    if in_place and output is not None:
        error_line("give either --output or --in-place, not both")
        raise typer.Exit(2)
    if tag_only and (fmt or fine):
        error_line("--tag-only keeps the picture's own bytes: it takes neither --format nor --fine")
        raise typer.Exit(2)
    try:
        fmt = None if tag_only else _output_format(fmt, input, output)
        options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, format=fmt,
                                   fine=fine, expand=expand, fill=fill, thorough=thorough)
    except FaceupError as exc:
        error_line(f"{exc}")
        raise typer.Exit(2) from None
    if str(input) == "-" or str(output) == "-":
        _fix_stream(input, output, as_json, options)
        return
    if not input.exists():
        error_line(f"{input} does not exist")
        raise typer.Exit(2)

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


def _fix_stream(input: Path, output: Optional[Path], as_json: bool, options: pipeline.Options) -> None:
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
