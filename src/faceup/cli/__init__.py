"""The command line: argument parsing and printing only; the work is in the
library (`pipeline`, `batch`, `evaluate`, `train`). One module per group of
commands, each adding its commands to the one Typer app in `common`."""

from faceup.cli import analysis, batch, explain, orientation, service, training  # noqa: E402,F401 - register the commands
from faceup.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
