"""Read any picture as it is displayed; write it back turned, keeping what it had.

- Formats are recognised by content (Pillow's own sniffing, pillow-heif for
  HEIC/HEIF), never by file name.
- The EXIF Orientation tag (all 8 values, mirrored ones included) is applied on
  reading: every answer faceup gives describes the picture *as displayed*.
- Writing keeps the format, the ICC profile and the EXIF block, with Orientation
  reset to 1. A JPEG turned by quarter turns is transformed losslessly in the DCT
  domain (libjpeg-turbo through jpegtran-cffi) when its size is a whole number of
  MCUs; otherwise it is re-encoded at the source's estimated quality.
- Every failure a user can cause is a typed FaceupError with a message.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pillow_heif
from jpegtran import JPEGImage
from PIL import Image, ImageSequence, JpegImagePlugin, UnidentifiedImageError

from faceup.errors import (
    DecompressionBombError,
    EmptyFileError,
    NotAPictureError,
    TruncatedPictureError,
    UnsupportedFormatError,
)

pillow_heif.register_heif_opener()

T = Image.Transpose

#: Formats faceup reads and writes (Pillow's names). MPO is the multi-picture
#: JPEG some cameras write; it is read as JPEG.
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF")
FORMAT_ALIASES = {"JPG": "JPEG", "MPO": "JPEG", "TIF": "TIFF", "HEIC": "HEIF"}
SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "HEIF": ".heic"}

#: Pictures above this many pixels are refused (a decompression bomb guard).
DEFAULT_MAX_PIXELS = 100_000_000

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
    frames: list[Image.Image] = field(default_factory=list)
    frame_info: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


# --------------------------------------------------------------------------- reading


def _as_bytes(source: str | os.PathLike | bytes | BinaryIO) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise NotAPictureError(f"{path} is a directory, not a picture")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotAPictureError(f"{path} does not exist") from None
        except PermissionError:
            raise NotAPictureError(f"{path} cannot be read: permission denied") from None
    return source.read()


_KNOWN_UNSUPPORTED = {
    b"%PDF": "PDF",
    b"\x00\x00\x00\x0cjP": "JPEG 2000",
    b"8BPS": "Photoshop PSD",
    b"\x1aE\xdf\xa3": "Matroska/WebM video",
}


def _sniff_unsupported(data: bytes) -> str | None:
    for magic, name in _KNOWN_UNSUPPORTED.items():
        if data.startswith(magic):
            return name
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "SVG"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return None  # pillow-heif may read it; let Pillow decide
    if data[4:8] == b"ftyp":
        return "video (MP4/MOV)"
    return None


def _jpeg_quality(im: Image.Image) -> int | None:
    """Estimate the IJG quality a JPEG was saved at, from its luminance table."""
    tables = getattr(im, "quantization", None)
    if not tables or 0 not in tables:
        return None
    target = float(sum(tables[0]))
    best, best_err = None, float("inf")
    for q in range(1, 101):
        scale = 5000 / q if q < 50 else 200 - 2 * q
        table = np.clip((_STD_LUMA * scale + 50) // 100, 1, 255)
        err = abs(float(table.sum()) - target)
        if err < best_err:
            best, best_err = q, err
    return best


_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


def read(
    source: str | os.PathLike | bytes | BinaryIO | Image.Image,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    reduce_to: int | None = None,
    keep_frames: bool = False,
) -> Picture:
    """Read a picture and show it as displayed (EXIF Orientation applied).

    `reduce_to`: decode JPEGs at a reduced scale (draft mode) when only a
    prediction is needed; the picture is then at least `reduce_to` px on its
    shorter side where the source allows. `keep_frames`: keep every frame of an
    animated GIF/WebP (for writing it back); otherwise the first frame is used.
    A PIL Image is taken as it is (its EXIF orientation, if it has one, applied);
    written back, it keeps its own format, or PNG when it has none.
    """
    if isinstance(source, Image.Image):
        return _from_image(source, max_pixels)
    data = _as_bytes(source)
    if len(data) == 0:
        raise EmptyFileError("the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBombError(f"the picture is too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        other = _sniff_unsupported(data)
        if other:
            raise UnsupportedFormatError(
                f"{other} is not a supported picture format; use one of {', '.join(SUPPORTED_FORMATS)}") from None
        raise NotAPictureError("not a picture: the content is not a format faceup recognises "
                               f"({', '.join(SUPPORTED_FORMATS)})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedPictureError(f"the picture is damaged and cannot be opened ({exc})") from None

    fmt = FORMAT_ALIASES.get(im.format or "", im.format or "")
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedFormatError(
            f"{im.format} pictures are not supported; use one of {', '.join(SUPPORTED_FORMATS)}")
    _check_pixels(im, max_pixels)

    reduced = False
    if reduce_to and fmt == "JPEG":
        before = im.size
        im.draft("RGB", (reduce_to, reduce_to))
        reduced = im.size != before

    frames: list[Image.Image] = []
    frame_info: dict = {}
    try:
        im.load()
        if keep_frames and getattr(im, "n_frames", 1) > 1:
            frame_info = {"duration": im.info.get("duration"), "loop": im.info.get("loop", 0)}
            frames = [f.copy() for f in ImageSequence.Iterator(im)]
            im.seek(0)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise TruncatedPictureError(f"the picture is truncated or damaged ({exc})") from None

    exif, orientation = _orientation(im)
    quality = _jpeg_quality(im) if fmt == "JPEG" else None
    subsampling = JpegImagePlugin.get_sampling(im) if fmt == "JPEG" else -1

    shown = im.copy()
    op = EXIF_TRANSPOSE[orientation]
    if op is not None:
        shown = shown.transpose(op)
        frames = [f.transpose(op) for f in frames]
    return Picture(
        image=shown, format=fmt, exif_orientation=orientation, data=data,
        icc_profile=im.info.get("icc_profile"), exif=exif if len(exif) else None,
        quality=quality, subsampling=subsampling, reduced=reduced, frames=frames, frame_info=frame_info,
    )


def _check_pixels(im: Image.Image, max_pixels: int) -> None:
    w, h = im.size
    if w * h > max_pixels:
        raise DecompressionBombError(
            f"the picture has {w}x{h} = {w * h:,} pixels, above the limit of {max_pixels:,} "
            "(a guard against decompression bombs; raise it with --max-pixels / FACEUP_MAX_PIXELS)")


def _orientation(im: Image.Image) -> tuple[Image.Exif, int]:
    """The picture's EXIF and its Orientation value (1 when absent or invalid)."""
    exif = im.getexif()
    orientation = exif.get(ORIENTATION_TAG, 1)
    return exif, orientation if orientation in EXIF_TRANSPOSE else 1


