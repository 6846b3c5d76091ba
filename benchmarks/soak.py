"""Soak test of the HTTP service: good, bad and hostile uploads for 10 minutes.

    .venv/bin/python benchmarks/soak.py [--clients 16] [--minutes 10]

Starts `faceup serve` as its own process on 127.0.0.1 (one worker) and drives it
from this process with `--clients` concurrent clients (asyncio + httpx). Each
request is drawn from a fixed mix: good pictures in several formats to /fix,
/predict, /analyze and /background; bad ones (empty, truncated, text, a PNG
bomb, a JPEG that claims 9000x9000, a damaged TIFF); hostile ones (a 60-frame
2000x2000 GIF, a long `fill=`, a chunked upload past the limit, a wrong API key
is not used: the server runs without one). Prints the requests, the answers by
status, p50/p99 latency per kind, and the server's RSS after the first minute,
at the middle and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np
from load import serve
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "faceup" / "samples"
UPLOAD_LIMIT = 20 << 20


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024
    return float("nan")


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def requests_mix() -> list[tuple[str, str, str, dict, dict]]:
    """(kind, what, endpoint, files, form) tuples; drawn with replacement."""
    photo = Image.open(SAMPLES / "astronaut-turned-90.jpg").convert("RGB")
    small = photo.resize((256, 256))
    frames = [Image.new("P", (2000, 2000), i % 200) for i in range(60)]
    gif = _save(frames[0], "GIF", save_all=True, append_images=frames[1:])
    del frames
    tif = _save(small, "TIFF", save_all=True, append_images=[small, small])
    bomb_ihdr = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (60000).to_bytes(4, "big") * 2 + b"\x08\x00\x00\x00\x00")
    liar = bytearray(_save(small, "JPEG"))
    sof = liar.find(b"\xff\xc0")
    liar[sof + 5:sof + 9] = (9000).to_bytes(2, "big") * 2
    good = [("jpg", _save(photo, "JPEG", quality=90)), ("png", _save(small, "PNG")), ("webp", _save(small, "WEBP")),
            ("heic", (SAMPLES / "chelsea-turned-270.heic").read_bytes()), ("tif", _save(small, "TIFF"))]
    mix = []
    for name, data in good:
        mix += [("good", f"/fix {name}", "/fix", {"file": (f"in.{name}", data)}, {}),
                ("good", f"/predict {name}", "/predict", {"file": (f"in.{name}", data)}, {})]
    mix += [("good", "/analyze jpg", "/analyze", {"file": ("in.jpg", good[0][1])}, {}),
            ("good", "/background jpg", "/background", {"file": ("in.jpg", good[0][1])}, {"color": "white"}),
            ("good", "/fix --fine jpg", "/fix", {"file": ("照片.jpg", good[0][1])}, {"fine": "true"})]
    mix += [("bad", "empty", "/fix", {"file": ("e.jpg", b"")}, {}),
            ("bad", "truncated", "/fix", {"file": ("t.jpg", good[0][1][:5000])}, {}),
            ("bad", "text", "/predict", {"file": ("t.jpg", b"hello " * 100)}, {}),
            ("bad", "png bomb header", "/fix", {"file": ("b.png", bomb_ihdr)}, {}),
            ("bad", "jpeg claims 9000x9000", "/fix", {"file": ("l.jpg", bytes(liar))}, {}),
            ("bad", "damaged tiff pages", "/fix", {"file": ("d.tif", tif[: len(tif) * 2 // 3])}, {})]
    mix += [("hostile", "60-frame 2000x2000 gif", "/fix", {"file": ("a.gif", gif)}, {}),
            ("hostile", "100 KB fill", "/fix", {"file": ("in.jpg", good[0][1])},
             {"fine": "true", "expand": "true", "fill": "x" * 100_000}),
            ("hostile", "chunked past the limit", "CHUNKED", {}, {})]
    return mix


async def chunked(client: httpx.AsyncClient, url: str) -> httpx.Response:
    async def body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n\r\n"
        for _ in range((3 * UPLOAD_LIMIT) // 65536):
            yield b"\xff" * 65536
    return await client.post(url + "/fix", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"})


async def worker(url: str, mix, stop: float, rng: random.Random, log: list) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        while time.perf_counter() < stop:
            kind, what, endpoint, files, form = rng.choice(mix)
            t0 = time.perf_counter()
            try:
                if endpoint == "CHUNKED":
                    r = await chunked(client, url)
                else:
                    r = await client.post(url + endpoint, files=files, data=form)
                status = str(r.status_code)
            except httpx.HTTPError as exc:  # the server may close a refused chunked upload mid-way
                status = type(exc).__name__
            log.append((kind, what, status, time.perf_counter() - t0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=10)
    args = ap.parse_args()

    server, url = serve(env={"FACEUP_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)})
    rss: dict[str, float] = {}
    log: list = []
    try:
        rss["idle"] = rss_mb(server.pid)
        mix = requests_mix()
        seconds = args.minutes * 60
        t0 = time.perf_counter()

        async def run() -> None:
            stop = t0 + seconds

            async def sample() -> None:
                for label, at in (("after 1 min", min(60, seconds / 10)), ("middle", seconds / 2)):
                    await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
                    rss[label] = rss_mb(server.pid)

            await asyncio.gather(sample(), *(worker(url, mix, stop, random.Random(i), log)
                                             for i in range(args.clients)))

        asyncio.run(run())
        elapsed = time.perf_counter() - t0
        time.sleep(1)
        rss["end"] = rss_mb(server.pid)
        alive = httpx.get(url + "/health", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(10)

    by_status = Counter(status for _, _, status, _ in log)
    print(f"command: python benchmarks/soak.py --clients {args.clients} --minutes {args.minutes:g}")
    print(f"{len(log):,} requests in {elapsed:.0f} s ({len(log) / elapsed:.1f}/s); server alive at the end: {alive}")
    print("answers by status: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(by_status.items())))
    print(f"5xx: {sum(v for k, v in by_status.items() if k.startswith('5'))}")
    print()
    print("| kind | requests | statuses | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    kinds = defaultdict(list)
    for kind, what, status, sec in log:
        kinds[kind].append((status, sec))
    for kind, rows in kinds.items():
        ms = np.array([s for _, s in rows]) * 1000
        st = Counter(s for s, _ in rows)
        print(f"| {kind} | {len(rows):,} | {', '.join(f'{k}: {v}' for k, v in sorted(st.items()))} | "
              f"{np.percentile(ms, 50):.0f} | {np.percentile(ms, 99):.0f} |")
    print()
    print("| server RSS MB | idle | after 1 min | middle | end | end / after 1 min |")
    print("|---|---|---|---|---|---|")
    print(f"| one worker | {rss['idle']:.0f} | {rss['after 1 min']:.0f} | {rss['middle']:.0f} | {rss['end']:.0f} | "
          f"{rss['end'] / rss['after 1 min']:.2f} |")


if __name__ == "__main__":
    main()
