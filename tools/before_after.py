"""The README's before/after picture: bundled samples as they arrive and as
`faceup fix` writes them, side by side (docs/before-after.jpg).

    .venv/bin/python tools/before_after.py
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from faceup import pipeline

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ["astronaut-turned-90.jpg", "cameraman-upside-down.png"]
SIDE = 220


def tile(img: Image.Image) -> Image.Image:
    return ImageOps.pad(img.convert("RGB"), (SIDE, SIDE), color="white")


def main() -> None:
    from faceup import imageio

    rows = []
    for name in SAMPLES:
        data = (ROOT / "src" / "faceup" / "samples" / name).read_bytes()
        before = imageio.read(data).image
        fixed = pipeline.fix(data, pipeline.Options(format="png"))
        after = Image.open(io.BytesIO(fixed.data))
        rows.append((tile(before), tile(after), fixed.prediction))
    gap, head = 12, 28
    sheet = Image.new("RGB", (2 * SIDE + 3 * gap, head + len(rows) * (SIDE + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 8), "as it arrives", fill="black")
    draw.text((2 * gap + SIDE, 8), "after faceup fix", fill="black")
    for i, (b, a, _) in enumerate(rows):
        y = head + i * (SIDE + gap)
        sheet.paste(b, (gap, y))
        sheet.paste(a, (2 * gap + SIDE, y))
    out = ROOT / "docs" / "before-after.jpg"
    sheet.save(out, quality=85)
    print(out, [f"{p.rotation} ({p.confidence:.3f})" for *_, p in rows])


if __name__ == "__main__":
    main()
