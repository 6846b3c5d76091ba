"""Writing: a picture turned back (losslessly for JPEG where its size allows),
checked before it is returned."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

from PIL import Image

from faceup.errors import (
    MissingExtraError,
    UnfaithfulWriteError,
    shown,
)
from faceup.imageio.formats import (
    EXIF_TRANSPOSE,
    MULTI_FRAME_FORMATS,
    TIFF_LAYOUT_TAGS,
    Picture,
    T,
    _compose,
    _turned_size,
    _verify,
    normalize_format,
)
from faceup.imageio.metadata import _exif_bytes, _splice_metadata, xmp_with_orientation
from faceup.imageio.read import _Frames, eight_bit, heif_writes, read


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
                                "pip install 'faceup[heic]' (from a checkout: pip install -e '.[heic]'), or "
                                "ask for another output `format` (jpeg, png, ...); "
                                "nothing was written")
    n_frames = 1 if image is not None else picture.n_frames
    if n_frames > 1 and fmt not in MULTI_FRAME_FORMATS:
        raise UnfaithfulWriteError(
            f"the picture has {n_frames} frames or pages and {fmt} holds one; write it as "
            f"{', '.join(MULTI_FRAME_FORMATS)} (`format`) to keep them all")
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
