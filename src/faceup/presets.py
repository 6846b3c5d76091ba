"""Named backgrounds, generated at the picture's size: `faceup background --preset
NAME[:key=value,...]`, `preset=` on POST /background, and the web page's picker.

    studio-grey   a portrait studio's grey backdrop, lit in the middle (color)
    gradient      top to bottom (top, bottom)
    sunset        warm: amber to rose to dusk
    sky           light blue to white
    rainbow       a soft diagonal rainbow (saturation, lightness)
    paper         an off-white paper with grain (color, grain)
    bokeh         out-of-focus lights on a dark ground (color, count, seed)
    auto          from the picture's own colours: a gradient of its background's
                  dominant colour, lighter above and darker below

Every preset is deterministic (the same picture size and parameters give the same
pixels) and made with numpy and Pillow alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFilter

from faceup.errors import BadOptionError, shown


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    params: dict[str, str]  # name -> default (as text)
    render: Callable[[tuple[int, int], dict[str, str]], Image.Image]


def _rgb(value: str, what: str) -> np.ndarray:
    try:
        return np.array(ImageColor.getrgb(value)[:3], dtype=np.float64)
    except ValueError:
        raise BadOptionError(f"{what} must be a colour (white, #203040), not {shown(value)!r}") from None


def _number(value: str, what: str, lo: float, hi: float) -> float:
    try:
        v = float(value)
    except ValueError:
        raise BadOptionError(f"{what} must be a number, not {shown(value)!r}") from None
    if not lo <= v <= hi:
        raise BadOptionError(f"{what} must be between {lo:g} and {hi:g}, not {v:g}")
    return v


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x and y in [0, 1] over the picture (H x W each)."""
    w, h = size
    return np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))


def _image(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")


def _vertical(size, stops: list[tuple[float, np.ndarray]]) -> np.ndarray:
    _, y = _grid(size)
    at = np.array([s for s, _ in stops])
    return np.stack([np.interp(y, at, [c[k] for _, c in stops]) for k in range(3)], axis=-1)


def studio_grey(size, p):
    x, y = _grid(size)
    base = _rgb(p["color"], "studio-grey color")
    r = np.sqrt((x - 0.5) ** 2 + ((y - 0.42) * 1.2) ** 2)
    light = 1.18 - 0.55 * np.clip(r / 0.75, 0, 1) ** 1.6
    return _image(base * light[..., None])


def gradient(size, p):
    return _image(_vertical(size, [(0.0, _rgb(p["top"], "gradient top")),
                                   (1.0, _rgb(p["bottom"], "gradient bottom"))]))


def sunset(size, _):
    return _image(_vertical(size, [(0.0, np.array([255, 196, 120.0])), (0.45, np.array([236, 128, 134.0])),
                                   (1.0, np.array([74, 58, 112.0]))]))


def sky(size, _):
    return _image(_vertical(size, [(0.0, np.array([104, 160, 222.0])), (1.0, np.array([236, 244, 250.0]))]))


def rainbow(size, p):
    x, y = _grid(size)
    sat = _number(p["saturation"], "rainbow saturation", 0, 1)
    light = _number(p["lightness"], "rainbow lightness", 0, 1)
    hue = (0.62 * x + 0.38 * y) % 1.0
    hsv = np.stack([hue * 255, np.full_like(hue, sat * 255), np.full_like(hue, light * 255)], axis=-1)
    return Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")


def paper(size, p):
    w, h = size
    base = _rgb(p["color"], "paper color")
    grain = _number(p["grain"], "paper grain", 0, 1)
    rng = np.random.default_rng(7)
    fine = rng.normal(0, 1, (h, w))
    coarse = np.asarray(Image.fromarray(((rng.normal(0, 1, (h, w)) + 4) * 32).clip(0, 255).astype(np.uint8))
                        .filter(ImageFilter.GaussianBlur(max(2, min(w, h) / 80))), dtype=np.float64) / 32 - 4
    a = base + grain * (6 * fine + 14 * coarse)[..., None]
    return _image(a)


def bokeh(size, p):
    w, h = size
    colour = _rgb(p["color"], "bokeh color")
    count = int(_number(p["count"], "bokeh count", 0, 400))
    rng = np.random.default_rng(int(_number(p["seed"], "bokeh seed", 0, 2 ** 31)))
    ground = _image(_vertical(size, [(0.0, colour * 0.35), (1.0, colour * 0.12)]))
    lights = Image.new("RGB", size)
    draw = ImageDraw.Draw(lights)
    side = min(w, h)
    for _ in range(count):
        r = side * rng.uniform(0.02, 0.09)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        tint = np.clip(colour * rng.uniform(0.6, 1.3) + rng.uniform(-40, 40, 3), 0, 255)
        level = rng.uniform(0.25, 0.7)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v * level) for v in tint))
    lights = lights.filter(ImageFilter.GaussianBlur(side / 120))
    return Image.fromarray(np.clip(np.asarray(ground, dtype=np.int16) + np.asarray(lights, dtype=np.int16),
                                   0, 255).astype(np.uint8))


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("studio-grey", "a portrait studio's grey backdrop, lit in the middle", {"color": "#8c9096"}, studio_grey),
    Preset("gradient", "a gradient from top to bottom", {"top": "#dfe7ef", "bottom": "#6f8597"}, gradient),
    Preset("sunset", "warm: amber to rose to dusk", {}, sunset),
    Preset("sky", "light blue to white", {}, sky),
    Preset("rainbow", "a soft diagonal rainbow", {"saturation": "0.35", "lightness": "0.95"}, rainbow),
    Preset("paper", "an off-white paper with grain", {"color": "#f1ece2", "grain": "0.5"}, paper),
    Preset("bokeh", "out-of-focus lights on a dark ground", {"color": "#f0b060", "count": "40", "seed": "1"}, bokeh),
)}

