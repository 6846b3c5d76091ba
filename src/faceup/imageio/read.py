"""Reading: any picture as it is displayed (EXIF Orientation applied), within
the pixel budget, reduced early when only a prediction is needed."""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from faceup.errors import (
    DecompressionBombError,
    EmptyFileError,
    FaceupError,
    NotAPictureError,
    TruncatedPictureError,
    UnsupportedFormatError,
    shown,
)
from faceup.imageio.formats import (
    DEFAULT_MAX_PIXELS,
    EXIF_TRANSPOSE,
    FORMAT_ALIASES,
    MULTI_FRAME_FORMATS,
    ORIENTATION_TAG,
    SUPPORTED_FORMATS,
    Picture,
    _turned_size,
    heif_writes,
)
from faceup.imageio.metadata import _jpeg_segments, _xmp_of


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
                                     "raise `max_pixels` if it is wanted") from None
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
    small = None  # the picture reduced for a prediction (shorter side >= reduce_to), as JPEG's draft mode gives it
    if reduce_to and not keep_frames and fmt == "WEBP" and getattr(im, "n_frames", 1) == 1 \
            and min(im.size) >= 2 * reduce_to:
        flat = _webp_decoded(data, im)  # by libwebp into one buffer, then reduced at once
        small = None if flat is None else _reduced(flat, reduce_to)
        del flat
    if small is None:
        im.load()
        if keep_frames and fmt in MULTI_FRAME_FORMATS and getattr(im, "n_frames", 1) > 1:
            n_frames, durations = _check_frames(im, fmt, max_pixels)
        if reduce_to and not keep_frames and fmt != "JPEG":
            small = _reduced(im, reduce_to)  # the full picture is dropped at once

    exif, orientation = _orientation(im)
    quality = _jpeg_quality(im) if fmt == "JPEG" else None
    subsampling = JpegImagePlugin.get_sampling(im) if fmt == "JPEG" else -1

    op = EXIF_TRANSPOSE[orientation]
    if small is not None:
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
            "(a guard against decompression bombs; raise it with `max_pixels`)")
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
            "(a guard against decompression bombs; raise it with `max_pixels`)")


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
