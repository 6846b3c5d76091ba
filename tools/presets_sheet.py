"""docs/presets.png: every background preset on one portrait (scikit-image's
astronaut, NASA, public domain), with its name.

    .venv/bin/python tools/presets_sheet.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw
from skimage import data

from faceup import background, presets

TILE = 256


def main() -> None:
    portrait = Image.fromarray(data.astronaut()).resize((TILE, TILE), Image.Resampling.LANCZOS)
    mask = background.person_mask(portrait)
    names = list(presets.NAMES)
    cols = 4
    rows = -(-len(names) // cols)
    sheet = Image.new("RGB", (cols * TILE, rows * (TILE + 22)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(names):
        out = background.compose(portrait, mask, background.Replacement(preset=name))
        x, y = (i % cols) * TILE, (i // cols) * (TILE + 22)
        sheet.paste(out, (x, y))
        draw.text((x + 6, y + TILE + 4), name, fill="black")
    dest = Path(__file__).resolve().parents[1] / "docs" / "presets.jpg"
    sheet.save(dest, quality=85, optimize=True)
    print(dest)


if __name__ == "__main__":
    main()