#: Every name `--preset` takes.
NAMES = (*PRESETS, "auto")


def parse(spec: str) -> tuple[str, dict[str, str]]:
    """"NAME" or "NAME:key=value,key=value" -> (name, parameters); checked."""
    name, _, rest = spec.strip().partition(":")
    if name not in NAMES:
        raise BadOptionError(f"unknown preset {shown(name)!r}; one of {', '.join(NAMES)}")
    params = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        allowed = PRESETS[name].params if name in PRESETS else {}
        if not eq or key not in allowed:
            raise BadOptionError(f"preset {name} takes " + (", ".join(f"{k}=..." for k in allowed) or "no parameters")
                                 + f", not {shown(item)!r}")
        params[key] = value
    if name in PRESETS:  # every value checked now, before any work
        PRESETS[name].render((2, 2), {**PRESETS[name].params, **params})
    return name, params


def render(spec: str, size: tuple[int, int], picture: Image.Image | None = None,
           mask: Image.Image | None = None) -> Image.Image:
    """The preset's background at `size` (RGB). `auto` reads the colours of
    `picture` where `mask` (the person) is low."""
    name, params = parse(spec)
    if name == "auto":
        return auto(size, picture, mask)
    preset = PRESETS[name]
    return preset.render(size, {**preset.params, **params})


def auto(size: tuple[int, int], picture: Image.Image | None, mask: Image.Image | None) -> Image.Image:
    """A gradient of the dominant colour of the picture's background (where the
    person mask is low), softened: lighter above, darker below."""
    if picture is None:
        return render("studio-grey", size)
    small = picture.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    px = np.asarray(small, dtype=np.float64).reshape(-1, 3)
    if mask is not None:
        m = np.asarray(mask.convert("L").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float64).ravel()
        if (m < 128).sum() >= 64:
            px = px[m < 128]
    # the most common colour, in coarse bins, then the mean of that bin
    bins = (px // 32).astype(int)
    keys = bins[:, 0] * 64 + bins[:, 1] * 8 + bins[:, 2]
    top = np.bincount(keys).argmax()
    colour = px[keys == top].mean(axis=0)
    soft = 0.65 * colour + 0.35 * np.array([128.0, 128.0, 128.0])  # not as loud as the photo itself
    return _image(_vertical(size, [(0.0, np.clip(soft * 1.25 + 20, 0, 255)), (1.0, soft * 0.7)]))
