"""What every command shares: the Typer app, the consoles, the options that
several commands take, progress bars and the lines printed for a failure.

No `from __future__ import annotations` in this package: Typer reads every
command's parameters at start-up, and string annotations cost it a compile each.
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceup import pipeline
from faceup.errors import shown

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
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


def use_threads(workers: int | None) -> None:
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


def progress(total: int, label: str, rate: bool = False):
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


def printable(path: Path) -> str:
    """A path as printable text (a non-UTF-8 file name shows its odd bytes as \\xNN)."""
    return pipeline.printable_path(str(path))


def unexpected(exc: Exception) -> str:
    """The message for an error that is not faceup's own: a bug, said plainly, and the batch goes on."""
    return f"unexpected error ({type(exc).__name__}: {shown(exc, 120)}); this is a bug in faceup, please report it"


def error_line(msg: str) -> None:
    """An error line on stderr; the message is shown as it is (no markup read in it)."""
    from rich.text import Text

    err.print(Text.assemble(("error:", "red"), f" {msg}"))


def failed_line(path: Path, msg: str, indent: str = "") -> None:
    """One line for a file that failed; the message is shown as it is (no markup read in it)."""
    from rich.text import Text

    err.print(Text.assemble(indent, ("failed", "red"), f" {printable(path)}: {msg}"))


def print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


