"""Metadata carried from a picture to what is written: the EXIF block with its
Orientation, the XMP packet with its tiff:Orientation kept in step, and the
JPEG marker segments that hold them."""

from __future__ import annotations

import io
import re

from PIL import Image

from faceup.errors import (
    UnfaithfulWriteError,
    shown,
)
from faceup.imageio.formats import ORIENTATION_TAG, Picture, _verify


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


#: Formats whose EXIF Orientation faceup sets in the file itself (the rest get a sidecar).
TAGGABLE = ("JPEG", "PNG")


def with_orientation_tag(picture: Picture, value: int) -> bytes:
    """The file's own bytes with its EXIF Orientation set to `value`: the pixels
    and every other segment or chunk untouched (an EXIF block is added if it had
    none; an XMP tiff:Orientation in a JPEG is set with it). JPEG (an APP1
    segment) and PNG (an eXIf chunk); other formats raise UnfaithfulWriteError
    naming the sidecar instead."""
    if picture.format not in TAGGABLE or picture.data is None or picture.n_frames > 1:
        raise UnfaithfulWriteError(
            f"faceup writes an orientation tag into JPEG and still PNG files, not into this {picture.format}; "
            "an XMP sidecar (`sidecar`) gives it its orientation without touching the file")
    exif = Image.Exif()
    if picture.exif is not None:
        exif.load(picture.exif.tobytes())
    exif[ORIENTATION_TAG] = value
    block = exif.tobytes()
    if picture.format == "PNG":
        return _png_with_exif(picture.data, block, value)
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


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) of a PNG, in order."""
    chunks, i = [], 8
    while i + 12 <= len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        chunks.append((data[i + 4:i + 8], data[i:i + 12 + n]))
        i += 12 + n
    return chunks


def _png_with_exif(data: bytes, block: bytes, value: int) -> bytes:
    """The PNG with its eXIf chunk holding `block` (the TIFF-structured EXIF
    without the Exif header), placed before the first IDAT as the PNG 1.5
    extension asks; every other chunk kept."""
    import zlib

    body = block[6:] if block.startswith(b"Exif\x00\x00") else block
    exif_chunk = len(body).to_bytes(4, "big") + b"eXIf" + body + zlib.crc32(b"eXIf" + body).to_bytes(4, "big")
    out, placed = [data[:8]], False
    for kind, chunk in _png_chunks(data):
        if kind == b"eXIf":
            continue
        if kind == b"IDAT" and not placed:
            out.append(exif_chunk)
            placed = True
        out.append(chunk)
    blob = b"".join(out)
    with Image.open(io.BytesIO(data)) as im:
        size = im.size
    _verify(blob, "PNG", size, 1)
    if Image.open(io.BytesIO(blob)).getexif().get(ORIENTATION_TAG) != value:
        raise UnfaithfulWriteError("the PNG faceup tagged does not read back with its orientation; nothing was written")
    return blob


def xmp_orientation_sidecar(value: int) -> bytes:
    """An XMP sidecar that gives a picture its orientation (tiff:Orientation), for
    formats where faceup does not write the tag into the file itself."""
    return (f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
            f'tiff:Orientation="{value}"/>\n'
            ' </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>\n').encode()
