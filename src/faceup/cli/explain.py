"""Why this way up: the explain command."""

import io
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceup import imageio, pipeline
from faceup.cli.common import (
    MaxPixels,
    MinConfidence,
    app,
    error_line,
    out,
    print_json,
    printable,
)
from faceup.errors import FaceupError


@app.command()
def explain(
    input: Annotated[Path, typer.Argument(metavar="PICTURE", help="A picture.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The explanation as a picture "
                      "(PNG, JPEG or WebP, by the name's ending; a folder: NAME.why.png in it). Default: "
                      "NAME.why.png beside the input; with --json, no picture unless -o is given.")] = None,
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
        # the picture is written where -o says, or beside the input; with --json and
        # no -o the JSON is the answer and nothing is written
        dst = output or (None if as_json else input.with_name(imageio.output_name(input.name, "why", "png")))
        if dst is None:
            result = why.explain(input, options, path=printable(input))
            print_json({**result.to_json(), "output": None})
            return
        if dst.is_dir():
            dst = dst / imageio.output_name(input.name, "why", "png")
        drawn_as = imageio.format_for_suffix(dst.suffix) or "PNG"
        if drawn_as not in ("PNG", "JPEG", "WEBP"):
            error_line(f"the explanation is drawn as PNG, JPEG or WebP; give -o a name ending .png, .jpg or .webp, "
                   f"not {dst.suffix}")
            raise typer.Exit(2)
        if dst.resolve() == input.resolve():
            error_line("the output is the input; give another -o")
            raise typer.Exit(2)
        result = why.explain(input, options, path=printable(input))
        buf = io.BytesIO()
        drawing = why.draw(input, result, options)
        (drawing.convert("RGB") if drawn_as == "JPEG" else drawing).save(buf, drawn_as)
        imageio.write_atomic(dst, buf.getvalue())
    except FaceupError as exc:
        error_line(str(exc))
        raise typer.Exit(1) from None
    except OSError as exc:
        error_line(f"cannot write {printable(dst)}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    if as_json:
        print_json({**result.to_json(), "output": printable(dst)})
    else:
        out.print(f"{printable(input)}: rotation {result.prediction.rotation}° (confidence "
                  f"{result.prediction.confidence:.3f}), {len(result.faces)} face(s) seen -> {printable(dst)}")