def _from_image(im: Image.Image, max_pixels: int) -> Picture:
    _check_pixels(im, max_pixels)
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise TruncatedPictureError(f"the picture is truncated or damaged ({exc})") from None
    fmt = FORMAT_ALIASES.get(im.format or "", im.format or "")
    fmt = fmt if fmt in SUPPORTED_FORMATS else "PNG"
    exif, orientation = _orientation(im)
    op = EXIF_TRANSPOSE[orientation]
    shown = im.transpose(op) if op is not None else im.copy()
    return Picture(image=shown, format=fmt, exif_orientation=orientation, icc_profile=im.info.get("icc_profile"),
                   exif=exif if len(exif) else None)


# --------------------------------------------------------------------------- writing


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


def _jpeg_mcu(im_layers: list | None) -> tuple[int, int]:
    if not im_layers:
        return 16, 16
    h = max(layer[1] for layer in im_layers)
    v = max(layer[2] for layer in im_layers)
    return 8 * h, 8 * v


def _lossless_jpeg(picture: Picture, op: T | None) -> bytes | None:
    """Transform the original JPEG bytes in the DCT domain, or None when that
    would not be exact (size not a whole number of MCUs) or not possible."""
    if picture.data is None:
        return None
    full = _compose(EXIF_TRANSPOSE[picture.exif_orientation], op)
    src = Image.open(io.BytesIO(picture.data))
    mcu_w, mcu_h = _jpeg_mcu(getattr(src, "layer", None))
    w, h = src.size
    if full not in (None, T.TRANSPOSE) and (w % mcu_w or h % mcu_h):
        return None
    try:
        img = JPEGImage(blob=picture.data)
        if full is None:
            out = img
        elif full == T.FLIP_LEFT_RIGHT:
            out = img.flip("horizontal")
        elif full == T.FLIP_TOP_BOTTOM:
            out = img.flip("vertical")
        elif full == T.ROTATE_90:  # PIL: 90 counter-clockwise
            out = img.rotate(270)
        elif full == T.ROTATE_180:
            out = img.rotate(180)
        elif full == T.ROTATE_270:  # PIL: 270 counter-clockwise = 90 clockwise
            out = img.rotate(90)
        elif full == T.TRANSPOSE:
            out = img.transpose()
        else:
            out = img.transverse()
        blob = bytes(out.as_blob())
    except Exception:  # noqa: BLE001 - any libjpeg failure: fall back to re-encoding
        return None
    return _splice_metadata(blob, picture.data, _exif_bytes(picture))


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The marker segments of a JPEG before its first SOS, and where SOS starts."""
    segs, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        segs.append((marker, data[i:i + 2 + length]))
        i += 2 + length
    return segs, i


def _splice_metadata(blob: bytes, original: bytes, exif: bytes | None) -> bytes:
    """Put the original's APP1-APP15 and COM segments (EXIF, XMP, ICC, ...) into a
    transformed JPEG, with the EXIF block replaced by `exif` (Orientation 1).
    libjpeg-turbo's transform drops them."""
    orig, _ = _jpeg_segments(original)
    meta = []
    for marker, seg in orig:
        if 0xE1 <= marker <= 0xEF or marker == 0xFE:
            if marker == 0xE1 and seg[4:10] == b"Exif\x00\x00" and exif is not None:
                seg = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
            meta.append(seg)
    segs, sos = _jpeg_segments(blob)
    head = [seg for marker, seg in segs if marker == 0xE0]
    rest = [seg for marker, seg in segs if not (0xE0 <= marker <= 0xEF or marker == 0xFE)]
    return b"\xff\xd8" + b"".join(head + meta + rest) + blob[sos:]


