"""The click command behind the Typer app, for the docs site's CLI reference
(mkdocs-click reads it). Imported by the docs build only."""

import typer

from faceup.cli import app

command = typer.main.get_command(app)
