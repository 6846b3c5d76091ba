"""Errors a user can meet. Each carries a message a person can act on; the CLI maps
them to exit codes and the server to HTTP statuses (see `http_status`)."""

from __future__ import annotations


class FaceupError(Exception):
    """Base class: something about the input or the set-up, not a bug."""

    http_status = 400


class NotAPictureError(FaceupError):
    """The bytes are not a picture faceup can read."""

    http_status = 415


class UnsupportedFormatError(FaceupError):
    http_status = 415


class EmptyFileError(FaceupError):
    http_status = 400


class TruncatedPictureError(FaceupError):
    http_status = 400


class DecompressionBombError(FaceupError):
    http_status = 413


class BadOptionError(FaceupError):
    """An option value that cannot be used (e.g. a fill that is not a colour)."""

    http_status = 422


class ModelIntegrityError(FaceupError):
    """A shipped model file is missing or does not match its recorded sha256."""

    http_status = 500
