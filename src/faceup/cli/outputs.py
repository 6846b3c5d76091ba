"""What the commands that write pictures share: where each input goes (and
which inputs are refused), and the lines they print about each picture and at
the end of a run."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from faceup import imageio, pipeline
from faceup.cli.common import err, error_line, failed_line, out, print_json, printable, unexpected
from faceup.errors import FaceupError
from faceup.files import walk


@dataclass
class _Job:
    src: Path
    dst: Path
    #: why this input is not written (its output would be another input's too)
    refused: Optional[str] = None


def _default_output(src: Path, fmt: str | None, tag: str = "upright") -> Path:
    if src.is_dir():
        return src.with_name(f"{src.name}-{tag}")
    return src.with_name(imageio.output_name(src.name, tag, fmt))


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
                dst = dst.with_name(imageio.in_format(dst.name, fmt))
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
        dst = output / imageio.in_format(input.name, fmt)
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
                usual = self.options.threshold()
                below = (f"{usual:.3f}" if pred.confidence < usual else
                         f"{self.options.threshold(no_face=True):.3f}, the threshold where no face is found")
                out.print(f"  not sure {pred.path}: looks turned {how} but confidence {pred.confidence:.3f} is below "
                          f"{below}; left as it is")
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
