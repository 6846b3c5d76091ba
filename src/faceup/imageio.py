"""Read any picture as it is displayed; write it back turned, keeping what it had.

- Formats are recognised by content (Pillow's own sniffing, pi-heif or
  pillow-heif for HEIC/HEIF), never by file name. Reading HEIC/HEIF needs only the
  core install (pi-heif: libheif and the libde265 decoder, LGPL); writing it needs
  the `heic` extra (pillow-heif, which carries the x265 encoder, GPL, 22 MB).
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
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from faceup.errors import (
    DecompressionBombError,
    EmptyFileError,
    FaceupError,
    MissingExtraError,
    NotAPictureError,
    TruncatedPictureError,
    UnfaithfulWriteError,
    UnsupportedFormatError,
    shown,
)
from faceup.files import write_atomic  # noqa: F401 - faceup.imageio.write_atomic, as before

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
    return int(np.argmin(np.abs(_LUMA_SUMS - float(sum(tables[0]))))) + 1


_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)

#: The sum of the IJG luminance table at each quality 1..100 (made once).
_LUMA_SUMS = np.array([np.clip((_STD_LUMA * (5000 / q if q < 50 else 200 - 2 * q) + 50) // 100, 1, 255).sum()
                       for q in range(1, 101)])


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
    animation (GIF, WebP, APNG) and every page of a TIFF or HEIF, for writing
    them back; otherwise only the first is decoded. `max_pixels` bounds the
    pixels decoded in all (every kept frame and page counts), checked before
    each is decoded.
    A PIL Image is taken as it is (its EXIF orientation, if it has one, applied);
    written back, it keeps its own format, or PNG when it has none.
    Raises only FaceupError subclasses for anything wrong with the input.
    """
    if isinstance(source, Image.Image):
        return _from_image(source, max_pixels)
    data = _as_bytes(source)
    if len(data) == 0:
        raise EmptyFileError("the file is empty (0 bytes)")
    _allow_pillow(max_pixels)
    if data[4:8] == b"ftyp":  # an ISO media file: HEIC/HEIF/AVIF are read by the HEIF plugin
        heif_writes()
    try:
        with warnings.catch_warnings():
            # faceup's own limit (max_pixels) decides, below; Pillow's fixed one must not
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise DecompressionBombError(f"the picture is too large to decode safely ({exc}); "
                                     "raise --max-pixels / FACEUP_MAX_PIXELS if it is wanted") from None
    except UnidentifiedImageError:
        other = _sniff_unsupported(data)
        if other:
            raise UnsupportedFormatError(
                f"{other} is not a supported picture format; use one of {', '.join(SUPPORTED_FORMATS)}") from None
        raise NotAPictureError("not a picture: the content is not a format faceup recognises "
                               f"({', '.join(SUPPORTED_FORMATS)})") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes is a damaged file
        raise _damaged("cannot be opened", exc) from None

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a decoder's complaints: what matters is raised or refused here
            return _decode(im, data, max_pixels, reduce_to, keep_frames)
    except FaceupError:
        raise
    except MemoryError:
        raise DecompressionBombError("the picture is too large to decode in the memory available") from None
    except Exception as exc:  # noqa: BLE001 - a decoder's own error (TypeError, RuntimeError, ...) is damage
        raise _damaged("is truncated or damaged", exc) from None


