"""Picture input and output: formats by content, EXIF orientation, metadata kept,
lossless JPEG turns, clear errors for bad input, atomic writes."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image, ImageCms

from conftest import REPO, T, jpeg_bytes, mean_abs_diff
from faceup import imageio
from faceup.errors import (
    DecompressionBombError,
    EmptyFileError,
    NotAPictureError,
    TruncatedPictureError,
    UnfaithfulWriteError,
    UnsupportedFormatError,
)

#: EXIF value -> how to store upright pixels so that the tag shows them upright
#: (the inverse of the display transform).
STORE_FOR_TAG = {
    1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE, 6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270,
}


def with_orientation(img: Image.Image, tag: int, fmt: str = "JPEG", **extra) -> bytes:
    op = STORE_FOR_TAG[tag]
    stored = img if op is None else img.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = tag
    exif[0x010F] = "faceup-test-camera"  # Make
    buf = io.BytesIO()
    stored.save(buf, fmt, exif=exif.tobytes(), **extra)
    return buf.getvalue()


@pytest.mark.parametrize("tag", range(1, 9))
def test_exif_orientation_is_shown_upright(astronaut_small, tag):
    pic = imageio.read(with_orientation(astronaut_small, tag, quality=95))
    assert pic.exif_orientation == tag
    assert mean_abs_diff(pic.image, astronaut_small) < 3.0
    # and it is not merely "some" orientation: every other one is far off
    for other in (T.ROTATE_180, T.FLIP_LEFT_RIGHT, T.FLIP_TOP_BOTTOM, T.ROTATE_90):
        assert mean_abs_diff(pic.image, astronaut_small.transpose(other)) > 10


@pytest.mark.parametrize("tag", [3, 5, 6, 8])
def test_exif_orientation_in_png_is_applied(astronaut_small, tag):
    pic = imageio.read(with_orientation(astronaut_small, tag, fmt="PNG"))
    assert pic.exif_orientation == tag
    assert mean_abs_diff(pic.image, astronaut_small) == 0


@pytest.mark.parametrize("tag", range(2, 9))
def test_written_jpeg_has_orientation_reset_and_other_exif_kept(astronaut_small, tag):
    pic = imageio.read(with_orientation(astronaut_small, tag, quality=95))
    out = Image.open(io.BytesIO(imageio.encode(pic)))
    exif = out.getexif()
    assert exif.get(0x0112, 1) == 1
    assert exif.get(0x010F) == "faceup-test-camera"
    assert mean_abs_diff(out, astronaut_small) < 3.0


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".png"), ("PNG", ".jpg"), ("WEBP", ".bmp"), ("TIFF", ".gif"),
                                        ("BMP", ".webp"), ("GIF", ".tif"), ("HEIF", ".jpg"), ("AVIF", ".png")])
def test_format_is_recognised_by_content_not_name(tmp_path, astronaut_small, fmt, suffix):
    path = tmp_path / f"misnamed{suffix}"
    img = astronaut_small.convert("P") if fmt == "GIF" else astronaut_small
    img.save(path, fmt)
    pic = imageio.read(path)
    assert pic.format == fmt
    assert pic.size == astronaut_small.size


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF", "AVIF"])
def test_turned_picture_keeps_its_format(astronaut_small, fmt):
    buf = io.BytesIO()
    (astronaut_small.convert("P") if fmt == "GIF" else astronaut_small).save(buf, fmt)
    pic = imageio.read(buf.getvalue())
    out = Image.open(io.BytesIO(imageio.encode(pic, turn=T.ROTATE_90)))
    assert imageio.FORMAT_ALIASES.get(out.format, out.format) == fmt
    assert out.size == (astronaut_small.height, astronaut_small.width)
    assert mean_abs_diff(out, pic.image.transpose(T.ROTATE_90)) < 4.0


def test_avif_is_read_as_displayed_and_written_back_only_when_faithful(astronaut_small):
    """AVIF (the web's newer format): its orientation (Pillow maps the irot/imir
    boxes and the EXIF tag to one Orientation) is applied on reading and reset on
    writing; a 10-bit AVIF (decoded to 8 bits) and an AVIF animation are read but
    never written back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "faceup-test-camera"
    buf = io.BytesIO()
    astronaut_small.save(buf, "AVIF", exif=exif, quality=90)
    pic = imageio.read(buf.getvalue())
    assert pic.format == "AVIF" and pic.exif_orientation == 6
    assert pic.size == (astronaut_small.height, astronaut_small.width)  # shown turned, as a viewer shows it
    out = imageio.read(imageio.encode(pic, turn=T.ROTATE_90))
    assert out.format == "AVIF" and out.exif_orientation == 1 and out.exif.get(0x010F) == "faceup-test-camera"
    assert mean_abs_diff(out.image, pic.image.transpose(T.ROTATE_90)) < 4.0

    ten = (REPO / "tests" / "data" / "astronaut-turned-10bit.avif").read_bytes()
    pic = imageio.read(ten)
    assert pic.narrowed == "10-bit AVIF" and pic.size == (96, 96)
    with pytest.raises(UnfaithfulWriteError, match="10-bit AVIF"):
        imageio.encode(pic, turn=T.ROTATE_270)
    assert imageio.encode(pic) == ten  # nothing to change: the file as it was

    frames = [astronaut_small, astronaut_small.transpose(T.FLIP_LEFT_RIGHT)]
    buf = io.BytesIO()
    frames[0].save(buf, "AVIF", save_all=True, append_images=frames[1:], duration=100)
    pic = imageio.read(buf.getvalue(), keep_frames=True)
    assert pic.format == "AVIF" and mean_abs_diff(pic.image, frames[0]) < 4.0
    with pytest.raises(UnfaithfulWriteError, match="animation of 2 frames"):
        imageio.encode(pic, turn=T.ROTATE_180)
    with pytest.raises(UnfaithfulWriteError, match="animation"):
        imageio.encode(pic, turn=T.ROTATE_180, format="png")


