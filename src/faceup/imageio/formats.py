"""The formats faceup reads and writes, the Picture it passes along, and the
quarter-turn bookkeeping (EXIF orientations as transposes)."""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from faceup.errors import (
    UnfaithfulWriteError,
    UnsupportedFormatError,
    shown,
)

_HEIF_LOCK = threading.Lock()
_heif_writes: bool | None = None


def heif_writes() -> bool:
    """Register the HEIC/HEIF plugin with Pillow (on first need: its import is a
    tenth of faceup's start-up, which a folder of JPEGs should not pay) and say
    whether it also writes them: the heic extra (pillow-heif) reads and writes,
    the core install (pi-heif) reads."""
    global _heif_writes
    with _HEIF_LOCK:
        if _heif_writes is None:
            try:
                import pillow_heif as heif

                writes = True
            except ImportError:
                import pi_heif as heif

                writes = False
            heif.register_heif_opener()
            _heif_writes = writes
    return _heif_writes

T = Image.Transpose

#: Formats faceup reads and writes (Pillow's names). MPO is the multi-picture
#: JPEG some cameras write; it is read as JPEG.
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF", "AVIF")
FORMAT_ALIASES = {"JPG": "JPEG", "MPO": "JPEG", "TIF": "TIFF", "HEIC": "HEIF"}
SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "HEIF": ".heic",
          "AVIF": ".avif"}

#: Pictures above this many decoded pixels are refused (a decompression bomb
#: guard). Every frame of an animation and every page of a TIFF counts.
DEFAULT_MAX_PIXELS = 100_000_000

#: Formats whose every frame or page faceup keeps and turns (Pillow's names).
MULTI_FRAME_FORMATS = ("GIF", "WEBP", "PNG", "TIFF", "HEIF")

#: TIFF tags that describe the stored pixels (size, layout, strips, tiles,
#: compression...). They belong to the file that is written, never copied from
#: the input: copied, they describe the old layout (a turned non-square TIFF
#: would keep the old width and height).
TIFF_LAYOUT_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 284, 288, 289, 290, 291, 292, 293,
    317, 320, 322, 323, 324, 325, 330, 332, 338, 339, 340, 341, 347, 530, 531, 532, 34675,
})

ORIENTATION_TAG = 0x0112

#: EXIF Orientation value -> the transpose that shows the stored pixels upright.
EXIF_TRANSPOSE: dict[int, T | None] = {
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_270,
    7: T.TRANSVERSE,
    8: T.ROTATE_90,
}


@dataclass
class Picture:
    """A picture as displayed (EXIF orientation applied) plus what is needed to write it back."""

    image: Image.Image
    format: str
    exif_orientation: int = 1
    data: bytes | None = None
    icc_profile: bytes | None = None
    exif: Image.Exif | None = None
    quality: int | None = None
    subsampling: int = -1
    reduced: bool = False
    #: Frames of an animation or pages of a TIFF/HEIF (when read with keep_frames;
    #: only the first is in `image`: the rest are decoded one at a time on writing).
    n_frames: int = 1
    #: Each frame's duration in ms (animations), and the loop count.
    durations: list[int] | None = None
    loop: int | None = None
    #: Why the decoded pixels hold less than the file (e.g. "16-bit colour PNG"):
    #: such a picture can be judged but not written back faithfully.
    narrowed: str | None = None
    #: why this picture cannot be written back faithfully at all (an animated
    #: AVIF: faceup reads its first frame and does not write AVIF animations)
    unwritable: str | None = None
    #: The displayed size at full resolution (`image` may be smaller when `reduced`).
    full_size: tuple[int, int] | None = None
    #: What the models see (`eight_bit(image)`) and the classifier's input, when
    #: made ahead by the pipeline (in a decoding thread).
    view: Image.Image | None = None
    square: np.ndarray | None = None
    #: The XMP packet (JPEG, PNG, WebP, TIFF, AVIF), written back with its
    #: tiff:Orientation kept in step with the EXIF tag.
    xmp: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def format_for_suffix(suffix: str) -> str | None:
    """The format a file name's suffix asks for (".jpeg" -> "JPEG"), or None if unknown."""
    up = suffix.lstrip(".").upper()
    up = {"JPE": "JPEG", "JFIF": "JPEG", "HEIF": "HEIF", "HIF": "HEIF"}.get(up, FORMAT_ALIASES.get(up, up))
    return up if up in SUPPORTED_FORMATS and up != "MPO" else None


