"""XMP orientation kept in step with EXIF on every path, and `explain`'s output
paths: a format it cannot draw in, a folder."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess

import pytest
from conftest import faceup_cli
from PIL import Image

XMP = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
       b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
       b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def adobe_jpeg(img: Image.Image, size: tuple[int, int]) -> bytes:
    """A portrait stored on its side with EXIF Orientation 6 and XMP tiff:Orientation
    6, as Adobe's tools write it."""
    stored = img.resize(size).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=90, exif=exif.tobytes(), xmp=XMP)
    return buf.getvalue()


def xmp_orientation(data: bytes) -> str | None:
    m = re.search(rb'tiff:Orientation="(\d)"', data)
    return m.group(1).decode() if m else None


@pytest.mark.parametrize("size, fmt", [((256, 256), None), ((250, 190), None), ((256, 256), "png"),
                                       ((256, 256), "webp")],
                         ids=["lossless-jpeg", "re-encoded-jpeg", "png", "webp"])
def test_the_xmp_orientation_is_reset_with_the_exif_one(tmp_path, astronaut, size, fmt):
    src = tmp_path / "adobe.jpg"
    src.write_bytes(adobe_jpeg(astronaut, size))
    assert xmp_orientation(src.read_bytes()) == "6"
    out = tmp_path / f"out.{fmt or 'jpg'}"
    res = faceup_cli("fix", str(src), "-o", str(out), *(["--format", fmt] if fmt else []), "--json")
    assert res.returncode == 0, res.stderr
    data = out.read_bytes()
    assert xmp_orientation(data) == "1", "the XMP packet was dropped or still says 6"
    im = Image.open(io.BytesIO(data))
    assert im.getexif().get(0x0112, 1) == 1 and im.size == (size[0], size[1])
    if shutil.which("exiftool"):  # a reader that is not Pillow
        tags = json.loads(subprocess.run(["exiftool", "-j", "-n", "-XMP-tiff:Orientation", "-IFD0:Orientation",
                                          str(out)], capture_output=True, text=True).stdout)[0]
        assert tags.get("Orientation", 1) == 1


def test_explain_refuses_a_format_it_cannot_draw_and_writes_into_a_folder(tmp_path, astronaut_small):
    pic = tmp_path / "a.jpg"
    astronaut_small.save(pic, quality=90)
    res = faceup_cli("explain", str(pic), "-o", str(tmp_path / "why.heic"))
    assert res.returncode == 2 and "Traceback" not in res.stderr and ".heic" in res.stderr
    folder = tmp_path / "explanations"
    folder.mkdir()
    res = faceup_cli("explain", str(pic), "-o", str(folder))
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert Image.open(folder / "a.why.png").format == "PNG"
