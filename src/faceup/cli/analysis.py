"""Commands that analyse the upright picture: analyze (faces, smile, age,
gender) and background."""

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
    Thorough,
    app,
    error_line,
    failed_line,
    flagged,
    out,
    print_json,
    printable,
    progress,
)
from faceup.cli.outputs import Tally, _output_format, _plan
from faceup.errors import FaceupError
from faceup.files import walk


@app.command()
def analyze(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Pictures or directories.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line and per picture.")] = False,
    recursive: Recursive = True,
    include_outputs: IncludeOutputs = False,
    only: Annotated[Optional[str], typer.Option("--only", help="Comma-separated: faces,smile,age,gender "
                    "(default: all).")] = None,
    fine: Fine = False,
    thorough: Thorough = False,
    min_confidence: MinConfidence = None,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
) -> None:
    """Turn each picture upright, then find every face with smile, age and gender,
    in the coordinates of the upright picture."""
    try:
        asked = pipeline.parse_only(only)
    except FaceupError as exc:
        error_line(flagged(str(exc)))
        raise typer.Exit(2) from None
    options = pipeline.Options(min_confidence=min_confidence, max_pixels=max_pixels, fine=fine, thorough=thorough)
    items: list[Path] = []
    for p in paths:
        items += walk(p, recursive, outputs=include_outputs) if p.is_dir() else [p]
    failures = 0
    with progress(len(items), "analysing") as bar:
        task = bar.add_task("", total=len(items))
        answers = pipeline.analyze_iter(items, options, [printable(p) for p in items], asked)
        for path, res in zip(items, answers):
            failures += res.prediction.error is not None
            if as_json:
                print_json(res.to_json())
            elif res.prediction.error:
                failed_line(path, res.prediction.error)
            else:
                p = res.prediction
                out.print(f"{printable(path)}: rotation {p.rotation}° (confidence {p.confidence:.3f}), {len(res.faces)} face(s)")
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


@app.command()
def background(
    input: Annotated[Path, typer.Argument(metavar="INPUT", help="A picture or a directory (walked recursively).", show_default=False)],
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
    recursive: Recursive = True,
    include_outputs: IncludeOutputs = False,
    max_pixels: MaxPixels = imageio.DEFAULT_MAX_PIXELS,
) -> None:
    """Turn each picture upright, then replace what is behind the people: a colour,
    another picture, a blur, a generated preset or transparency. Never overwrites an input."""
    from faceup.background import Replacement, output_format

    if not input.exists():
        error_line(f"{input} does not exist")
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
        error_line(f"{exc}")
        raise typer.Exit(2) from None
    jobs = _plan(input, output, False, fmt, "background", recursive, include_outputs)
    tally = Tally(len(jobs), as_json, options)
    with progress(len(jobs), "replacing backgrounds") as bar:
        task = bar.add_task("", total=len(jobs))
        results = pipeline.background_iter([job.src for job in jobs], how, options,
                                           [printable(job.src) for job in jobs])
        for job, result in zip(jobs, results):
            try:
                if isinstance(result, Exception):
                    raise result
                imageio.write_atomic(job.dst, result.data)
            except Exception as exc:  # noqa: BLE001 - one bad file never ends the batch
                tally.failed(job.src, exc)
            else:
                pred = result.prediction
                turned = f"turned back {pred.rotation}°, " if pred.turned else ""
                tally.done(pred, job.dst, f"{printable(job.src)}: {turned}background replaced -> {printable(job.dst)}")
            bar.advance(task)
    raise typer.Exit(tally.close())
