"""How big the runtime install is: a fresh virtual environment with `pip install
faceup` (no extras), as a user makes it (pip's default writes the bytecode of every
module of every dependency at install time), the same with `--no-compile` as
`make run` installs it (with the bytecode of what the commands import written once,
the Makefile's WARM list), and the environment the Dockerfile's builder stage makes
and its final stage copies (no pip, no test folders, bytecode only for WARM). Each is made in
a temporary folder with this machine's Python and measured with du; each runs the
five commands.

    python benchmarks/install_size.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "faceup" / "samples" / "astronaut-turned-90.jpg"


def du_mb(path: Path) -> float:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
               .stdout.split()[0]) / 1024


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def warm(venv: Path) -> None:
    """Write the bytecode of what the commands import, as the Makefile and the
    Dockerfile do (their WARM list)."""
    modules = next(line.split(":=", 1)[1].strip() for line in (REPO / "Makefile").read_text().splitlines()
                   if line.startswith("WARM :="))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(venv / "bin" / "python"), "-c", f"import {modules}"], check=True, env=env)


def use(venv: Path, tmp: Path) -> None:
    """Run the five runtime commands once (and build the server's app), with
    PYTHONDONTWRITEBYTECODE set as in the Docker image: no bytecode written here."""
    bin_ = venv / "bin"
    run(str(bin_ / "faceup"), "predict", "--json", str(SAMPLE))
    run(str(bin_ / "faceup"), "fix", str(SAMPLE), "-o", str(tmp / "fixed.jpg"))
    run(str(bin_ / "faceup"), "analyze", "--json", str(SAMPLE))
    run(str(bin_ / "faceup"), "background", str(SAMPLE), "--colour", "white", "-o", str(tmp / "bg.jpg"))
    run(str(bin_ / "python"), "-c", "from faceup.server import create_app; create_app()")


def main() -> None:
    python = sys.executable if "venv" not in sys.prefix else str(Path(sys.base_prefix) / "bin" / "python3")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        user = Path(tmp) / "user"
        run(python, "-m", "venv", str(user))
        run(str(user / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir", str(REPO))
        use(user, Path(tmp))
        top = sorted(((du_mb(p), p.name) for p in (user / "lib" / "python3.11" / "site-packages").iterdir()),
                     reverse=True)[:6]
        rows.append(("fresh venv, `pip install faceup` (pip and setuptools included)", du_mb(user)))
        run(str(user / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", "pip", "setuptools")
        rows.append(("the same, pip and setuptools removed afterwards (the runtime a user keeps)", du_mb(user)))
        lazy = Path(tmp) / "lazy"
        run(python, "-m", "venv", str(lazy))
        run(str(lazy / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir", "--no-compile", str(REPO))
        warm(lazy)
        use(lazy, Path(tmp))
        what = ("fresh venv, `pip install --no-compile faceup` and the bytecode of what the commands import, "
                "as `make run` installs it (pip and setuptools included)")
        rows.append((what, du_mb(lazy)))
        docker = Path(tmp) / "docker"
        run(python, "-m", "venv", "--without-pip", str(docker))
        run(python, "-m", "pip", "--python", str(docker / "bin" / "python"), "install", "-q", "--no-cache-dir",
            "--no-compile", f"{REPO}[heic]")  # the Dockerfile's default EXTRAS
        run("sh", "-c", f'find {docker} -depth -type d \\( -name tests -o -name __pycache__ \\) '
                        f'-path "*/site-packages/*" -exec rm -rf {{}} +')
        warm(docker)
        use(docker, Path(tmp))
        rows.append(("the Dockerfile's /opt/venv (its final stage's own layer; with the heic extra, its default)", du_mb(docker)))
    print("command: python benchmarks/install_size.py")
    print("| what | MB |")
    print("|---|---|")
    for what, mb in rows:
        print(f"| {what} | {mb:.0f} |")
    print("largest parts of the fresh venv: " + ", ".join(f"{name} {mb:.0f} MB" for mb, name in top))


if __name__ == "__main__":
    main()
