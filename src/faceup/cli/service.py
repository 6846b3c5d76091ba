"""The HTTP service and the facts about this install: serve, info, version."""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceup import __version__
from faceup.cli.common import (
    app,
    error_line,
    out,
    print_json,
)


@app.command()
def info(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Version and the models with their sha256."""
    import faceup.orientation  # noqa: F401 - registers the models
    from faceup.models.base import describe_all

    d = describe_all()
    if as_json:
        print_json(d)
        return
    out.print(f"faceup {d['version']}  onnxruntime {d['onnxruntime']}  "
              f"providers {', '.join(d['providers_used'])} (available: {', '.join(d['execution_providers'])})")
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
            error_line(f"cannot read an API key from {api_key_file}: {exc}")
            raise typer.Exit(2) from None
        if not api_key:
            error_line(f"{api_key_file} holds no API key on its first line")
            raise typer.Exit(2)
    from faceup.models import base

    asked = ",".join(base.runtime().providers) or None  # faceup --providers ... serve
    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers, "api_key": api_key,
                                   "providers": asked}.items() if v is not None}
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
