"""Peak memory (RSS) of whole processes, in one table: `faceup predict` on a
96 MP picture of every format, `faceup background --preset` on a 24 MP picture
and with a 96 MP background picture, and a server's RSS while 16 clients send
such pictures at once (its bound: `inference_threads` pictures decoded at a
time, each within the pixel budget, plus the uploads held).

    .venv/bin/python benchmarks/memory.py [--side 12000x8000] [--clients 16]

The pictures are made here (flat colour and a band, so that a 96 MP file is
small: the cost is in decoding, not in reading). Each `faceup` row is one
process, measured by GNU time's maximum resident set size (/usr/bin/time,
Debian's `time`); the server row samples /proc/PID/status
(VmHWM, the high-water mark) after the burst.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

BIN = Path(sys.executable).parent
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}


def picture(size: tuple[int, int]) -> Image.Image:
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = 200
    a[h // 3: h // 2] = (30, 90, 160)
    return Image.fromarray(a)


def save(img: Image.Image, path: Path, fmt: str) -> Path:
    kw = {"WEBP": {"lossless": True, "quality": 0}, "JPEG": {"quality": 90}, "TIFF": {"compression": "tiff_deflate"},
          "PNG": {"compress_level": 6}}.get(fmt, {})
    img.save(path, fmt, **kw)
    return path


def peak_mb(cmd: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit code) of one command, measured by GNU time
    (a small process: a child forked from this one would inherit its peak)."""
    t = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    return int(res.stderr.strip().splitlines()[-1]) / 1024, time.perf_counter() - t, res.returncode


def server_peak(files: list[Path], clients: int) -> tuple[float, float, str]:
    import httpx
    from load import serve  # the load benchmark's: a server on a free port, answering /health

    proc, url = serve(env={"FACEUP_MAX_UPLOAD_BYTES": str(64 << 20)})
    try:
        idle = _vm(proc.pid, "VmRSS")
        codes: list[int] = []

        def post(path: Path) -> None:
            r = httpx.post(url + "/predict", files={"file": (path.name, path.read_bytes())}, timeout=600)
            codes.append(r.status_code)

        t = time.perf_counter()
        threads = [threading.Thread(target=post, args=(files[i % len(files)],)) for i in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - t
        peak = _vm(proc.pid, "VmHWM")
        return peak, seconds, f"idle {idle:.0f} MB, answers {sorted(set(codes))}"
    finally:
        proc.terminate()
        proc.wait(30)


def _vm(pid: int, key: str) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", default="12000x8000", help="the large pictures' size (96 MP)")
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args()
    w, h = (int(v) for v in args.side.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = picture((w, h))
        files = {fmt: save(big, tmp / f"big{suffix}", fmt) for fmt, suffix in FORMATS.items()}
        del big
        for fmt, path in files.items():
            mb, s, code = peak_mb([str(BIN / "faceup"), "predict", "--json", str(path)])
            rows.append((f"predict, {w}x{h} {fmt} ({path.stat().st_size // 1024:,} KB)", mb, s, code))
        side24 = save(picture((6000, 4000)), tmp / "p24.png", "PNG")
        for preset in ("paper", "studio-grey"):
            mb, s, code = peak_mb([str(BIN / "faceup"), "background", str(side24), "-o", str(tmp / "o.png"),
                                   "--preset", preset])
            rows.append((f"background --preset {preset}, 6000x4000 PNG", mb, s, code))
        small = save(picture((64, 64)), tmp / "small.png", "PNG")
        mb, s, code = peak_mb([str(BIN / "faceup"), "background", str(small), "-o", str(tmp / "o2.png"),
                               "--image", str(files["PNG"])])
        rows.append((f"background --image ({w}x{h} PNG) on 64x64", mb, s, code))
        peak, s, note = server_peak([files["WEBP"], files["PNG"]], args.clients)
        rows.append((f"server, {args.clients} clients at once, 96 MP WebP/PNG ({note})", peak, s, 0))
    print(f"command: {' '.join([Path(sys.argv[0]).name] + sys.argv[1:]) or 'memory.py'}")
    print(f"{'case':<78} {'peak RSS MB':>11} {'seconds':>8} {'exit':>5}")
    for name, mb, s, code in rows:
        print(f"{name:<78} {mb:>11.0f} {s:>8.1f} {code:>5}")


if __name__ == "__main__":
    main()
