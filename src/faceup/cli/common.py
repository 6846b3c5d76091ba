"""What every command shares: the Typer app, the consoles, the options that
several commands take, progress bars and the lines printed for a failure.

No `from __future__ import annotations` in this package: Typer reads every
command's parameters at start-up, and string annotations cost it a compile each.
"""

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceup import pipeline

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Find how a picture is turned and turn it back.")


def _version(value: bool) -> None:
    if value:
        from faceup import __version__

        typer.echo(f"faceup {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False,
          providers: Annotated[str, typer.Option("--providers", envvar="FACEUP_PROVIDERS", metavar="LIST",
                               help="onnxruntime execution providers to run the models on, best first, "
                                    "comma-separated (e.g. cuda,cpu); each is used when this onnxruntime "
                                    "has it, the CPU always last. `faceup info` shows the choice.")] = "") -> None:
    """Find how a picture is turned and turn it back."""
    from faceup.errors import FaceupError
    from faceup.models import base

    try:
        base.configure(providers=[p.strip() for p in providers.split(",") if p.strip()])
    except FaceupError as exc:
        error_line(str(exc).replace("providers:", "--providers:", 1))
        raise typer.Exit(2) from None


class _Stream:
    """Lines for a person on stdout or stderr (click's echo: colour only on a
    terminal, text shown as it is)."""

    def __init__(self, err: bool) -> None:
        self.err = err

    @property
    def is_terminal(self) -> bool:
        return (sys.stderr if self.err else sys.stdout).isatty()

    def print(self, text: object) -> None:
        typer.echo(str(text), err=self.err)


out = _Stream(err=False)
err = _Stream(err=True)


class Table:
    """A plain table of columns, left-aligned, printed as text."""

    def __init__(self, *columns: str) -> None:
        self.rows: list[tuple[str, ...]] = [tuple(columns)]

    def add_row(self, *cells: str) -> None:
        self.rows.append(tuple(str(c) for c in cells))

    def __str__(self) -> str:
        widths = [max(len(r[i]) for r in self.rows) for i in range(len(self.rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in self.rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _confidence(value: Optional[float]) -> Optional[float]:
    """Checked by the library's own rule (pipeline.Options), now, before any work."""
    from faceup.errors import BadOptionError

    try:
        pipeline.Options(min_confidence=value)
    except BadOptionError:
        raise typer.BadParameter(f"{value} is not a number from 0 to 1") from None
    return value


MinConfidence = Annotated[
    Optional[float],
    typer.Option("--min-confidence", callback=_confidence,
                 help="Below this confidence a picture is left as it is, for every picture. Default: "
                      "calibrated on validation data, stricter for a picture in which no face is found."),
]
Fine = Annotated[bool, typer.Option("--fine", help="Estimate any angle from the main face's eye line "
                                     "(`angle` in degrees clockwise), not only quarter turns.")]
Thorough = Annotated[bool, typer.Option("--thorough", help="Where the classifier is unsure and no face is "
                     "found, look again for small, grey and high-contrast faces (about 0.1 s more on such "
                     "pictures).")]
MaxPixels = Annotated[int, typer.Option("--max-pixels", envvar="FACEUP_MAX_PIXELS",
                                        help="Refuse pictures with more pixels, every frame and page counted "
                                             "(decompression-bomb guard).")]
Recursive = Annotated[bool, typer.Option("--recursive/--no-recursive", "-r/-R", help="Walk a folder's "
                      "sub-folders too (the default), or only its own files.")]
IncludeOutputs = Annotated[bool, typer.Option("--include-outputs", help="Take faceup's own outputs found in a "
                           "folder (NAME.upright.EXT, NAME.background.EXT, NAME.why.png) as inputs too; "
                           "they are left out by default.")]
Workers = Annotated[Optional[int], typer.Option("--workers", min=1, help="Threads that decode and encode "
                                                "pictures, and chunks of pictures judged at once, each on one "
                                                "onnxruntime thread (default: every core).")]


def use_threads(workers: int | None) -> None:
    """Each inference on one onnxruntime thread, `workers` of them at once beside
    the decoding threads: on two cores that measured faster than onnxruntime's own
    threads (3.6 against 4.2 ms a picture with one chunk judged at a time,
    benchmarks/throughput.py's web set): the network is small and its threads
    fight the decoders."""
    from faceup.models import base

    base.configure(threads=1, providers=base.runtime().providers)  # keeps --providers


class _Bar:
    """A tqdm progress bar on stderr behind the small interface the commands use
    (add_task, advance, update); nothing is drawn when no one watches stderr."""

    def __init__(self, total: int, label: str, shown: bool) -> None:
        self.total, self.label, self.shown, self.bar = total, label, shown, None

    def __enter__(self):
        if self.shown:
            from tqdm import tqdm

            # a copy of the terminal's stderr: `faceup batch` sends fd 2 (Ray's own
            # messages) to a log file while the bar is shown
            self._tty = os.fdopen(os.dup(sys.stderr.fileno()), "w")
            self.bar = tqdm(total=self.total, desc=self.label, unit=" pictures", file=self._tty, leave=False,
                            dynamic_ncols=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
            self._tty.close()

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def advance(self, *args, **kwargs) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def update(self, task: int = 0, completed: int | None = None, total: int | None = None, **kwargs) -> None:
        if self.bar is not None:
            if total is not None and total != self.bar.total:
                self.bar.total = total
            if completed is not None:
                self.bar.update(completed - self.bar.n)


def progress(total: int, label: str, rate: bool = False) -> _Bar:
    """A progress bar on stderr with the rate and the time left, when stderr is a
    terminal and there is more than one item."""
    return _Bar(total, label, shown=total >= 2 and sys.stderr.isatty())


def printable(path: Path | str) -> str:
    """A path as printable text (a non-UTF-8 file name shows its odd bytes as \\xNN)."""
    return pipeline.printable_path(str(path))


def unexpected(exc: Exception) -> str:
    """The message for an error that is not faceup's own: a bug, said plainly, and the batch goes on."""
    from faceup.errors import InternalError

    return str(InternalError.of(exc))


def flagged(msg: str) -> str:
    """A library message in the CLI's spelling: the fields it names in backticks
    (`min_confidence`) become the flags that set them (--min-confidence)."""
    return re.sub(r"`([a-z][a-z_]*)`", lambda m: "--" + m[1].replace("_", "-"), msg)


def error_line(msg: str) -> None:
    """An error line on stderr ("error:" in red on a terminal)."""
    typer.echo(typer.style("error:", fg="red") + f" {flagged(msg)}", err=True)


def warning_line(msg: str) -> None:
    """A warning line on stderr (yellow on a terminal)."""
    typer.secho(flagged(msg), fg="yellow", err=True)


def failed_line(path: Path | str, msg: str, indent: str = "") -> None:
    """One line for a file that failed ("failed" in red on a terminal)."""
    typer.echo(indent + typer.style("failed", fg="red") + f" {printable(path)}: {flagged(msg)}", err=True)


def print_json(obj: dict) -> None:
    if isinstance(obj.get("error"), str):  # a library message, in the CLI's spelling
        obj = {**obj, "error": flagged(obj["error"])}
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


