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

The package: `formats` (what is read and written, the Picture), `read`,
`write` and `metadata` (EXIF and XMP kept in step).
"""

from faceup.files import write_atomic
from faceup.imageio.formats import (
    DEFAULT_MAX_PIXELS,
    EXIF_TRANSPOSE,
    FORMAT_ALIASES,
    MULTI_FRAME_FORMATS,
    ORIENTATION_TAG,
    SUFFIX,
    SUPPORTED_FORMATS,
    TIFF_LAYOUT_TAGS,
    Picture,
    T,
    format_for_suffix,
    heif_writes,
    in_format,
    normalize_format,
    output_name,
    orientation_value,
)
from faceup.imageio.metadata import TAGGABLE, with_orientation_tag, xmp_orientation_sidecar, xmp_with_orientation
from faceup.imageio.read import eight_bit, header_pixels, read
from faceup.imageio.write import encode

__all__ = [
    "DEFAULT_MAX_PIXELS", "EXIF_TRANSPOSE", "FORMAT_ALIASES", "MULTI_FRAME_FORMATS", "ORIENTATION_TAG", "SUFFIX",
    "SUPPORTED_FORMATS", "TAGGABLE", "TIFF_LAYOUT_TAGS", "Picture", "T", "encode", "eight_bit", "format_for_suffix",
    "header_pixels", "heif_writes", "normalize_format", "orientation_value", "read", "with_orientation_tag",
    "write_atomic", "xmp_orientation_sidecar", "xmp_with_orientation",
    "output_name", "in_format",
]