def header_pixels(data: bytes) -> int:
    """The pixels a picture's first frame holds, read from its header without
    decoding it (0 when the header cannot be read: reading it says why later)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if data[4:8] == b"ftyp":
                heif_writes()
            with Image.open(io.BytesIO(data)) as im:
                return im.size[0] * im.size[1]
    except Exception:  # noqa: BLE001 - any failure here is reported when the picture is read
        return 0


def _damaged(what: str, exc: BaseException) -> TruncatedPictureError:
    detail = shown(str(exc) or type(exc).__name__, 120)
    return TruncatedPictureError(f"the picture {what} ({detail})")


_PILLOW_LIMIT = threading.Lock()


def _allow_pillow(max_pixels: int) -> None:
    """Let Pillow open what faceup's own limit allows. Pillow's guard is a global
    (MAX_IMAGE_PIXELS, an error at twice it) that cannot be set per call; it is
    only ever raised here, never lowered, and only when a caller asks for more."""
    with _PILLOW_LIMIT:
        if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
            Image.MAX_IMAGE_PIXELS = max_pixels


def _decode(im: Image.Image, data: bytes, max_pixels: int, reduce_to: int | None, keep_frames: bool) -> Picture:
    fmt = FORMAT_ALIASES.get(im.format or "", im.format or "")
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedFormatError(
            f"{im.format} pictures are not supported; use one of {', '.join(SUPPORTED_FORMATS)}")
    _check_pixels(im, max_pixels)
    if fmt == "JPEG":
        _check_jpeg_holds_its_size(data, im)

    reduced = False
    full_size = im.size
    if reduce_to and fmt == "JPEG":
        before = im.size
        im.draft("RGB", (reduce_to, reduce_to))
        reduced = im.size != before

    n_frames, durations = 1, None
    if reduce_to and not keep_frames and fmt == "WEBP" and getattr(im, "n_frames", 1) == 1 \
            and min(im.size) >= 2 * reduce_to:
        flat = _webp_decoded(data, im)
        if flat is not None:  # decoded by libwebp into one buffer, then reduced at once
            small = _reduced(flat, reduce_to)
            del flat
            exif, orientation = _orientation(im)
            op = EXIF_TRANSPOSE[orientation]
            return Picture(image=small.transpose(op) if op is not None else small, format=fmt,
                           exif_orientation=orientation, data=data, icc_profile=im.info.get("icc_profile"),
                           exif=exif if len(exif) else None, xmp=_xmp_of(im), reduced=True,
                           full_size=_turned_size(im.size, op))
    im.load()
    if keep_frames and fmt in MULTI_FRAME_FORMATS and getattr(im, "n_frames", 1) > 1:
        n_frames, durations = _check_frames(im, fmt, max_pixels)

    exif, orientation = _orientation(im)
    quality = _jpeg_quality(im) if fmt == "JPEG" else None
    subsampling = JpegImagePlugin.get_sampling(im) if fmt == "JPEG" else -1

    op = EXIF_TRANSPOSE[orientation]
    small = _reduced(im, reduce_to) if reduce_to and not keep_frames and fmt != "JPEG" else None
    if small is not None:  # as JPEG's draft mode does: the full picture is dropped at once
        reduced = True
        shown_image = small.transpose(op) if op is not None else small
    elif op is not None:
        shown_image = im.transpose(op)
    elif getattr(im, "n_frames", 1) == 1:
        shown_image = im  # decoded and never seeked again: no copy needed (a quarter of a ms on a web photo)
    else:
        shown_image = im.copy()  # frames are read from `im` later
    return Picture(
        image=shown_image, format=fmt, exif_orientation=orientation, data=data,
        icc_profile=im.info.get("icc_profile"), exif=exif if len(exif) else None, xmp=_xmp_of(im),
        quality=quality, subsampling=subsampling, reduced=reduced, n_frames=n_frames, durations=durations,
        loop=im.info.get("loop") if n_frames > 1 else None,
        narrowed=_narrowed(im, fmt, data), full_size=_turned_size(full_size, op),
        unwritable=(f"this AVIF is an animation of {im.n_frames} frames; faceup reads its first frame and does "
                    "not write AVIF animations, so nothing was written (`faceup predict` still reads how it "
                    "is turned)") if fmt == "AVIF" and getattr(im, "n_frames", 1) > 1 else None,
    )


_WIDE_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


_LIBWEBP: object = None


def _libwebp():
    """Pillow's own libwebp (in its wheel's pillow.libs, else the system's), for
    one call Pillow does not offer: decoding a still WebP into one buffer. Pillow
    decodes every WebP through the animation decoder, which holds three RGBA
    copies of it (1.5 GB for 96 MP). None when it cannot be found."""
    global _LIBWEBP
    if _LIBWEBP is None:
        import ctypes
        import ctypes.util
        import glob

        import PIL

        found = sorted(glob.glob(os.path.join(os.path.dirname(PIL.__file__), os.pardir, "pillow.libs",
                                              "libwebp-*.so*")))
        names = found + [n for n in (ctypes.util.find_library("webp"),) if n]
        _LIBWEBP = False
        for name in names:
            try:
                lib = ctypes.CDLL(name)
                for fn in (lib.WebPDecodeRGBInto, lib.WebPDecodeRGBAInto):
                    fn.restype = ctypes.c_void_p
                    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                _LIBWEBP = lib
                break
            except (OSError, AttributeError):
                continue
    return _LIBWEBP or None


def _webp_decoded(data: bytes, im: Image.Image) -> Image.Image | None:
    """A still WebP decoded into one RGB or RGBA buffer (Pillow's mode for it),
    or None where libwebp cannot be called this way."""
    import ctypes

    lib = _libwebp()
    if lib is None or im.mode not in ("RGB", "RGBA"):
        return None
    w, h = im.size
    channels = len(im.mode)
    buf = np.empty((h, w, channels), np.uint8)
    decode = lib.WebPDecodeRGBAInto if channels == 4 else lib.WebPDecodeRGBInto
    if not decode(data, len(data), buf.ctypes.data_as(ctypes.c_void_p), buf.nbytes, w * channels):
        raise TruncatedPictureError("the picture is truncated or damaged (libwebp could not decode it)")
    return Image.fromarray(buf, im.mode)


def _reduced(im: Image.Image, reduce_to: int) -> Image.Image | None:
    """The decoded picture shrunk by a whole factor (2..8, a box filter) so that
    its shorter side stays at least `reduce_to`, as a JPEG's draft mode gives it;
    None when it is small enough already. A prediction needs no more, and a
    96 MP picture then costs one decoded copy, not one for every step after."""
    factor = min(8, min(im.size) // reduce_to)
    if factor < 2:
        return None
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode not in ("L", "LA", "RGB", "RGBA", "RGBa", "La", "I", "F", "CMYK", "YCbCr", "LAB", "HSV"):
        return None  # a mode Pillow cannot reduce (16-bit grey among them): judged at full size
    return im.reduce(factor)


def _narrowed(im: Image.Image, fmt: str, data: bytes) -> str | None:
    """Pillow decodes 16-bit colour (and 16-bit grey with alpha) to 8 bits per
    sample; say so, so that such a picture is never written back narrowed."""
    if im.mode in _WIDE_MODES:
        return None
    if fmt == "PNG" and data[12:16] == b"IHDR" and len(data) > 24 and data[24] > 8:
        return f"{data[24]}-bit PNG"
    if fmt == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)
        bits = bits if isinstance(bits, tuple) else (bits,) if bits else ()
        if bits and max(bits) > 8:
            return f"{max(bits)}-bit TIFF"
    if fmt == "AVIF":  # the AV1 configuration box of each coded image: high_bitdepth, twelve_bit
        at, bits = data.find(b"av1C"), 8
        while 0 <= at and at + 7 <= len(data):
            flags = data[at + 6]
            bits = max(bits, 12 if flags & 0x60 == 0x60 else 10 if flags & 0x40 else 8)
            at = data.find(b"av1C", at + 4)
        if bits > 8:
            return f"{bits}-bit AVIF"
    return None


def _check_frames(im: Image.Image, fmt: str, max_pixels: int) -> tuple[int, list[int] | None]:
    """How many frames (pages) `im` has and each one's duration, after checking
    that their pixels together stay within `max_pixels` before any frame beyond
    the first is decoded; then each is decoded once, in turn (one at a time in
    memory), so that a damaged one is found now, not halfway through writing."""
    n = im.n_frames
    if fmt == "TIFF":  # pages have their own sizes; seeking reads only their headers
        sizes = []
        for i in range(n):
            im.seek(i)
            sizes.append(im.size)
    else:  # every frame of an animation is drawn at the canvas size
        sizes = [im.size] * n
    total = sum(w * h for w, h in sizes)
    if total > max_pixels:
        raise DecompressionBombError(
            f"the picture's {n} frames or pages hold {total:,} pixels in all, above the limit of {max_pixels:,} "
            "(a guard against decompression bombs; raise it with --max-pixels / FACEUP_MAX_PIXELS)")
    durations = []
    for i in range(n):
        im.seek(i)
        if im.size != sizes[i]:  # a frame that grew after its header was read
            raise TruncatedPictureError(f"frame {i + 1} of the picture does not match its header")
        im.load()
        durations.append(im.info.get("duration", 0))
    im.seek(0)
    im.load()
    return n, (durations if fmt in ("GIF", "WEBP", "PNG") else None)


class _Frames(Image.Image):
    """Frames `start`.. of a picture's file, each as displayed and passed through
    `apply`, decoded one at a time as a writer seeks through them (Pillow's
    writers take a multi-frame image in `append_images`): an animation is turned
    with one frame in memory, not all of them."""

    def __init__(self, picture: Picture, apply: Callable[[Image.Image], Image.Image], start: int = 1):
        super().__init__()
        self._source = Image.open(io.BytesIO(picture.data))
        self._op = EXIF_TRANSPOSE[picture.exif_orientation]
        self._apply, self._start = apply, start
        self.n_frames = picture.n_frames - start
        self.is_animated = self.n_frames > 1
        self._index = -1
        self.seek(0)

    def seek(self, frame: int) -> None:
        if frame == self._index:
            return
        self._source.seek(self._start + frame)
        shown_frame = self._source.copy()
        if self._op is not None:
            shown_frame = shown_frame.transpose(self._op)
        out = self._apply(shown_frame)
        self.im, self._mode, self._size = out.im, out.mode, out.size
        self.palette, self.info = out.palette, dict(out.info)
        self._index = frame

    def tell(self) -> int:
        return self._index


def _check_pixels(im: Image.Image, max_pixels: int) -> None:
    w, h = im.size
    if w * h > max_pixels:
        raise DecompressionBombError(
            f"the picture has {w}x{h} = {w * h:,} pixels, above the limit of {max_pixels:,} "
            "(a guard against decompression bombs; raise it with --max-pixels / FACEUP_MAX_PIXELS)")


#: JPEG frame markers coded with Huffman tables: baseline / extended sequential,
#: and progressive (arithmetic coding, SOF9-15, is not checked).
_SEQUENTIAL_SOF = {0xC0, 0xC1, 0xC3}
_PROGRESSIVE_SOF = {0xC2}


def _check_jpeg_holds_its_size(data: bytes, im: Image.Image) -> None:
    """Refuse a JPEG whose header claims more pixels than its data can hold.

    With Huffman coding every 8x8 block of every component costs at least two
    bits in a sequential JPEG (its DC code and an end-of-block code) and at least
    one in a progressive one (its DC code; end-of-block runs can share the rest).
    A file that claims more was cut or forged: libjpeg would pad it with grey
    without an error, and faceup would judge (and write) a picture that is not there.
    """
    segs, _ = _jpeg_segments(data)
    markers = {marker for marker, _ in segs}
    bits_per_block = 2 if markers & _SEQUENTIAL_SOF else 1 if markers & _PROGRESSIVE_SOF else 0
    if not bits_per_block:
        return
    w, h = im.size
    layers = getattr(im, "layer", None) or [("", 1, 1, 0)]
    hmax, vmax = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
    blocks = sum(-(-(-(-w * hs // hmax)) // 8) * -(-(-(-h * vs // vmax)) // 8) for _, hs, vs, _ in layers)
    if blocks * bits_per_block > 8 * len(data):
        raise TruncatedPictureError(
            f"the JPEG's header says {w}x{h} but the file ({len(data):,} bytes) is far too small to hold that "
            "many pixels: it is truncated or damaged")


def _orientation(im: Image.Image) -> tuple[Image.Exif, int]:
    """The picture's EXIF and its Orientation value (1 when absent or invalid)."""
    exif = im.getexif()
    orientation = exif.get(ORIENTATION_TAG, 1)
    return exif, orientation if orientation in EXIF_TRANSPOSE else 1


def _xmp_of(im: Image.Image) -> bytes | None:
    """The XMP packet as the file holds it, where Pillow finds one."""
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if xmp is None and hasattr(im, "tag_v2"):
        xmp = im.tag_v2.get(700)
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return bytes(xmp) if isinstance(xmp, (bytes, bytearray)) and xmp else None


#: tiff:Orientation as an attribute (tiff:Orientation="6") or an element (<tiff:Orientation>6</...>)
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation\s*=\s*["\'])(\d+)(["\'])|(<tiff:Orientation>\s*)(\d+)(\s*</tiff:Orientation>)')


def xmp_with_orientation(xmp: bytes | None, value: int) -> bytes | None:
    """The XMP packet with its tiff:Orientation (if it has one) set to `value`,
    so software that reads XMP before EXIF does not turn the picture again."""
    if not xmp:
        return xmp

    def put(m: re.Match) -> bytes:
        if m.group(1) is not None:
            return m.group(1) + str(value).encode() + m.group(3)
        return m.group(4) + str(value).encode() + m.group(6)

    return _XMP_ORIENTATION.sub(put, xmp)


def _from_image(im: Image.Image, max_pixels: int) -> Picture:
    _check_pixels(im, max_pixels)
    try:
        im.load()
    except Exception as exc:  # noqa: BLE001 - a decoder's own error is damage
        raise _damaged("is truncated or damaged", exc) from None
    fmt = FORMAT_ALIASES.get(im.format or "", im.format or "")
    fmt = fmt if fmt in SUPPORTED_FORMATS else "PNG"
    exif, orientation = _orientation(im)
    op = EXIF_TRANSPOSE[orientation]
    shown_image = im.transpose(op) if op is not None else im.copy()
    return Picture(image=shown_image, format=fmt, exif_orientation=orientation, icc_profile=im.info.get("icc_profile"),
                   exif=exif if len(exif) else None, xmp=_xmp_of(im))


def eight_bit(image: Image.Image) -> Image.Image:
    """The picture as the models see it: 16- and 32-bit grey (I;16, I, F) scaled
    to 8-bit "L" by its full range, instead of Pillow's convert, which clips
    every value above 255 to white. Other modes are returned as they are."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    a = np.asarray(image.convert("F") if image.mode in ("I", "F") else image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") else max(float(a.max()), 255.0)
    return Image.fromarray(np.clip(a * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")


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
        from jpegtran import JPEGImage  # only turning JPEGs needs it

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


_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"


def _splice_metadata(blob: bytes, original: bytes, exif: bytes | None, orientation: int = 1) -> bytes:
    """Put the original's APP1-APP15 and COM segments (EXIF, XMP, ICC, ...) into a
    transformed JPEG, with the EXIF block replaced by `exif` and the XMP's
    tiff:Orientation set to `orientation` (1: the pixels are upright).
    libjpeg-turbo's transform drops them."""
    orig, _ = _jpeg_segments(original)
    meta = []
    for marker, seg in orig:
        if 0xE1 <= marker <= 0xEF or marker == 0xFE:
            if marker == 0xE1 and seg[4:10] == b"Exif\x00\x00" and exif is not None:
                seg = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
            elif marker == 0xE1 and seg[4:4 + len(_XMP_APP1)] == _XMP_APP1:
                body = xmp_with_orientation(seg[4:], orientation)
                if len(body) + 2 <= 0xFFFF:
                    seg = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
            meta.append(seg)
    segs, sos = _jpeg_segments(blob)
    head = [seg for marker, seg in segs if marker == 0xE0]
    rest = [seg for marker, seg in segs if not (0xE0 <= marker <= 0xEF or marker == 0xFE)]
    return b"\xff\xd8" + b"".join(head + meta + rest) + blob[sos:]


def _exif_bytes(picture: Picture, drop: frozenset[int] | tuple = ()) -> bytes | None:
    """The picture's EXIF with Orientation 1, less the tags in `drop` (a TIFF's
    layout tags, which describe the old file, not the one being written)."""
    if picture.exif is None:
        return None
    try:
        exif = Image.Exif()
        exif.load(picture.exif.tobytes())
        for tag in drop:
            exif.pop(tag, None)
        if ORIENTATION_TAG in exif or picture.exif_orientation != 1:
            exif[ORIENTATION_TAG] = 1
        return exif.tobytes() if len(exif) else None
    except Exception as exc:  # noqa: BLE001 - a damaged EXIF block cannot be carried over
        raise UnfaithfulWriteError(f"the picture's EXIF block is damaged ({shown(exc, 80)}) and cannot be written "
                                   "back with it; nothing was written") from None


def orientation_value(exif_orientation: int, turn: T | None) -> int:
    """The EXIF Orientation value that shows the stored pixels as the picture
    displayed now (`exif_orientation` applied) and then turned by `turn`."""
    full = _compose(EXIF_TRANSPOSE.get(exif_orientation), turn)
    return next(v for v, op in EXIF_TRANSPOSE.items() if op == full)


def with_orientation_tag(picture: Picture, value: int) -> bytes:
    """The JPEG's own bytes with its EXIF Orientation set to `value`: the pixels
    and every other segment untouched (an EXIF block is added if it had none)."""
    if picture.format != "JPEG" or picture.data is None:
        raise UnfaithfulWriteError(f"an orientation tag is written into JPEGs only, not {picture.format}")
    exif = Image.Exif()
    if picture.exif is not None:
        exif.load(picture.exif.tobytes())
    exif[ORIENTATION_TAG] = value
    block = exif.tobytes()
    segs, _ = _jpeg_segments(picture.data)
    app1 = b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block
    has_exif = any(m == 0xE1 and seg[4:10] == b"Exif\x00\x00" for m, seg in segs)
    if has_exif:
        out = _splice_metadata(picture.data, picture.data, block, value)
    else:  # after SOI and any APP0 (JFIF), as the standard places it
        at = 2 + sum(len(seg) for m, seg in segs[:1] if m == 0xE0)
        added = picture.data[:at] + app1 + picture.data[at:]
        out = _splice_metadata(added, added, None, value)
    _verify(out, "JPEG", Image.open(io.BytesIO(picture.data)).size, 1)
    return out


def xmp_orientation_sidecar(value: int) -> bytes:
    """An XMP sidecar that gives a picture its orientation (tiff:Orientation), for
    formats where faceup does not write the tag into the file itself."""
    return (f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
            f'tiff:Orientation="{value}"/>\n'
            ' </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>\n').encode()


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


def encode(
    picture: Picture,
    *,
    turn: T | None = None,
    transform: Callable[[Image.Image], Image.Image] | None = None,
    image: Image.Image | None = None,
    format: str | None = None,
    quality: int | None = None,
) -> bytes:
    """Encode the picture turned by `turn` (a transpose of the displayed picture),
    or passed through `transform` (e.g. a fine rotation; applied to every frame
    or page), or encode `image` (a new still picture) with the picture's
    metadata. Same format as the source unless `format` is given.

    What comes out is checked before it is returned: it decodes, in the format
    asked for, at the turned size, with every frame or page. What faceup cannot
    write faithfully raises UnfaithfulWriteError; a picture is never written wrong.
    """
    fmt = normalize_format(format) or picture.format
    unchanged = image is None and transform is None and turn is None
    if unchanged and picture.exif_orientation == 1 and fmt == picture.format \
            and picture.data is not None and quality is None:
        return picture.data  # nothing to change: the original bytes, untouched
    if picture.narrowed:
        raise UnfaithfulWriteError(
            f"this {picture.narrowed} is decoded with 8 bits per sample; written back it would lose the rest, "
            "so faceup does not write it (`faceup predict` still reads how it is turned)")
    if picture.unwritable:
        raise UnfaithfulWriteError(picture.unwritable)
    if image is None and transform is None and fmt == "JPEG" and picture.format == "JPEG" and quality is None:
        blob = _lossless_jpeg(picture, turn)
        if blob is not None:
            _verify(blob, fmt, _turned_size(picture.full_size or picture.image.size, turn), 1)
            return blob
    if image is None and picture.reduced and picture.data is not None:
        picture = read(picture.data, max_pixels=1 << 62)  # need every pixel now

    def apply(frame: Image.Image) -> Image.Image:
        if transform is not None:
            return transform(frame)
        return frame if turn is None else frame.transpose(turn)

    if fmt == "HEIF" and not heif_writes():
        raise MissingExtraError("writing HEIC/HEIF needs the heic extra (the HEVC encoder): "
                                "pip install 'faceup[heic]', or ask for another output format (jpeg, "
                                "png, ...: --format on the command line, format= over HTTP); nothing was written")
    n_frames = 1 if image is not None else picture.n_frames
    if n_frames > 1 and fmt not in MULTI_FRAME_FORMATS:
        raise UnfaithfulWriteError(
            f"the picture has {n_frames} frames or pages and {fmt} holds one; write it as "
            f"{', '.join(MULTI_FRAME_FORMATS)} (--format) to keep them all")
    out_img = image if image is not None else apply(picture.image)

    kwargs: dict = {}
    exif = _exif_bytes(picture, drop=TIFF_LAYOUT_TAGS if picture.format == "TIFF" or fmt == "TIFF" else ())
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF") and exif:
        kwargs["exif"] = exif
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF") and picture.icc_profile:
        kwargs["icc_profile"] = picture.icc_profile
    xmp = xmp_with_orientation(picture.xmp, 1)
    if xmp and fmt in ("JPEG", "WEBP", "AVIF"):
        kwargs["xmp"] = xmp
    elif xmp and fmt == "PNG":
        from PIL import PngImagePlugin

        kwargs["pnginfo"] = PngImagePlugin.PngInfo()
        kwargs["pnginfo"].add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
    elif xmp and fmt == "TIFF":
        kwargs["tiffinfo"] = {700: xmp}
    if fmt == "JPEG":
        if out_img.mode not in ("RGB", "L", "CMYK"):
            out_img = eight_bit(out_img).convert("RGB") if out_img.mode != "L" else out_img
        kwargs["quality"] = quality or picture.quality or 92
        if picture.subsampling >= 0 and picture.format == "JPEG":
            kwargs["subsampling"] = picture.subsampling
    elif fmt == "WEBP":
        lossless = picture.format == "WEBP" and picture.data is not None and b"VP8L" in picture.data[:64]
        kwargs["lossless"] = lossless and quality is None
        kwargs["quality"] = quality or 90
    elif fmt in ("HEIF", "AVIF"):
        kwargs["quality"] = quality or 90
    elif fmt == "TIFF":
        comp = picture.image.info.get("compression")
        if comp and comp != "raw" and picture.format == "TIFF":
            kwargs["compression"] = comp
    elif fmt == "BMP" and out_img.mode not in ("RGB", "L", "P", "1"):
        out_img = eight_bit(out_img).convert("RGB") if out_img.mode != "L" else out_img
    if n_frames > 1:
        kwargs["save_all"] = True
        kwargs["append_images"] = [_Frames(picture, apply)]
        if picture.durations and fmt in ("GIF", "WEBP", "PNG"):
            kwargs["duration"] = picture.durations
        if picture.loop is not None and fmt in ("GIF", "WEBP", "PNG"):
            kwargs["loop"] = picture.loop
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out_img.save(buf, fmt, **kwargs)
    except Exception as exc:  # noqa: BLE001 - an encoder's own failure: refuse, never write half a picture
        raise UnfaithfulWriteError(f"faceup could not write this picture as {fmt} "
                                   f"({shown(str(exc) or type(exc).__name__, 120)}); nothing was written") from None
    blob = buf.getvalue()
    _verify(blob, fmt, out_img.size, n_frames)
    return blob


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
