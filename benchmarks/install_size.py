"""How big the runtime install is: a fresh virtual environment with `pip install
faceup` (no extras), as a user makes it, and the environment the Dockerfile's
builder stage makes and its final stage copies (no pip, no test folders, no
__pycache__). Each is made in a temporary folder with this machine's Python and
measured with du; a smoke test runs `faceup predict` in each.

    python benchmarks/install_size.py
"""

from __future__ import annotations

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
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def main() -> None:
    python = sys.executable if "venv" not in sys.prefix else str(Path(sys.base_prefix) / "bin" / "python3")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        user = Path(tmp) / "user"
        run(python, "-m", "venv", str(user))
        run(str(user / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir", str(REPO))
        run(str(user / "bin" / "faceup"), "predict", "--json", str(SAMPLE))
        run(str(user / "bin" / "python"), "-c", "from faceup.server import create_app; create_app()")
        top = sorted(((du_mb(p), p.name) for p in (user / "lib" / "python3.11" / "site-packages").iterdir()),
                     reverse=True)[:6]
        rows.append(("fresh venv, `pip install faceup` (pip and setuptools included)", du_mb(user)))
        docker = Path(tmp) / "docker"
        run(python, "-m", "venv", "--without-pip", str(docker))
        run(python, "-m", "pip", "--python", str(docker / "bin" / "python"), "install", "-q", "--no-cache-dir",
            "--no-compile", str(REPO))
        run("sh", "-c", f'find {docker} -depth -type d \\( -name tests -o -name __pycache__ \\) '
                        f'-path "*/site-packages/*" -exec rm -rf {{}} +')
        run(str(docker / "bin" / "faceup"), "predict", "--json", str(SAMPLE))
        run(str(docker / "bin" / "python"), "-c", "from faceup.server import create_app; create_app()")
        rows.append(("the Dockerfile's /opt/venv (its final stage's own layer)", du_mb(docker)))
    print("command: python benchmarks/install_size.py")
    print("| what | MB |")
    print("|---|---|")
    for what, mb in rows:
        print(f"| {what} | {mb:.0f} |")
    print("largest parts of the fresh venv: " + ", ".join(f"{name} {mb:.0f} MB" for mb, name in top))


if __name__ == "__main__":
    main()
