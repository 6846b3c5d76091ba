"""What one hostile upload costs the server in memory.

    .venv/bin/python benchmarks/hostile_memory.py

For each file, a fresh `faceup serve` (one worker) on 127.0.0.1 gets one POST
/fix; the table gives the answer and how far the server's peak RSS (VmHWM) rose
above its idle peak. Animations are made here: 60 frames of 2000x2000 (240 MP,
above the 100 MP budget) and 24 frames of 2000x2000 (96 MP, within it), as GIF,
APNG and animated WebP, each frame different so that none is merged.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from load import serve
from PIL import Image


def vm(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / 1024
    return float("nan")


def animation(n: int, side: int, fmt: str) -> bytes:
    frames = []
    for i in range(n):
        if fmt == "GIF":
            im = Image.new("P", (side, side), i % 200)
            im.putpalette([v for g in range(256) for v in (g, g, g)])
        else:
            im = Image.new("RGB", (side, side), (4 * i % 256, 90, 160))
        frames.append(im)
    buf = io.BytesIO()
    kw = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=40, **kw)
    return buf.getvalue()


def main() -> None:
    cases = [(f"{n} frames of 2000x2000 {fmt}", animation(n, 2000, fmt))
             for n in (60, 24) for fmt in ("GIF", "PNG", "WEBP")]
    print("command: python benchmarks/hostile_memory.py")
    print("| upload | bytes | status | server peak RSS rise MB |")
    print("|---|---|---|---|")
    for name, data in cases:
        server, url = serve()
        try:
            idle = vm(server.pid, "VmHWM")
            r = httpx.post(url + "/fix", files={"file": ("upload", data)}, timeout=600)
            rise = vm(server.pid, "VmHWM") - idle
        finally:
            server.terminate()
            server.wait(10)
        print(f"| {name} | {len(data):,} | {r.status_code} | {rise:.0f} |")


if __name__ == "__main__":
    main()