def normalize_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    up = fmt.strip().upper()
    up = FORMAT_ALIASES.get(up, up)
    if up not in SUPPORTED_FORMATS:
        raise UnsupportedFormatError(f"cannot write {shown(fmt)!r}; use one of {', '.join(SUPPORTED_FORMATS)}")
    return up


def output_name(name: str, tag: str, fmt: str | None = None) -> str:
    """The one place faceup names what it writes beside an input: NAME.TAG.EXT
    ("scan.jpg" -> "scan.upright.jpg"), EXT the input's own or `fmt`'s."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    return f"{stem}.{tag}{SUFFIX[normalize_format(fmt)] if fmt else ('.' + ext if ext else '')}"


def in_format(name: str, fmt: str | None) -> str:
    """The name of an input mirrored into an output tree: the same name, with
    `fmt`'s extension when a format is asked for."""
    if not fmt:
        return name
    stem, dot, _ = name.rpartition(".")
    return f"{stem if dot and stem else name}{SUFFIX[normalize_format(fmt)]}"


def _compose(first: T | None, then: T | None) -> T | None:
    """The single transpose equal to applying `first`, then `then`."""
    probe = Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3))

    def apply(img: Image.Image, op: T | None) -> Image.Image:
        return img if op is None else img.transpose(op)

    target = np.asarray(apply(apply(probe, first), then))
    for op in [None, *T]:
        got = np.asarray(apply(probe, op))
        if got.shape == target.shape and np.array_equal(got, target):
            return op
    raise AssertionError("the dihedral group is closed")  # pragma: no cover


def orientation_value(exif_orientation: int, turn: T | None) -> int:
    """The EXIF Orientation value that shows the stored pixels as the picture
    displayed now (`exif_orientation` applied) and then turned by `turn`."""
    full = _compose(EXIF_TRANSPOSE.get(exif_orientation), turn)
    return next(v for v, op in EXIF_TRANSPOSE.items() if op == full)


def _turned_size(size: tuple[int, int], turn: T | None) -> tuple[int, int]:
    swaps = turn in (T.ROTATE_90, T.ROTATE_270, T.TRANSPOSE, T.TRANSVERSE)
    return (size[1], size[0]) if swaps else size


def _verify(blob: bytes, fmt: str, size: tuple[int, int], n_frames: int) -> None:
    """Check what is about to be written: it opens as `fmt`, at `size`, with
    `n_frames` frames or pages, and (but for JPEG, written by libjpeg itself)
    its first frame decodes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            out = Image.open(io.BytesIO(blob))
            got_fmt = FORMAT_ALIASES.get(out.format or "", out.format or "")
            got_frames = getattr(out, "n_frames", 1) if n_frames > 1 else 1
            if fmt != "JPEG":
                out.load()
    except Exception as exc:  # noqa: BLE001
        raise UnfaithfulWriteError(f"the {fmt} faceup wrote does not decode ({shown(str(exc), 120)}); "
                                   "nothing was written") from None
    # GIF, APNG and WebP writers merge a frame identical to the one before into
    # it (its duration added): fewer frames, the same animation
    frames_ok = got_frames == n_frames or (fmt in ("GIF", "PNG", "WEBP") and 1 <= got_frames <= n_frames)
    if got_fmt != fmt or out.size != size or not frames_ok:
        raise UnfaithfulWriteError(
            f"the {fmt} faceup wrote came out as {got_fmt} {out.size[0]}x{out.size[1]} with {got_frames} frame(s), "
            f"not {size[0]}x{size[1]} with {n_frames}; nothing was written")
