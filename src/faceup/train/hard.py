"""Pictures of the kinds faceup was found failing on, made from upright
faces and face-free scenes: small faces on a scene, a grey high-contrast portrait
inside a circle, a cover with a face and lines of text, a painted group.

benchmarks/face_evidence.py measures the cascade on them (made from validation or
held-out parts), and `faceup train --hard N` adds N of them (made from training
parts) to the orientation classifier's samples. No torch here.

Each maker takes `scene()` and `face()`: callables that open the next background
and the next face picture, so the caller decides where they come from; and
optionally `boxes`, a list to which it appends the box [x0, y0, x1, y1] of every
face picture it placed (for detector recall: benchmarks/detection.py --kinds).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

Opener = Callable[[], Image.Image]

WORDS = ("THE", "NIGHT", "LOVE", "SONGS", "OF", "SUMMER", "GREATEST", "HITS", "LIVE", "AT", "RIVER",
         "VOLUME", "TWO", "BLUE", "HOUSE", "STORY", "A", "NOVEL", "EDITION", "ORCHESTRA")


def paste_face(bg: Image.Image, face: Image.Image, fw: int, rng: random.Random) -> tuple[int, int, int, int]:
    """The face squashed to fw x fw, pasted with a soft oval edge at a random place; its box."""
    face = face.convert("RGB").resize((fw, fw))
    mask = Image.new("L", (fw, fw), 0)
    ImageDraw.Draw(mask).ellipse((fw * 0.08, 0, fw * 0.92, fw), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, fw * 0.05)))
    x, y = rng.randint(0, bg.width - fw), rng.randint(0, bg.height - fw)
    bg.paste(face, (x, y), mask)
    return (x, y, x + fw, y + fw)


def _background(scene: Opener, size: tuple[int, int], rng: random.Random) -> Image.Image:
    if rng.random() < 0.5:
        return scene().convert("RGB").resize(size)
    return Image.new("RGB", size, tuple(rng.randint(0, 255) for _ in range(3)))


def small(scene: Opener, face: Opener, rng: random.Random, boxes: list | None = None) -> Image.Image:
    """1-3 faces 18-40 px wide on a scene of 480x360."""
    boxes = [] if boxes is None else boxes
    bg = scene().convert("RGB").resize(rng.choice([(480, 360), (360, 480)]))
    for _ in range(rng.choice([1, 2, 3])):
        boxes.append(paste_face(bg, face(), rng.randint(18, 40), rng))
    return bg


def circle(scene: Opener, face: Opener, rng: random.Random, boxes: list | None = None) -> Image.Image:
    """A grey, high-contrast picture of a person inside a circle of 60-150 px, on a
    plain or scene background of 400-512 px."""
    boxes = [] if boxes is None else boxes
    side = rng.randint(400, 512)
    bg = _background(scene, (side, side), rng)
    d = rng.randint(60, 150)
    pic = face().convert("L")
    pic = ImageOps.autocontrast(pic, cutoff=2)
    gamma = rng.uniform(0.6, 1.6)
    pic = pic.point(lambda v: 255 * (v / 255) ** gamma)
    pic = ImageOps.fit(pic, (d, d)).convert("RGB")
    mask = Image.new("L", (d, d), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, d - 1, d - 1), fill=255)
    x, y = rng.randint(0, side - d), rng.randint(0, side - d)
    ImageDraw.Draw(bg).ellipse((x - 3, y - 3, x + d + 2, y + d + 2), outline=(20, 20, 20), width=3)
    bg.paste(pic, (x, y), mask)
    boxes.append((x, y, x + d, y + d))
    return bg


def cover(scene: Opener, face: Opener, rng: random.Random, boxes: list | None = None) -> Image.Image:
    """A face picture (80-160 px) in the lower part and 2-4 lines of upright text
    above, on a flat or (blurred) scene background: an album or book cover."""
    boxes = [] if boxes is None else boxes
    side = rng.randint(360, 500)
    bg = _background(scene, (side, side), rng)
    if rng.random() < 0.5:
        bg = bg.filter(ImageFilter.GaussianBlur(6))
    fw = rng.randint(80, 160)
    pic = ImageOps.fit(face().convert("RGB"), (fw, fw))
    x, y = rng.randint(0, side - fw), rng.randint(side // 3, side - fw)
    bg.paste(pic, (x, y))
    boxes.append((x, y, x + fw, y + fw))
    draw = ImageDraw.Draw(bg)
    y = rng.randint(5, 30)
    for _ in range(rng.randint(2, 4)):
        font = ImageFont.load_default(size=rng.randint(18, 40))
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        draw.text((rng.randint(5, side // 4), y), text, font=font, fill=colour)
        y += int(font.size * 1.3)
    return bg


def painted(scene: Opener, face: Opener, rng: random.Random, boxes: list | None = None) -> Image.Image:
    """2-4 faces of 40-90 px on a scene, painted (mode filter, posterised, smoothed)."""
    boxes = [] if boxes is None else boxes
    bg = scene().convert("RGB").resize(rng.choice([(400, 300), (300, 400), (360, 360)]))
    for _ in range(rng.randint(2, 4)):
        boxes.append(paste_face(bg, face(), rng.randint(40, 90), rng))
    bg = bg.filter(ImageFilter.ModeFilter(rng.choice([3, 5])))
    return ImageOps.posterize(bg, rng.choice([3, 4])).filter(ImageFilter.SMOOTH_MORE)


MAKERS: dict[str, Callable[..., Image.Image]] = {
    "small": small, "circle": circle, "cover": cover, "painted": painted}
#: The kinds whose "face" is a picture of a person (a video frame) rather than a face crop.
PERSON_KINDS = ("circle",)


def measuring_sources(root: Path, split: str) -> tuple[list[Path], list[Path], list[Path]]:
    """Scenes, face pictures and pictures of people to make the kinds from when
    measuring: split "val", the validation parts (scenes; UTKFace and web faces;
    video frames); "test", held-out scenes and LFW faces (for both)."""
    from faceup import datasets

    scenes = datasets.scenes(root, split)
    if split == "test":
        return scenes, datasets.lfw(root), datasets.lfw(root)
    faces = datasets.utkface(root, "val") + [p for p, _ in datasets.gender_web(root, "val")]
    return scenes, faces, datasets.frames68(root, "val")


def make(kind: str, sources: tuple[list[Path], list[Path], list[Path]], rng: random.Random,
         boxes: list | None = None) -> Image.Image:
    """A picture of `kind` from randomly drawn pictures of `sources` (measuring_sources)."""
    scenes, faces, people = sources
    return MAKERS[kind](opener(scenes, rng), opener(people if kind in PERSON_KINDS else faces, rng), rng, boxes)


def opener(paths: list[Path], rng: random.Random) -> Opener:
    """An Opener of a randomly drawn picture of `paths` at each call."""
    return lambda: Image.open(rng.choice(paths))
