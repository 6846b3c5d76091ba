"""Make the bundled sample pictures (src/faceup/samples) from scikit-image's data.

Licences (scikit-image's data README): astronaut (NASA, public domain), camera,
chelsea, coffee (CC0), rocket (public domain). Run with the test extra installed:
    .venv/bin/python tools/make_samples.py
"""

from pathlib import Path

import pillow_heif
from PIL import Image
from skimage import data

pillow_heif.register_heif_opener()
T = Image.Transpose
OUT = Path(__file__).resolve().parents[1] / "src" / "faceup" / "samples"


def small(arr, side=320):
    img = Image.fromarray(arr)
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    astro = small(data.astronaut())
    astro.transpose(T.ROTATE_270).save(OUT / "astronaut-turned-90.jpg", quality=88)
    # Stored turned 90 degrees counter-clockwise, with EXIF Orientation 6 that
    # shows it upright: faceup must leave it upright (and reset the tag).
    exif = Image.Exif()
    exif[0x0112] = 6
    astro.transpose(T.ROTATE_90).save(OUT / "astronaut-exif-6.jpg", quality=88, exif=exif.tobytes())
    small(data.camera()).transpose(T.ROTATE_180).save(OUT / "cameraman-upside-down.png", optimize=True)
    small(data.chelsea()).transpose(T.ROTATE_90).save(OUT / "chelsea-turned-270.heic", quality=80)
    small(data.coffee()).save(OUT / "coffee-upright.webp", quality=85)
    small(data.rocket()).transpose(T.ROTATE_270).save(OUT / "rocket-turned-90.jpg", quality=88)
    for p in sorted(OUT.iterdir()):
        print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
