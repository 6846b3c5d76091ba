"""Shared fixtures: real, licensed photos from scikit-image (astronaut: NASA,
public domain; camera, chelsea, coffee: CC0; rocket: public domain)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image
from skimage import data as skdata

REPO = Path(__file__).resolve().parents[1]

# In CI the property tests run the same examples every time (a failure found
# while developing is kept in .hypothesis; CI must not be flaky).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
T = Image.Transpose

#: upright -> turned `r` degrees clockwise (the CLI contract's convention)
TURN = {0: None, 90: T.ROTATE_270, 180: T.ROTATE_180, 270: T.ROTATE_90}


def turn(img: Image.Image, rotation: int) -> Image.Image:
    op = TURN[rotation]
    return img if op is None else img.transpose(op)


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **{"quality": 90, **kw})
    return buf.getvalue()


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    if a.size != b.size:
        return float("inf")
    return float(np.abs(np.asarray(a.convert("RGB"), dtype=np.int16) - np.asarray(b.convert("RGB"), dtype=np.int16)).mean())


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """A portrait: one clear face, 512x512 (sides a multiple of 16)."""
    return Image.fromarray(skdata.astronaut())


@pytest.fixture(scope="session")
def astronaut_small(astronaut) -> Image.Image:
    return astronaut.resize((256, 256), Image.Resampling.LANCZOS)


@pytest.fixture(scope="session")
def chelsea() -> Image.Image:
    """A cat, 451x300: sides not a multiple of 8."""
    return Image.fromarray(skdata.chelsea())


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    return Image.fromarray(skdata.coffee())


def faceup_cli(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the installed `faceup` console command, as a user would."""
    exe = shutil.which("faceup", path=str(Path(sys.executable).parent)) or "faceup"
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, env=env, check=check, timeout=600)


def data_root() -> Path | None:
    from faceup.datasets import data_root as root

    r = root()
    return r if (r / "faces").is_dir() else None


# ------------------------------------------------------------------ a real server process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`faceup serve` as a real process on a free port, once it answers /health."""
    import httpx

    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "faceup")
    env = {**os.environ, **(env_extra or {})}
    # its log goes to a file: a pipe nobody reads fills after about 64 KB of access
    # lines and then blocks the server mid-request (the API fuzz makes that many)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(log.read().decode(errors="replace"))
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 60 s")


@pytest.fixture(scope="module")
def server():
    proc, url = start_server()
    yield url
    proc.terminate()
    proc.wait(10)