def test_gif_first_frame_is_read_and_every_frame_is_turned(astronaut_small):
    frames = [astronaut_small.convert("P"), astronaut_small.transpose(T.FLIP_LEFT_RIGHT).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    pic = imageio.read(buf.getvalue(), keep_frames=True)
    assert mean_abs_diff(pic.image, frames[0]) < 1
    out = Image.open(io.BytesIO(imageio.encode(pic, turn=T.ROTATE_180)))
    assert out.n_frames == 2


def test_jpeg_quarter_turn_is_lossless_when_size_allows(astronaut):
    src = jpeg_bytes(astronaut, quality=80)  # 512x512: whole MCUs
    pic = imageio.read(src)
    out = imageio.encode(pic, turn=T.ROTATE_270)
    turned = Image.open(io.BytesIO(out))
    expected = Image.open(io.BytesIO(src)).transpose(T.ROTATE_270)
    # DCT-domain transform: the same coefficients, so (almost) the same pixels;
    # a decode + re-encode at the same quality differs by far more.
    lossless_err = mean_abs_diff(turned, expected)
    reencoded = Image.open(io.BytesIO(jpeg_bytes(expected, quality=80)))
    assert lossless_err < 0.3  # chroma upsampling differs a little at block edges
    assert mean_abs_diff(reencoded, expected) > 3 * lossless_err
    # the same quantisation (transposed by the quarter turn), not a new encoding
    src_q = Image.open(io.BytesIO(src)).quantization
    assert {k: sorted(v) for k, v in turned.quantization.items()} == {k: sorted(v) for k, v in src_q.items()}


def test_jpeg_with_partial_mcus_is_reencoded_at_source_quality(chelsea):
    src = jpeg_bytes(chelsea, quality=75)  # 451x300: not whole MCUs
    pic = imageio.read(src)
    assert pic.quality == 75
    out = imageio.encode(pic, turn=T.ROTATE_90)
    turned = Image.open(io.BytesIO(out))
    assert turned.size == (300, 451)
    assert imageio.read(out).quality == 75
    assert mean_abs_diff(turned, pic.image.transpose(T.ROTATE_90)) < 3


def test_icc_profile_is_kept(astronaut_small):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt in ("JPEG", "PNG", "WEBP"):
        buf = io.BytesIO()
        astronaut_small.save(buf, fmt, icc_profile=icc)
        out = Image.open(io.BytesIO(imageio.encode(imageio.read(buf.getvalue()), turn=T.ROTATE_90)))
        assert out.info.get("icc_profile") == icc, fmt


def test_untouched_picture_is_written_byte_for_byte(astronaut_small):
    src = jpeg_bytes(astronaut_small)
    assert imageio.encode(imageio.read(src)) == src


def test_empty_file_is_a_clear_error(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(EmptyFileError, match="empty"):
        imageio.read(p)


def test_text_file_is_not_a_picture(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("these are not the pixels you are looking for\n" * 10)
    with pytest.raises(NotAPictureError, match="not a picture"):
        imageio.read(p)


def test_truncated_jpeg_is_a_clear_error(astronaut):
    src = jpeg_bytes(astronaut)
    with pytest.raises(TruncatedPictureError, match="truncated|damaged"):
        imageio.read(src[: len(src) // 2])


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG that claims a huge grey picture (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = zlib.compress(b"\x00" * (width + 1) * 64, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding():
    bomb = png_bomb()
    assert len(bomb) < 100_000
    with pytest.raises(DecompressionBombError, match="pixels|too large"):
        imageio.read(bomb)


def test_pixel_limit_is_adjustable(astronaut_small):
    with pytest.raises(DecompressionBombError, match="limit"):
        imageio.read(jpeg_bytes(astronaut_small), max_pixels=1000)


def test_pdf_is_an_unsupported_format():
    with pytest.raises(UnsupportedFormatError, match="PDF"):
        imageio.read(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n" * 20)


def test_readable_but_unsupported_format_is_refused(astronaut_small):
    buf = io.BytesIO()
    astronaut_small.save(buf, "PPM")
    with pytest.raises(UnsupportedFormatError, match="not supported"):
        imageio.read(buf.getvalue())


def test_large_jpeg_is_decoded_reduced_for_prediction(astronaut):
    big = astronaut.resize((4096, 4096))
    pic = imageio.read(jpeg_bytes(big), reduce_to=256)
    assert pic.reduced and 256 <= min(pic.size) < 1024


def test_write_atomic_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.jpg"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        imageio.write_atomic(target, 12345)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jpg"]
    imageio.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.stat(target).st_mode & 0o777 == 0o644


def test_a_pil_image_is_a_source_for_the_library(astronaut_small):
    """pipeline.predict / fix take a PIL Image as well as a path or bytes: the same
    answer as for its PNG file; written back as PNG (it has no format of its own);
    an opened file's EXIF orientation is applied as for the file."""
    from faceup import pipeline

    turned = astronaut_small.transpose(T.ROTATE_270)  # turned 90 clockwise
    buf = io.BytesIO()
    turned.save(buf, "PNG")
    from_image, from_bytes = pipeline.predict(turned), pipeline.predict(buf.getvalue())
    assert from_image.error is None and from_image.rotation == from_bytes.rotation == 90
    assert from_image.scores == pytest.approx(from_bytes.scores, abs=1e-6)
    fixed = pipeline.fix(turned)
    out = Image.open(io.BytesIO(fixed.data))
    assert fixed.format == out.format == "PNG" and out.size == astronaut_small.size
    assert mean_abs_diff(out.convert("RGB"), astronaut_small) < 1.0

    opened = Image.open(io.BytesIO(with_orientation(astronaut_small, 6)))
    pic = imageio.read(opened)
    assert pic.exif_orientation == 6 and pic.size == astronaut_small.size and pic.format == "JPEG"
