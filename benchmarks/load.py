"""Load benchmark for the HTTP service: 16 concurrent clients for 30 seconds.

    .venv/bin/python benchmarks/load.py [--clients 16] [--seconds 30] [--endpoint /fix]

Starts `faceup serve` as its own process on 127.0.0.1 and drives it from this
process (asyncio + httpx). Prints requests/s, p50/p99 latency, errors and the
server's peak RSS (VmHWM of the server process and its workers).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "faceup" / "samples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(*flags: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`faceup serve` on a free port of 127.0.0.1, started and answering /health."""
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "faceup")
    server = subprocess.Popen([exe, "serve", "--port", str(port), *flags], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return server, url


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process and its children (VmHWM), in MB."""
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    worst = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    kb = float(line.split()[1])
                    worst = max(worst, kb / 1024)
                    total += kb / 1024
        except OSError:
            pass
    return worst


async def client(url: str, payload: bytes, stop: float, lat: list[float], errors: list[str]) -> None:
    async with httpx.AsyncClient(timeout=60) as c:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                r = await c.post(url, files={"file": ("in.jpg", payload, "image/jpeg")})
                if r.status_code != 200:
                    errors.append(str(r.status_code))
                    continue
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            lat.append(time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--endpoint", default="/fix")
    args = ap.parse_args()

    server, base = serve("--workers", str(args.workers))
    try:
        img = Image.open(SAMPLES / "astronaut-turned-90.jpg")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        payload = buf.getvalue()
        rss_idle = peak_rss_mb(server.pid)
        lat: list[float] = []
        errors: list[str] = []
        t0 = time.perf_counter()
        stop = t0 + args.seconds

        async def run() -> None:
            await asyncio.gather(*(client(base + args.endpoint, payload, stop, lat, errors) for _ in range(args.clients)))

        asyncio.run(run())
        elapsed = time.perf_counter() - t0
        rss_peak = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    ms = np.array(lat) * 1000
    p50, p99 = (np.percentile(ms, 50), np.percentile(ms, 99)) if len(ms) else (float("nan"),) * 2
    print(f"command: python benchmarks/load.py --clients {args.clients} --seconds {args.seconds:g} "
          f"--workers {args.workers} --endpoint {args.endpoint}")
    print(f"picture: {img.size[0]}x{img.size[1]} JPEG, {len(payload):,} bytes")
    print("| clients | seconds | requests | requests/s | p50 ms | p99 ms | p99/p50 | errors | peak RSS per worker MB (idle) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.clients} | {elapsed:.1f} | {len(ms)} | {len(ms) / elapsed:.1f} | {p50:.0f} | {p99:.0f} | "
          f"{p99 / p50:.2f} | {len(errors)} | {rss_peak:.0f} ({rss_idle:.0f}) |")


if __name__ == "__main__":
    main()
