"""The one place the steps are chained: read -> estimate -> (turn back, encode).

The CLI and the HTTP server are thin doors over `predict` and `fix`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from PIL import Image

from faceup import geometry, imageio, orientation
from faceup.errors import BadOptionError, FaceupError, InternalError, UnfaithfulWriteError, shown
from faceup.faces import Faces
from faceup.models.orientation import INPUT_SIZE

#: JPEGs are decoded at a reduced scale for prediction (draft mode); the model
#: sees INPUT_SIZE px, so twice that is plenty.
PREDICT_DECODE_SIDE = 2 * INPUT_SIZE

#: A path, the bytes of a picture file, a binary file object, or a PIL Image.
Source = str | os.PathLike | bytes | BinaryIO | Image.Image


@dataclass
class Options:
    """The choices `predict`, `fix`, `analyze` and `background` share.

    min_confidence: below it `fix` leaves the picture as it is (None: the
    calibrated defaults shipped with the model, a stricter one for a picture in
    which no face is found). tta: average over the four turns
    (None: only where one pass is unsure). max_pixels: refuse pictures with more
    decoded pixels, every frame and page counted. format: the output format of
    `fix`/`background` (None: the input's). A bad value (e.g. a fill that is not
    a colour) raises BadOptionError when the Options are made."""

    min_confidence: float | None = None
    tta: bool | None = None
    max_pixels: int = imageio.DEFAULT_MAX_PIXELS
    format: str | None = None
    #: Estimate any angle (from the main face's eye line), not only quarter turns.
    fine: bool = False
    #: With `fine`, keep the whole picture and fill the corners (a colour such as
    #: "white" or "#102030", or "blur") instead of cropping the largest upright rectangle.
    expand: bool = False
    fill: str = "blur"
    #: Where the classifier is unsure and no face is found, look again for small
    #: faces (in tiles) and grey or high-contrast ones (orientation.THOROUGH_FALLBACK):
    #: right more often on such pictures, about 100 ms slower on each of them.
    thorough: bool = False

    def __post_init__(self) -> None:
        # a bad value is an error now, not after the work
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:  # NaN fails both
            raise BadOptionError(f"min_confidence must be a number from 0 to 1, not {self.min_confidence!r}")
        if self.max_pixels < 1:
            raise BadOptionError(f"max_pixels must be a positive number of pixels, not {self.max_pixels!r}")
        imageio.normalize_format(self.format)
        fill_colour(self.fill, "RGB")

    def classifier_tta(self) -> bool | None:
        """`tta`, except that --fine always looks at the four turns: about 1 ms against
        the face search's 70-80 ms, and no face turned near 45 degrees is lost to a
        single pass that is wrong but sure (chosen by the rule in the research log)."""
        return True if self.tta is None and self.fine else self.tta

    def threshold(self, no_face: bool = False) -> float:
        """min_confidence, or the calibrated default (`no_face`: for a picture in
        which the cascade looked for a face and found none)."""
        return orientation.default_min_confidence(no_face) if self.min_confidence is None else self.min_confidence


@dataclass
class Prediction:
    """One picture's answer. `to_json` is the CLI/HTTP contract, key for key.

    rotation: degrees clockwise the displayed picture is turned away from upright
    (0, 90, 180, 270), None when it could not be read; confidence: the calibrated
    probability that `rotation` is right (0..1); confident: confidence at or above
    Options.threshold (then `fix` turns the picture); angle: with
    Options(fine=True), the angle to the degree (clockwise, 0..360), else None;
    exif_orientation: the file's EXIF Orientation (1..8), already applied to
    everything above; error: why the picture could not be judged."""

    path: str | None
    rotation: int | None = None
    confidence: float | None = None
    confident: bool | None = None
    angle: float | None = None
    exif_orientation: int | None = None
    error: str | None = None
    #: the typed error behind `error` (for doors that map it, e.g. to an HTTP status)
    exception: FaceupError | None = field(default=None, repr=False, compare=False)
    scores: tuple[float, ...] | None = field(default=None, repr=False)
    size: tuple[int, int] | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {
            "path": printable_path(self.path),
            "rotation": self.rotation,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "confident": self.confident,
            "angle": self.angle,
            "exif_orientation": self.exif_orientation,
            "error": self.error,
        }

    @property
    def turned(self) -> bool:
        """Whether `fix` turns the picture (not counting the EXIF orientation)."""
        return bool(self.confident and self.looks_turned)

    @property
    def looks_turned(self) -> bool:
        """Whether the answer is that the picture is turned, sure or not."""
        if self.angle is not None:
            return abs(((self.angle + 180) % 360) - 180) > 0.05
        return bool(self.rotation)

    @property
    def status(self) -> str:
        """What `fix` does with the picture: "turned" (turned back), "upright"
        (nothing to do), "not sure" (it looks turned, but below the minimum
        confidence: left as it is) or "failed" (not judged: see `error`)."""
        if self.error is not None or self.rotation is None:
            return "failed"
        if self.looks_turned:
            return "turned" if self.confident else "not sure"
        return "upright"


def printable_path(path: str | None) -> str | None:
    """A path as valid UTF-8 text. A file name that is not UTF-8 reaches Python
    with lone surrogates (PEP 383), which strict JSON parsers reject; its odd
    bytes are shown as \\xNN instead."""
    if path is None:
        return None
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class Fixed:
    """What `fix` (or `background`) made: the prediction it acted on, and the
    encoded picture (`data`, ready to write as it is) in `format` (Pillow's name:
    JPEG, PNG, WEBP, TIFF, BMP, GIF, HEIF, AVIF)."""

    prediction: Prediction
    data: bytes
    format: str


#: Fine angles are estimated on a copy at most this many pixels on a side.
FINE_SIDE = 640


#: How clear a face must be to overrule a quarter-turn decision it disagrees with
#: in --fine, however sure that decision is: above every false face found on the
#: validation scenes turned by random angles (at most 0.744) and on the bundled
#: pictures without people at eight angles (the coffee cup: 0.769), plus 0.02.
#: (It was 0.8, and only for an unsure decision: a confidently wrong quarter turn
#: of a face turned near 45 degrees then threw a clear face away.)
FACE_DECIDES_QUALITY = 0.79

#: A face's angle agrees with a quarter-turn decision within this many degrees of
#: it: the quarter's own 45 degrees each side, plus half of that as slack.
FACE_AGREES_DEGREES = 67.5

#: The generic angle model's answer is used for pictures without a face only when
#: its posterior is at least this concentrated (chosen on the validation scenes,
#: with the posterior's plain circular mean: it kept 88% of them, with a mean
#: error of 4.6 degrees on those).
SCENE_ANGLE_MIN_CONCENTRATION = 0.8


def _scene_angle(image, rotation: int) -> float:
    """No face: the generic angle model (the scene's horizon), when it is sure and
    agrees with the quarter-turn decision; otherwise the quarter turn itself."""
    from faceup.models import get
    from faceup.models.angle import AngleModel

    angle, concentration = get(AngleModel).predict(image)
    nearest = int(round(angle / 90.0)) % 4 * 90
    if concentration >= SCENE_ANGLE_MIN_CONCENTRATION and nearest == rotation:
        return round(angle, 2) % 360.0
    return float(rotation)


def _estimate(picture: imageio.Picture, options: Options, path: str | None,
              est: orientation.Orientation | None = None) -> Prediction:
    """The prediction for a picture read; `est`: the classifier's decision, when
    it was already made (for many pictures at once)."""
    view = picture.view if picture.view is not None else imageio.eight_bit(picture.image)
    est = est or orientation.estimate(view, tta=options.classifier_tta(), thorough=options.thorough)
    rotation, confidence, angle = est.rotation, est.confidence, None
    no_face = est.used_faces and est.faces_found == 0
    if options.fine:
        from faceup import faces

        small = view.copy()
        small.thumbnail((FINE_SIDE, FINE_SIDE))
        roll = faces.fine_angle(small, hint_cw=est.rotation)
        face_turn = None if roll is None else int(round(roll.angle / 90.0)) % 4 * 90
        # The face decides when it agrees with the quarter-turn decision (lies in
        # that quarter's sector, with some slack: a face turned 140 degrees is as
        # much "90" as "180"), or when it is clearer than any false face seen
        # (false faces on cats, rockets and coffee cups exist; they must not
        # overrule the classifier).
        agrees = roll is not None and abs((roll.angle - est.rotation + 180.0) % 360.0 - 180.0) <= FACE_AGREES_DEGREES
        if roll is not None and (agrees or roll.quality >= FACE_DECIDES_QUALITY):
            angle = round(roll.angle, 2) % 360.0
            rotation = face_turn
            # confidence: the larger of the classifier's probability for that
            # quarter turn and the face's score x landmark-geometry fit
            confidence = max(est.scores[rotation // 90], min(0.99, roll.quality))
            no_face = False
        else:
            angle = _scene_angle(small, est.rotation)
    return Prediction(
        path=path, rotation=rotation, confidence=confidence,
        confident=confidence >= options.threshold(no_face), angle=angle,
        exif_orientation=picture.exif_orientation, scores=est.scores, size=picture.size,
    )


def predict(source: Source, options: Options | None = None, path: str | None = None) -> Prediction:
    """Estimate how the picture is turned. Never raises for a bad picture: the
    answer carries `error` instead, so a batch goes on."""
    return predict_many([source], options, [path])[0]


def fix(source: Source, options: Options | None = None, path: str | None = None) -> Fixed:
    """Estimate and turn the picture back; raises FaceupError for a bad picture.

    When not confident the picture is left as it is (only the EXIF orientation is
    applied, so the output displays exactly like the input)."""
    result = fix_many([source], options, [path])[0]
    if isinstance(result, FaceupError):
        raise result
    return result


@dataclass
class Tagged:
    """What `tag` gives: the answer; `data`, the picture's own bytes with its
    EXIF Orientation set so that it displays upright (the bytes unchanged when it
    needs no turn, or when a sidecar was asked for); `sidecar`, an XMP sidecar
    (tiff:Orientation) for the unchanged picture, when asked for and needed."""

    prediction: Prediction
    data: bytes
    format: str
    sidecar: bytes | None = None


def tag(source: Source, options: Options | None = None, path: str | None = None, sidecar: bool = False) -> Tagged:
    """`fix` without new pixels, as jhead and exiftran do: the orientation tag is
    set so that viewers show the picture upright, every pixel untouched (in the
    file for JPEG and PNG, imageio.TAGGABLE; with `sidecar` in an XMP file
    beside it, for any format). Quarter turns only. Raises FaceupError for a bad
    picture, an angle that is not a quarter turn, or a format whose tag faceup
    does not write (then ask for the sidecar)."""
    options = options or Options()
    if path is None and isinstance(source, (str, os.PathLike)):
        path = str(source)
    picture = imageio.read(source, max_pixels=options.max_pixels, reduce_to=PREDICT_DECODE_SIDE)
    return tagged(picture, _estimate(picture, options, path), sidecar)


def tagged(picture: imageio.Picture, pred: Prediction, sidecar: bool = False) -> Tagged:
    """`tag`'s answer for a picture read and judged already (the batch job's
    workers judge many at once)."""
    assert picture.data is not None
    if not pred.turned:
        return Tagged(prediction=pred, data=picture.data, format=picture.format)
    if pred.angle is not None and abs(pred.angle - pred.rotation) > 0.05:
        raise UnfaithfulWriteError("an orientation tag holds quarter turns only; this picture needs "
                                   f"{pred.angle:.1f} degrees (turn its pixels instead)")
    value = imageio.orientation_value(picture.exif_orientation, geometry.UNDO_CW[pred.rotation])
    if sidecar:
        return Tagged(prediction=pred, data=picture.data, format=picture.format,
                      sidecar=imageio.xmp_orientation_sidecar(value))
    return Tagged(prediction=pred, data=imageio.with_orientation_tag(picture, value), format=picture.format)


def predict_many(sources: Sequence[Source], options: Options | None = None,
                 paths: Sequence[str | None] | None = None, pool: Executor | None = None) -> list[Prediction]:
    """`predict` for many pictures, in order: decoded in `pool` (threads: Pillow
    decodes without the GIL) and judged by one classifier run for all of them."""
    options = options or Options()
    pictures = _map(pool, lambda s: _read(s, options, for_fix=False), sources)
    return _guarded(pictures, options, _paths(sources, paths), pool, for_fix=False)


def fix_many(sources: Sequence[Source], options: Options | None = None,
             paths: Sequence[str | None] | None = None, pool: Executor | None = None) -> list[Fixed | FaceupError]:
    """`fix` for many pictures, in order; a picture that cannot be read or written
    is its FaceupError in the list (nothing raised, so a batch goes on)."""
    options = options or Options()
    pictures = _map(pool, lambda s: _read(s, options, for_fix=True), sources)
    return _guarded(pictures, options, _paths(sources, paths), pool, for_fix=True)


def _fix_read(pictures: list, options: Options, paths: list[str | None],
              pool: Executor | None = None) -> list[Fixed | FaceupError]:
    preds = _judge(pictures, options, paths)

    def turn_back(i: int) -> Fixed | FaceupError:
        picture, pred = pictures[i], preds[i]
        if not isinstance(picture, imageio.Picture):
            return picture
        try:
            return Fixed(prediction=pred, data=_turned_back(picture, pred, options), format=_format(picture, options))
        except FaceupError as exc:
            return exc
    return _map(pool, turn_back, range(len(pictures)))


#: Pictures judged together by `predict_iter` / `fix_iter` (one classifier run).
CHUNK = 32


def predict_iter(sources: Sequence[Source], options: Options | None = None,
                 paths: Sequence[str | None] | None = None, workers: int | None = None,
                 chunk: int = CHUNK) -> Iterator[Prediction]:
    """`predict` for a stream of pictures, in order, on `workers` threads (default:
    every core): each chunk is judged by one classifier run while the next one
    is being decoded. Never raises for a bad picture."""
    return _iter(sources, options, paths, workers, chunk, for_fix=False)


def fix_iter(sources: Sequence[Source], options: Options | None = None,
             paths: Sequence[str | None] | None = None, workers: int | None = None,
             chunk: int = CHUNK) -> Iterator[Fixed | FaceupError]:
    """`fix_many` for a stream of pictures, in order, the same way as `predict_iter`."""
    return _iter(sources, options, paths, workers, chunk, for_fix=True)


def _iter(sources, options, paths, workers, chunk, for_fix):
    options = options or Options()
    paths = _paths(sources, paths)
    n = workers or os.cpu_count() or 1
    # n threads decode; n chunks are judged at once (onnxruntime runs each on one
    # thread and releases the GIL), so every core infers as well as decodes
    with ThreadPoolExecutor(n) as pool, ThreadPoolExecutor(n) as judges:
        def judged(start: int) -> Future:
            reads = [pool.submit(_read, s, options, for_fix) for s in sources[start:start + chunk]]
            return judges.submit(lambda: _guarded([f.result() for f in reads], options,
                                                  paths[start:start + chunk], pool, for_fix))

        pending: deque[Future] = deque()
        for start in range(0, len(sources), chunk):
            pending.append(judged(start))
            if len(pending) > n:  # at most n + 1 chunks in memory; answers in order
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _guarded(pictures: list, options: Options, paths: list[str | None], pool: Executor | None,
             for_fix: bool) -> list:
    """Judge (and turn back) a chunk; if something that is not faceup's own error
    breaks it, each picture again on its own, so that only the one at fault fails."""
    def run(pics, names):
        return _fix_read(pics, options, names, pool) if for_fix else _judge(pics, options, names)
    try:
        return run(pictures, paths)
    except Exception:  # noqa: BLE001
        out = []
        for picture, path in zip(pictures, paths):
            try:
                out += run([picture], [path])
            except Exception as exc:  # noqa: BLE001 - a bug, said plainly on this picture only
                error = InternalError.of(exc)
                out.append(error if for_fix else Prediction(path=path, error=str(error), exception=error))
        return out


def _paths(sources: Sequence[Source], paths: Sequence[str | None] | None) -> list[str | None]:
    paths = list(paths) if paths is not None else [None] * len(sources)
    return [p if p is not None or not isinstance(s, (str, os.PathLike)) else str(s) for s, p in zip(sources, paths)]


def _map(pool: Executor | None, fn, items) -> list:
    return list(pool.map(fn, items)) if pool is not None else [fn(x) for x in items]


def _read(source: Source, options: Options, for_fix: bool) -> imageio.Picture | FaceupError:
    if not for_fix:
        return _read_as(source, options, reduce_to=PREDICT_DECODE_SIDE)
    if not options.fine:
        return _read_as(source, options, reduce_to=PREDICT_DECODE_SIDE, keep_frames=True)
    # a fine turn is written from every pixel, but judged on what `predict` sees
    # (JPEGs decoded small), so that `fix --fine` and `predict --fine` agree
    picture = _read_as(source, options, keep_frames=True)
    if isinstance(picture, imageio.Picture) and _rewound(source):
        small = _read_as(source, options, reduce_to=PREDICT_DECODE_SIDE)
        if isinstance(small, imageio.Picture):
            picture.view, picture.square = small.view, small.square
    return picture


def _rewound(source: Source) -> bool:
    """Whether the source can be read again from its start (a file object is sought back)."""
    if hasattr(source, "read"):
        try:
            source.seek(0)
        except (AttributeError, OSError, ValueError):
            return False
    return True


def _read_as(source: Source, options: Options, still: bool = False, **how) -> imageio.Picture | FaceupError:
    """The picture read as `how` says (imageio.read's options), or the error
    that refuses it; with `still`, a picture of several frames or pages is
    refused. The classifier's input is made here too: in the decoding thread,
    not the inference one."""
    try:
        picture = imageio.read(source, max_pixels=options.max_pixels, **how)
    except FaceupError as exc:
        return exc
    if still and picture.n_frames > 1:
        return UnfaithfulWriteError(f"background replacement takes a still picture; this one has "
                                    f"{picture.n_frames} frames or pages")
    picture.view = imageio.eight_bit(picture.image)
    picture.square = orientation.classifier_input(picture.view)
    return picture


def _judge(pictures: list, options: Options, paths: list[str | None]) -> list[Prediction]:
    """A Prediction for each picture read (the classifier on all at once), and an
    error Prediction for each that could not be read."""
    ok = [i for i, p in enumerate(pictures) if isinstance(p, imageio.Picture)]
    ests = orientation.estimate_many([pictures[i].view for i in ok], tta=options.classifier_tta(),
                                     squares=[pictures[i].square for i in ok], thorough=options.thorough)
    preds = [Prediction(path=path, error=str(p), exception=p) if isinstance(p, FaceupError) else None
             for p, path in zip(pictures, paths)]
    for i, est in zip(ok, ests):
        preds[i] = _estimate(pictures[i], options, paths[i], est)
    return preds


def _format(picture: imageio.Picture, options: Options) -> str:
    return imageio.normalize_format(options.format) or picture.format


def _turned_back(picture: imageio.Picture, pred: Prediction, options: Options) -> bytes:
    """The encoded picture as `fix` writes it."""
    fmt = _format(picture, options)
    fine_angle, turn = _correction(pred, options)
    if fine_angle is not None:  # every frame or page turned by the same angle
        def level(frame):
            return turn_back_fine(frame, fine_angle, options.expand, options.fill)
        return imageio.encode(picture, transform=level, format=fmt)
    return imageio.encode(picture, turn=turn, format=fmt)


def _correction(pred: Prediction, options: Options):
    """What `fix` does to the displayed picture: (angle, None) to turn back by a
    fine angle, (None, transpose) for a quarter turn, (None, None) to leave it."""
    if not pred.confident:
        return None, None
    if options.fine and pred.angle is not None and abs(pred.angle - pred.rotation) > 1e-6:
        return pred.angle, None
    return None, geometry.UNDO_CW[pred.rotation]


def fill_colour(fill: str, mode: str):
    """The colour of a --fill value in `mode`, or None for "blur"."""
    from PIL import ImageColor

    if fill == "blur":
        return None
    try:
        return ImageColor.getcolor(fill, mode)
    except ValueError:
        raise BadOptionError(f"fill must be a colour (e.g. white, #102030) or 'blur', not {shown(fill)!r}") from None


def turn_back_fine(image, angle_cw: float, expand: bool, fill: str):
    """Turn counter-clockwise by `angle_cw`; crop the largest upright rectangle
    without empty corners, or keep everything and fill the corners."""
    from PIL import ImageFilter

    w, h = image.size
    wide = image.mode.startswith("I;16")  # 16-bit grey: turned as 32-bit, written back as 16-bit
    mode = "I" if wide else image.mode if image.mode in ("RGB", "RGBA", "L", "I", "F") else \
        "RGBA" if "A" in image.mode or "transparency" in image.info else "RGB"
    img = image.convert(mode)
    rotated = geometry.rotate(img, -angle_cw, expand=True, resample=Image.Resampling.BICUBIC)
    if not expand:
        out = rotated.crop(geometry.crop_box_inscribed(w, h, angle_cw))
        return out.convert(image.mode) if wide else out
    mask = geometry.rotate(Image.new("L", (w, h), 255), -angle_cw, expand=True, resample=Image.Resampling.BICUBIC)
    colour = fill_colour(fill, "L" if mode in ("I", "F") else mode)
    if colour is None:
        background = img.resize(rotated.size, Image.Resampling.BILINEAR).filter(
            ImageFilter.GaussianBlur(max(rotated.size) / 30))
    else:
        scale = 257 if wide else 1  # an 8-bit grey level on a 16-bit scale
        background = Image.new(mode, rotated.size, colour * scale if mode in ("I", "F") else colour)
    background.paste(rotated, (0, 0), mask)
    return background.convert(image.mode) if wide else background


@dataclass
class Analysis:
    """`predict`'s answer plus the faces of the upright picture (its coordinates)."""

    prediction: Prediction
    #: none when the picture could not be read
    faces: Faces = field(default_factory=Faces.none)
    upright_size: tuple[int, int] | None = None

    def to_json(self) -> dict:
        return {**self.prediction.to_json(), "faces": self.faces.to_json()}



#: Faces are looked for on a copy at most this many pixels on a side; their
#: coordinates are scaled back to the upright picture.
ANALYZE_SIDE = 1024


def upright_image(picture: imageio.Picture, pred: Prediction, options: Options):
    """The picture as `fix` would make it, in the 8 bits per sample the models see."""
    image = imageio.eight_bit(picture.image)
    fine_angle, turn = _correction(pred, options)
    if fine_angle is not None:
        return turn_back_fine(image, fine_angle, options.expand, options.fill)
    return image if turn is None else image.transpose(turn)


def parse_only(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """The analyses asked for ("smile,age" or a sequence; None or empty: all of
    them), refused with BadOptionError naming the field `only` if one is unknown."""
    from faceup.faces import ANALYSES

    asked = tuple(a.strip() for a in (text.split(",") if isinstance(text, str) else text or ()) if a.strip())
    unknown = [a for a in asked if a not in ANALYSES]
    if unknown:
        raise BadOptionError(f"`only` takes {', '.join(ANALYSES)}; not {', '.join(unknown)}")
    return asked or ANALYSES


def analyze(source: Source, options: Options | None = None, path: str | None = None,
            only: Sequence[str] | None = None) -> Analysis:
    """The orientation fix first, then every face of the upright picture with the
    analyses asked for (faces, smile, age, gender). Never raises for a bad picture."""
    return analyze_many([source], options, [path], only)[0]


def analyze_many(sources: Sequence[Source], options: Options | None = None,
                 paths: Sequence[str | None] | None = None, only: Sequence[str] | None = None,
                 pool: Executor | None = None) -> list[Analysis]:
    """`analyze` for many pictures, in order: each read once (in `pool`), their
    orientation judged by one classifier run, then the faces of each."""
    options = options or Options()
    only = parse_only(only)
    paths = _paths(sources, paths)
    pictures = _map(pool, lambda s: _read_as(s, options), sources)  # whole: faces in its own pixels
    preds = _guarded(pictures, options, paths, pool, for_fix=False)

    def faces_of(i: int) -> Analysis:
        picture, pred = pictures[i], preds[i]
        if not isinstance(picture, imageio.Picture) or pred.error is not None:
            return Analysis(prediction=pred)
        try:
            return _faces(picture, pred, options, only)
        except Exception as exc:  # noqa: BLE001 - a bug, said plainly on this picture only
            error = InternalError.of(exc)
            return Analysis(prediction=Prediction(path=paths[i], error=str(error), exception=error))
    return _map(pool, faces_of, range(len(pictures)))


def analyze_iter(sources: Sequence[Source], options: Options | None = None,
                 paths: Sequence[str | None] | None = None, only: Sequence[str] | None = None,
                 workers: int | None = None, chunk: int = 4) -> Iterator[Analysis]:
    """`analyze_many` for a stream of pictures, `chunk` at a time on `workers`
    threads (default: every core), in order; at most one chunk of whole pictures
    in memory. Never raises for a bad picture."""
    only = parse_only(only)
    return _chunked(lambda part, names, pool: analyze_many(part, options, names, only, pool),
                    sources, paths, workers, chunk)


def _chunked(many, sources: Sequence[Source], paths, workers: int | None, chunk: int) -> Iterator:
    """`many(part, names, pool)` over `chunk` pictures at a time, on one pool of
    `workers` threads, the answers in order."""
    paths = _paths(sources, paths)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for start in range(0, len(sources), chunk):
            yield from many(sources[start:start + chunk], paths[start:start + chunk], pool)


def _faces(picture: imageio.Picture, pred: Prediction, options: Options, only: tuple[str, ...]) -> Analysis:
    from faceup import faces

    upright = upright_image(picture, pred, options)
    small = upright.convert("RGB")
    small.thumbnail((ANALYZE_SIDE, ANALYZE_SIDE))
    found = faces.analyze(small, only).scaled(upright.width / small.width)
    return Analysis(prediction=pred, faces=found, upright_size=upright.size)


def background(source: Source, how, options: Options | None = None, path: str | None = None) -> Fixed:
    """The orientation fix first, then the background behind the people replaced
    (`how`: a background.Replacement). Raises FaceupError for a bad picture or option.
    The format is the input's (PNG when transparent and the input's format has no
    alpha channel) unless options.format says otherwise."""
    result = background_many([source], how, options, [path])[0]
    if isinstance(result, FaceupError):
        raise result
    return result


def background_many(sources: Sequence[Source], how, options: Options | None = None,
                    paths: Sequence[str | None] | None = None, pool: Executor | None = None) -> list[Fixed | FaceupError]:
    """`background` for many pictures, in order: each read once (in `pool`), their
    orientation judged by one classifier run, then each background replaced. A
    picture that cannot be read or written is its FaceupError in the list; a bad
    format or `how` raises BadOptionError before any work."""
    from faceup import background as bg

    options = options or Options()
    bg.output_format(options.format, "PNG", how)  # a bad format is an error before the work
    paths = _paths(sources, paths)
    pictures = _map(pool, lambda s: _read_as(s, options, still=True, keep_frames=True), sources)
    preds = _guarded(pictures, options, paths, pool, for_fix=False)

    def replaced(i: int) -> Fixed | FaceupError:
        picture, pred = pictures[i], preds[i]
        if not isinstance(picture, imageio.Picture):
            return picture
        if pred.exception is not None:
            return pred.exception
        try:
            image = bg.replace(upright_image(picture, pred, options), how, options.max_pixels)
            fmt = bg.output_format(options.format, picture.format, how)
            return Fixed(prediction=pred, data=imageio.encode(picture, image=image, format=fmt), format=fmt)
        except FaceupError as exc:
            return exc
    return _map(pool, replaced, range(len(pictures)))


def background_iter(sources: Sequence[Source], how, options: Options | None = None,
                    paths: Sequence[str | None] | None = None, workers: int | None = None,
                    chunk: int = 4) -> Iterator[Fixed | FaceupError]:
    """`background_many` for a stream of pictures, `chunk` at a time on `workers`
    threads (default: every core), in order."""
    from faceup import background as bg

    bg.output_format((options or Options()).format, "PNG", how)  # refused now, not at the first picture
    return _chunked(lambda part, names, pool: background_many(part, how, options, names, pool),
                    sources, paths, workers, chunk)
