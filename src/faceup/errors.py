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


class UnfaithfulWriteError(FaceupError):
    """faceup cannot write this picture faithfully (its frames, pages, bit depth
    or layout do not survive the format asked for); nothing is written."""

    http_status = 422


class InternalError(FaceupError):
    """Not the input's fault: a bug in faceup, reported on the one picture it hit
    so that a batch goes on."""

    http_status = 500

    @classmethod
    def of(cls, exc: BaseException) -> InternalError:
        """The one message for an error that is not faceup's own: a bug, said plainly."""
        return cls(f"unexpected error ({type(exc).__name__}: {shown(exc, 120)}); "
                   "this is a bug in faceup, please report it")


class MissingExtraError(FaceupError):
    """A feature needs an optional part of faceup that is not installed; the
    message names the `pip install 'faceup[...]'` that adds it."""

    http_status = 501


def missing_extra(feature: str, extra: str, exc: ImportError) -> MissingExtraError:
    return MissingExtraError(f"{feature} needs the {extra} extra: pip install 'faceup[{extra}]' (from a "
                             f"checkout: pip install -e '.[{extra}]'; missing: {exc.name or exc})")


class ModelIntegrityError(FaceupError):
    """A shipped model file is missing or does not match its recorded sha256."""

    http_status = 500


def shown(text: object, limit: int = 60) -> str:
    """Text an error message may quote, cut in the middle when long: an error
    never echoes a whole 100 KB field back."""
    text = str(text)
    return text if len(text) <= limit else f"{text[: limit - 20]} ...({len(text):,} characters)... {text[-8:]}"


class BatchError(FaceupError):
    """A whole batch run cannot go on (its results table cannot be read or
    written, another run holds its output): the message says what to do."""

    http_status = 409
