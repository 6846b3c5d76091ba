"""Where the container image's bytes go: the image (built by `make image`) is
mounted and each part measured with du, as a table.

    python benchmarks/image_size.py [IMAGE]      (default localhost/faceup:latest)

Needs podman and buildah (as `make image` installs them) and root (to mount).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GROUPS = [  # (row, paths under site-packages)
    ("onnxruntime", ["onnxruntime", "onnxruntime-*"]),
    ("numpy (and its OpenBLAS)", ["numpy", "numpy.libs", "numpy-*"]),
    ("Pillow (and its codecs)", ["PIL", "pillow.libs", "pillow-*"]),
    ("pillow-heif (HEIC read and write, x265)", ["pillow_heif", "pillow_heif.libs", "pillow_heif-*", "_pillow_heif*"]),
    ("pi-heif (HEIC read)", ["pi_heif", "pi_heif.libs", "pi_heif-*", "_pi_heif*"]),
    ("jpegtran (lossless JPEG turns)", ["jpegtran*", "cffi", "cffi-*", "_cffi_backend*", "pycparser*"]),
    ("pydantic", ["pydantic", "pydantic_core", "pydantic-*", "pydantic_core-*", "pydantic_settings*"]),
    ("FastAPI, Starlette, uvicorn", ["fastapi*", "starlette*", "uvicorn*", "h11*", "anyio*", "multipart*",
                                      "python_multipart*", "idna*"]),
]


def du(paths: list[Path]) -> int:
    paths = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if not paths:
        return 0
    out = subprocess.run(["du", "-scb", *paths], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[-1].split()[0])


def main() -> None:
    image = sys.argv[1] if len(sys.argv) > 1 else "localhost/faceup:latest"
    total = int(subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", image],
                               capture_output=True, text=True, check=True).stdout)
    ctr = subprocess.run(["buildah", "from", "--quiet", image], capture_output=True, text=True,
                         check=True).stdout.strip()
    try:
        root = Path(subprocess.run(["buildah", "mount", ctr], capture_output=True, text=True,
                                   check=True).stdout.strip())
        venv = root / "opt" / "venv"
        site = next(venv.glob("lib/python3*/site-packages"))
        rows = []
        used: set[Path] = set()
        weights = site / "faceup" / "models" / "weights"
        rows.append(("faceup's models (ONNX)", du([weights])))
        rows.append(("faceup's code, samples, web page", du([site / "faceup"]) - rows[-1][1]
                     + du(list(site.glob("faceup-*")))))
        used |= {site / "faceup", *site.glob("faceup-*")}
        for name, patterns in GROUPS:
            paths = [p for pat in patterns for p in site.glob(pat)]
            used |= set(paths)
            rows.append((name, du(paths)))
        rest = [p for p in site.iterdir() if p not in used]
        rows.append(("other Python packages (click, typer, tqdm, ...)", du(rest)))
        rows.append(("the environment's own files (bin, pyvenv.cfg)", du([venv]) - du([site])))
        base = total - du([venv]) - du([root / "usr/share/doc/faceup"])
        py = du([root / "usr/lib/python3.11", root / "usr/bin/python3.11", *root.glob("usr/lib/x86_64-linux-gnu/libpython3.11*")])
        rows.insert(0, ("the base: Python 3.11 (interpreter and standard library)", py))
        rows.insert(1, ("the base: the rest (libc, OpenSSL, coreutils, dpkg, ...)", base - py))
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True)
    width = max(len(r[0]) for r in rows)
    print(f"{image}: {total / 1e6:.0f} MB")
    print(f"{'part'.ljust(width)}  {'MB':>6}  {'share':>6}")
    for name, size in rows:
        print(f"{name.ljust(width)}  {size / 1e6:6.1f}  {100 * size / total:5.1f}%")
    print(f"{'sum'.ljust(width)}  {sum(r[1] for r in rows) / 1e6:6.1f}")


if __name__ == "__main__":
    main()
