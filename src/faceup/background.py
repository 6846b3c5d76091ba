"""Replace what is behind the people in an upright picture: a colour, another
picture, a blur of the picture itself, or transparency (PNG/WebP/TIFF with alpha).

The person mask comes from the segmentation model (models.segmentation); its edges
are soft (probabilities), so hair and shoulders blend instead of being cut out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageColor, ImageFilter, ImageOps

from faceup.errors import BadOptionError, FaceupError, shown

#: Formats that keep an alpha channel (for --transparent).
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")

#: Default blur radius, as a fraction of the picture's longer side.
DEFAULT_BLUR_SHARE = 0.02


@dataclass(frozen=True)
class Replacement:
    """Exactly one of: color (white, #203040), image (the bytes of a picture),
    blur (radius in pixels; 0 = a default for the picture's size), preset (a
    named generated background, see faceup.presets), transparent."""

    color: str | None = None
    image: bytes | None = None
    blur: float | None = None
    transparent: bool = False
    #: A named generated background (faceup.presets): "rainbow", "gradient:top=#fff,bottom=#234", "auto".
    preset: str | None = None

    def __post_init__(self) -> None:
        given = [n for n, v in (("color", self.color), ("image", self.image), ("blur", self.blur),
                                ("transparent", self.transparent or None), ("preset", self.preset)) if v is not None]
        if len(given) != 1:
            raise BadOptionError("give exactly one background: a colour, a picture, a blur radius, a preset or "
                                 "transparent" + (f" (got {', '.join(given)})" if given else ""))
        if self.preset is not None:
            from faceup import presets

            presets.parse(self.preset)
        if self.color is not None:
            try:
                ImageColor.getrgb(self.color)
            except ValueError:
                raise BadOptionError(f"background colour must be a colour name or #rrggbb, not {shown(self.color)!r}") from None
        if self.blur is not None and not 0 <= self.blur <= 500:
            raise BadOptionError(f"blur radius must be between 0 and 500 pixels, not {self.blur}")
        if self.image is not None and not self.image:
            raise BadOptionError("the background picture is empty")


def output_format(requested: str | None, source_format: str, how: Replacement) -> str:
    """The format to write: the one asked for, else the source's (PNG when the
    background is transparent and the source's format has no alpha channel)."""
    from faceup import imageio

    fmt = imageio.normalize_format(requested)
    if how.transparent and fmt is not None and fmt not in ALPHA_FORMATS:
        raise BadOptionError(f"a transparent background needs {', '.join(ALPHA_FORMATS)} output, not {fmt}")
    if fmt is None:
        fmt = "PNG" if how.transparent and source_format not in ALPHA_FORMATS else source_format
    return fmt


#: Ways of reading the person mask (benchmarks/masks.py compares them): one pass
#: over the whole picture; the mean with its mirror image; a second pass on a
#: square around the people found by the first (the model was made for a person
#: close to the camera, and people in a whole photo are small); both.
MASK_VARIANTS = ("one-pass", "mirror", "zoom", "zoom-mirror")
#: Masks are read on a copy at most this many pixels on a side.
MASK_SIDE = 1024
DEFAULT_MASK = "zoom-mirror"  # chosen on the validation half of segmentation/people (benchmarks/masks.py)


def person_mask(image: Image.Image, variant: str = DEFAULT_MASK) -> Image.Image:
    """Mode "L" mask at the picture's size: 255 where a person is, soft edges."""
    from faceup.models import get
    from faceup.models.segmentation import SegmentationModel

    model = get(SegmentationModel)
    rgb = image.convert("RGB")
    if max(rgb.size) > MASK_SIDE:  # the model sees 256 px: work small, and scale the answer once
        rgb.thumbnail((MASK_SIDE, MASK_SIDE), Image.Resampling.BILINEAR)
    mirror = variant.endswith("mirror")

    def read(img: Image.Image) -> np.ndarray:
        m = np.asarray(model.mask(img), dtype=np.float32)
        if mirror:
            m = (m + np.asarray(model.mask(ImageOps.mirror(img)), dtype=np.float32)[:, ::-1]) / 2
        return m

    mask = read(rgb)
    if variant.startswith("zoom"):
        mask = _zoomed(rgb, mask, read)
    out = Image.fromarray(np.clip(mask + 0.5, 0, 255).astype(np.uint8), "L")
    return out if out.size == image.size else out.resize(image.size, Image.Resampling.BILINEAR)


def _zoomed(rgb: Image.Image, mask: np.ndarray, read) -> np.ndarray:
    """A second reading on a square around what the first found (1.2 times its
    larger side), pasted over the first where the square lies in the picture."""
    ys, xs = np.nonzero(mask >= 128)
    if len(xs) == 0:
        return mask
    w, h = rgb.size
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = 1.2 * max(x1 - x0, y1 - y0)
    if side >= 0.9 * max(w, h):  # the people fill the picture already
        return mask
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = tuple(int(round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    crop = read(rgb.crop(box))  # outside the picture: black
    out = mask.copy()
    ix0, iy0, ix1, iy1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    out[iy0:iy1, ix0:ix1] = crop[iy0 - box[1]:iy1 - box[1], ix0 - box[0]:ix1 - box[0]]
    return out


def _background_picture(data: bytes, size: tuple[int, int], max_pixels: int) -> Image.Image:
    from faceup import imageio

    try:  # decoded no larger than it needs to be (a 96 MP background for a small picture)
        bg = imageio.read(data, max_pixels=max_pixels, reduce_to=max(size)).image
    except FaceupError as exc:
        raise type(exc)(f"background picture: {exc}") from None
    # cover the whole picture, centred, keeping the background's proportions
    return ImageOps.fit(bg.convert("RGB"), size, Image.Resampling.LANCZOS)


#: Generated backgrounds are drawn at most this many pixels on a side (the mask's
#: scale) and scaled up once: they are smooth, and drawn at full size their float
#: arrays cost about 100 bytes a pixel (2.4 GB for 24 MP).
PRESET_SIDE = MASK_SIDE


def _preset(spec: str, fg: Image.Image, mask: Image.Image) -> Image.Image:
    from faceup import presets

    if max(fg.size) <= PRESET_SIDE:
        return presets.render(spec, fg.size, fg, mask)
    scale = PRESET_SIDE / max(fg.size)
    small = (max(1, round(fg.width * scale)), max(1, round(fg.height * scale)))
    drawn = presets.render(spec, small, fg.resize(small, Image.Resampling.BILINEAR),
                           mask.resize(small, Image.Resampling.BILINEAR))
    return drawn.resize(fg.size, Image.Resampling.BILINEAR)


def compose(image: Image.Image, mask: Image.Image, how: Replacement, max_pixels: int = 100_000_000) -> Image.Image:
    """The upright picture with its background replaced (RGB, or RGBA when transparent)."""
    fg = image.convert("RGB")
    if how.transparent:
        out = fg.copy()
        out.putalpha(mask)
        return out
    if how.color is not None:
        bg = Image.new("RGB", fg.size, ImageColor.getrgb(how.color)[:3])
    elif how.image is not None:
        bg = _background_picture(how.image, fg.size, max_pixels)
    elif how.preset is not None:

        bg = _preset(how.preset, fg, mask)
    else:
        radius = how.blur or max(1.0, DEFAULT_BLUR_SHARE * max(fg.size))
        bg = fg.filter(ImageFilter.GaussianBlur(radius))
    return Image.composite(fg, bg, mask)


def replace(image: Image.Image, how: Replacement, max_pixels: int = 100_000_000) -> Image.Image:
    return compose(image, person_mask(image), how, max_pixels)