def _exif_bytes(picture: Picture) -> bytes | None:
    if picture.exif is None:
        return None
    exif = Image.Exif()
    exif.load(picture.exif.tobytes())
    if ORIENTATION_TAG in exif or picture.exif_orientation != 1:
        exif[ORIENTATION_TAG] = 1
    return exif.tobytes()


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
        raise UnsupportedFormatError(f"cannot write '{fmt}'; use one of {', '.join(SUPPORTED_FORMATS)}")
    return up


def encode(
    picture: Picture,
    *,
    turn: T | None = None,
    image: Image.Image | None = None,
    format: str | None = None,
    quality: int | None = None,
) -> bytes:
    """Encode the picture turned by `turn` (a transpose of the displayed picture),
    or encode `image` (already transformed, e.g. by a fine rotation) with the
    picture's metadata. Same format as the source unless `format` is given."""
    fmt = normalize_format(format) or picture.format
    if image is None and turn is None and picture.exif_orientation == 1 and fmt == picture.format \
            and picture.data is not None and quality is None:
        return picture.data  # nothing to change: the original bytes, untouched
    if image is None and fmt == "JPEG" and picture.format == "JPEG" and quality is None and not picture.frames:
        blob = _lossless_jpeg(picture, turn)
        if blob is not None:
            return blob
    if image is None and picture.reduced and picture.data is not None:
        picture = read(picture.data, keep_frames=True, max_pixels=1 << 62)  # need every pixel now
    out_img = image if image is not None else (picture.image if turn is None else picture.image.transpose(turn))
    frames = [] if image is not None else [f if turn is None else f.transpose(turn) for f in picture.frames]

    kwargs: dict = {}
    exif = _exif_bytes(picture)
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF", "HEIF") and exif:
        kwargs["exif"] = exif
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF", "HEIF") and picture.icc_profile:
        kwargs["icc_profile"] = picture.icc_profile
    if fmt == "JPEG":
        if out_img.mode not in ("RGB", "L", "CMYK"):
            out_img = out_img.convert("RGB")
        kwargs["quality"] = quality or picture.quality or 92
        if picture.subsampling >= 0 and picture.format == "JPEG":
            kwargs["subsampling"] = picture.subsampling
    elif fmt == "WEBP":
        lossless = picture.format == "WEBP" and picture.data is not None and b"VP8L" in picture.data[:64]
        kwargs["lossless"] = lossless and quality is None
        kwargs["quality"] = quality or 90
    elif fmt == "HEIF":
        kwargs["quality"] = quality or 90
    elif fmt == "TIFF":
        comp = picture.image.info.get("compression")
        if comp and comp != "raw" and picture.format == "TIFF":
            kwargs["compression"] = comp
    elif fmt == "BMP" and out_img.mode not in ("RGB", "L", "P", "1"):
        out_img = out_img.convert("RGB")
    if frames and fmt in ("GIF", "WEBP", "PNG"):
        kwargs["save_all"] = True
        kwargs["append_images"] = frames[1:]
        out_img = frames[0]
        for key in ("duration", "loop"):
            if picture.frame_info.get(key) is not None:
                kwargs[key] = picture.frame_info[key]
    buf = io.BytesIO()
    out_img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a
    rename, so a reader never sees half a file and a crash leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
