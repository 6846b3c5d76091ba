"""Face evidence for the orientation decision: detect faces in the four quarter
turns of a picture and judge each detection by face geometry (eyes level and
above the mouth, the subject's right eye on the left), not by raw detector score.

Detector scores alone are often higher on a turned face than on the upright one;
landmark geometry is what tells the upright view apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from faceup import geometry
from faceup.models import get
from faceup.models.attributes import AgeGenderModel, GenderModel, SmileModel
from faceup.models.blazeface import BlazeFace, BlazeFaceFull, BlazeFaceShort, Detection

#: A face is evidence only when its landmarks are this close to upright geometry.
GEOMETRY_POWER = 4.0


#: Attributes that are points in the picture (moved with the faces' boxes).
POINT_ATTRIBUTES = ("landmarks",)


@dataclass(frozen=True)
class Faces:
    """Faces as arrays, in pixels of one picture: `boxes` (n, 4) as [x0, y0, x1,
    y1], `keypoints` (n, 6, 2) (BlazeFace's: right eye, left eye, nose tip, mouth
    centre, right and left ear tragion), `scores` (n,), and `attributes`: name ->
    one row per face (the five landmarks, smile, age, gender, ...). Every stage
    passes it along: detected, shifted out of a tile, merged, unturned out of a
    quarter-turned view, clipped and scaled to the picture, given attributes,
    written as JSON. Iterating gives each face as a `Detection`."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    attributes: dict = field(default_factory=dict)

    @classmethod
    def of(cls, found: Iterable[Detection]) -> Faces:
        found = list(found)
        if not found:
            return cls.none()
        return cls(np.array([d.box for d in found], dtype=np.float64),
                   np.stack([np.asarray(d.keypoints, dtype=np.float64) for d in found]),
                   np.array([d.score for d in found], dtype=np.float64))

    @classmethod
    def none(cls) -> Faces:
        return cls(np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0))

    @classmethod
    def joined(cls, parts: Iterable[Faces | list[Detection]], keep: bool = False) -> Faces:
        """All faces of `parts`, in order; with `keep`, the attributes every part has."""
        parts = [p if isinstance(p, Faces) else cls.of(p) for p in parts]
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.none()
        names = set.intersection(*(set(p.attributes) for p in parts)) if keep else set()
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.keypoints for p in parts]),
                   np.concatenate([p.scores for p in parts]),
                   {k: np.concatenate([np.asarray(p.attributes[k]) for p in parts]) for k in sorted(names)})

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[Detection]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> Detection:
        return Detection(box=tuple(float(v) for v in self.boxes[i]), score=float(self.scores[i]),
                         keypoints=self.keypoints[i], attributes={k: v[i] for k, v in self.attributes.items()})

    @property
    def widths(self) -> np.ndarray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    def _moved(self, f) -> Faces:
        """Every point moved by `f` ((m, 2) -> (m, 2)): boxes, keypoints, point attributes."""
        attrs = {k: (f(np.asarray(v, np.float64).reshape(-1, 2)).reshape(np.shape(v)) if k in POINT_ATTRIBUTES
                     else v) for k, v in self.attributes.items()}
        return replace(self, boxes=f(self.boxes.reshape(-1, 2)).reshape(self.boxes.shape),
                       keypoints=f(self.keypoints.reshape(-1, 2)).reshape(self.keypoints.shape), attributes=attrs)

    def shifted(self, dx: float, dy: float) -> Faces:
        """Moved by (dx, dy): from a crop's or a tile's coordinates into the picture's."""
        return self._moved(lambda p: p + np.array([dx, dy]))

    def scaled(self, factor: float) -> Faces:
        """From a copy of the picture `factor` times smaller into the picture's pixels."""
        return self._moved(lambda p: p * factor)

    def clipped(self, w: float, h: float) -> Faces:
        """Boxes cut to the picture (keypoints as they are)."""
        boxes = np.column_stack([np.maximum(0.0, self.boxes[:, 0]), np.maximum(0.0, self.boxes[:, 1]),
                                 np.minimum(float(w), self.boxes[:, 2]), np.minimum(float(h), self.boxes[:, 3])])
        return replace(self, boxes=boxes.reshape(-1, 4))

    def unturned(self, turn: int, w: float, h: float) -> Faces:
        """From a view of the picture turned `turn` quarter turns counter-clockwise
        back into the picture (`w` x `h`, the picture's own size): points mapped
        back, each box the axis-aligned box around its four mapped corners."""
        def back(p: np.ndarray) -> np.ndarray:
            return geometry.unmap_points(p, w, h, -90 * turn)

        x0, y0, x1, y1 = self.boxes.T
        corners = back(np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                                 np.stack([x0, y1], 1)], 1).reshape(-1, 2)).reshape(-1, 4, 2)
        moved = self._moved(back)
        boxes = np.concatenate([corners.min(1), corners.max(1)], axis=1) if len(self) else self.boxes
        return replace(moved, boxes=boxes)

    def merged(self, iou: float = 0.3) -> Faces:
        """Overlapping faces (of both models, or of overlapping tiles) merged into
        one each, weighted by score (attributes are not kept)."""
        from faceup.models.blazeface import weighted_nms

        if not len(self):
            return Faces.none()
        kept = weighted_nms(self.boxes, self.keypoints, self.scores, iou)
        return Faces(np.array([b for b, _, _ in kept], dtype=np.float64), np.stack([k for _, k, _ in kept]),
                     np.array([s for _, _, s in kept], dtype=np.float64))

    def with_attributes(self, **rows) -> Faces:
        """These faces with more attributes, one row per face each."""
        return replace(self, attributes={**self.attributes, **rows})

    def largest(self) -> Detection | None:
        return self[int(np.argmax(self.widths))] if len(self) else None

    def to_json(self) -> list[dict]:
        """The faces of `faceup analyze --json`: box, score, the five landmarks and
        the analyses (None where not asked), rounded."""
        def r(v, n):
            return None if v is None else round(float(v), n)

        out = []
        for d in self:
            out.append({"box": [r(v, 2) for v in d.box], "score": r(d.score, 3),
                        "landmarks": [[r(x, 2), r(y, 2)] for x, y in (d.landmarks if d.landmarks is not None else [])],
                        "smile": r(d.smile, 3), "age": r(d.age, 1), "gender": d.gender,
                        "gender_score": r(d.gender_score, 3), "whole_picture": bool(d.whole_picture)})
        return out


@dataclass(frozen=True)
class FaceView:
    """The faces found in one quarter-turned view of the picture."""

    turn: int  # quarter turns counter-clockwise applied to the displayed picture
    detections: Faces
    evidence: float


def _axes(d: Detection) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The eye line (right eye to left eye), the eyes-to-mouth axis, and their lengths."""
    kp = d.keypoints
    eyes = kp[1] - kp[0]
    down = kp[3] - (kp[0] + kp[1]) / 2
    return eyes, down, float(np.linalg.norm(eyes)), float(np.linalg.norm(down))


def upright_geometry(d: Detection) -> float:
    """0..1: how well the landmarks fit an upright face in this view.

    Keypoints: 0 the subject's right eye (image left), 1 left eye, 2 nose tip,
    3 mouth centre. Upright: eye line horizontal, mouth below the eyes, the nose
    between them.
    """
    kp = d.keypoints
    eyes, down, eye_len, down_len = _axes(d)
    if eye_len < 1e-6 or down_len < 1e-6:
        return 0.0
    level = max(0.0, eyes[0] / eye_len)  # cos of the eye line's tilt (and the right eye on the left)
    below = max(0.0, down[1] / down_len)  # cos of the eyes->mouth direction against straight down
    nose_between = 1.0 if (kp[0][1] + kp[1][1]) / 2 < kp[2][1] + 0.25 * down_len else 0.5
    return float((level * below) ** GEOMETRY_POWER * nose_between)


#: The two BlazeFace models every face search runs, the full-range one first.
DETECTORS: tuple[type[BlazeFace], ...] = (BlazeFaceFull, BlazeFaceShort)


def detector() -> BlazeFace:
    return get(BlazeFaceFull)


#: What the orientation's face evidence can try when the four views of the whole
#: picture show no face, in order
#: (benchmarks/face_evidence.py compares them): "tiles" looks at each view in
#: 2 x 2 overlapping tiles (small faces; pictures of at least TILE_MIN_SIDE only),
#: "eq" at the views with the contrast stretched by histogram equalisation (grey,
#: faded or high-contrast faces).
#: faceup uses "none" by default and "tiles-eq" with `thorough` (orientation.THOROUGH_FALLBACK).
EVIDENCE_FALLBACKS: dict[str, tuple[str, ...]] = {
    "none": (),
    "tiles": ("tiles",),
    "eq": ("eq",),
    "tiles-eq": ("tiles", "eq"),
}


def views(image: Image.Image, fallback: str = "none") -> list[FaceView]:
    """Faces in each quarter turn of the picture, with their geometric evidence
    (sum of score x geometry x relative size, so big clear faces count most);
    where none is found, the `fallback` steps."""
    out = _views(image, detector().detect)
    return out if any(len(v.detections) for v in out) else fallback_views(image, fallback)


def fallback_views(image: Image.Image, fallback: str) -> list[FaceView]:
    """`views` by the steps of EVIDENCE_FALLBACKS[fallback], for a picture whose
    whole views showed no face: the first step that finds one answers."""
    det = detector()
    out = [FaceView(turn=j, detections=Faces.none(), evidence=0.0) for j in range(4)]
    for step in EVIDENCE_FALLBACKS[fallback]:
        if step == "tiles" and max(image.size) >= TILE_MIN_SIDE:
            out = _views(image, lambda view: _tiled(view, 2, det.detect, whole=False))
        elif step == "eq":
            from PIL import ImageOps

            out = _views(ImageOps.equalize(image.convert("L")).convert("RGB"), det.detect)
        if any(len(v.detections) for v in out):
            break
    return out


def _views(image: Image.Image, detect) -> list[FaceView]:
    side = max(image.size)
    out = []
    for j in range(4):
        view = geometry.quarter_turn(image, -90 * j)  # j quarter turns counter-clockwise
        found = Faces.of(detect(view))
        ev = 0.0
        for d in found:
            size = min(1.0, 4.0 * d.width / side) ** 0.5
            ev += d.score * upright_geometry(d) * size
        out.append(FaceView(turn=j, detections=found, evidence=ev))
    return out


def evidence_log_likelihood(face_views: list[FaceView], strength: float) -> np.ndarray:
    """Log-likelihood over rotation classes (0, 90, 180, 270 clockwise) from the
    face views: the view turned j quarter turns counter-clockwise is upright when
    the picture was turned j quarter turns clockwise."""
    e = np.array([v.evidence for v in face_views], dtype=np.float64)
    return strength * e


# --------------------------------------------------------------------------- fine angle


@dataclass(frozen=True)
class Roll:
    """angle: degrees clockwise the displayed picture is turned, judged by the main
    face (turning the picture back counter-clockwise by it levels the eye line)."""

    angle: float
    face: Detection
    quality: float


def eye_roll(d: Detection) -> float:
    """Clockwise tilt of the face in degrees (y points down), in (-180, 180]: the
    eye line, averaged with the line across the face perpendicular to the
    eyes-to-mouth axis (two cues, less landmark noise)."""
    eyes, down, n_e, n_d = _axes(d)
    across = np.array([down[1], -down[0]])  # "down" turned 90 degrees counter-clockwise
    v = eyes / max(n_e, 1e-9) * EYE_WEIGHT + across / max(n_d, 1e-9)
    return float(np.degrees(np.arctan2(v[1], v[0])))


#: Weight of the eye line against the face's vertical axis in `eye_roll`.
EYE_WEIGHT = 1.0


def _loose_geometry(d: Detection) -> float:
    """0..1: eyes-above-mouth fits the eye line, whatever the eye line's tilt."""
    eyes, down, n_e, n_d = _axes(d)
    if n_e < 1e-6 or n_d < 1e-6:
        return 0.0
    # the mouth lies on the side of the eye line that "down" should be: the eye
    # line turned 90 degrees clockwise (x, y) -> (-y, x) in y-down coordinates
    normal = np.array([-eyes[1], eyes[0]]) / n_e
    return float(max(0.0, normal @ down / n_d))


def _level_faces(view: Image.Image) -> dict[str, list[Detection]]:
    """Faces with a plausible eyes-above-mouth layout, per BlazeFace model."""
    out = {}
    for kind in DETECTORS:
        out[kind.name] = [d for d in get(kind).detect(view) if _loose_geometry(d) > 0.6]
    return out


def _best_face(view: Image.Image, per_model: dict[str, list[Detection]] | None = None) -> Detection | None:
    found = [d for faces in (per_model or _level_faces(view)).values() for d in faces]
    if not found:
        return None
    return max(found, key=lambda d: d.score * d.width * _loose_geometry(d))


def _rotate_back(img: Image.Image, angle_cw: float) -> Image.Image:
    return geometry.rotate(img.convert("RGB"), -angle_cw, expand=True, fill=(0, 0, 0),
                           resample=Image.Resampling.BILINEAR)


def fine_angle(image: Image.Image, hint_cw: float | None = None) -> Roll | None:
    """Estimate the picture's turn to the degree from the main face's eye line.

    Looks for a face in views turned back by 0, 45, ... 315 degrees (BlazeFace
    finds faces within about 45 degrees of upright), starting with `hint_cw`
    (the quarter-turn decision), then refines on the view levelled by the
    estimate, and last by the face mesh's eye line (FINE_MESH), or, where the
    mesh sees no face, on crops around the face at CROP_SCALES (each also
    mirrored, by both detectors: the median of every reading).
    None when no face is found."""
    bases = [0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0]
    if hint_cw is not None:
        bases.sort(key=lambda b: abs(((b - hint_cw) + 180) % 360 - 180))
    best: tuple[float, Detection, float] | None = None
    for base in bases:
        d = _best_face(_rotate_back(image, base))
        if d is None:
            continue
        quality = d.score * _loose_geometry(d)
        angle = (base + eye_roll(d)) % 360
        if best is None or quality > best[2]:
            best = (angle, d, quality)
        if quality > 0.8 and abs(eye_roll(d)) < 30:
            break  # a clear, nearly level face: no need to look further
    if best is None:
        return None
    angle, face, quality = best
    # first refinement: the whole view levelled by the estimate
    view = _rotate_back(image, angle)
    per_model = _level_faces(view)
    d = _best_face(view, per_model)
    if d is None:
        return Roll(angle=float(angle), face=face, quality=float(quality))
    angle = (angle + eye_roll(d)) % 360
    face, quality = d, d.score * _loose_geometry(d)
    # second: crops around the face at CROP_SCALES, each with its mirror image,
    # by both detectors; the median of every reading
    view = _rotate_back(image, angle)
    d0 = _best_face(view)
    if d0 is None:
        return Roll(angle=float(angle), face=face, quality=float(quality))
    if FINE_MESH:
        roll = _mesh_roll(view, d0)
        for _ in range(MESH_RELEVELS):
            if roll is None or abs(roll) <= MESH_LEVEL:
                break
            angle = (angle + roll) % 360  # the mesh reads a tilted face short: level the view, read again
            view = _rotate_back(image, angle)
            d0 = _best_face(view) or d0
            roll = _mesh_roll(view, d0)
        if roll is not None:
            return Roll(angle=float((angle + roll) % 360), face=d0, quality=float(d0.score * _loose_geometry(d0)))
    cx, cy = (d0.box[0] + d0.box[2]) / 2, (d0.box[1] + d0.box[3]) / 2
    rolls = []
    for scale in CROP_SCALES:
        half = scale * max(d0.box[2] - d0.box[0], d0.box[3] - d0.box[1])
        crop = view.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))
        per_model = _level_faces(crop)
        d = _best_face(crop, per_model)
        if d is not None:
            rolls += _mirror_rolls(crop, d, per_model)
            face, quality = d, d.score * _loose_geometry(d)
    if rolls:
        angle = (angle + float(np.median(rolls))) % 360
    return Roll(angle=float(angle), face=face, quality=float(quality))


#: Crops around the face (half side, in face-box widths) read in the last refinement.
CROP_SCALES = (0.9, 1.2, 1.6)

#: The last correction of `fine_angle`: the eye line of the face mesh, averaged with
#: its mirror image's; while that correction is above MESH_LEVEL degrees the view is
#: levelled by it and read again (the mesh reads a tilted face short), at most
#: MESH_RELEVELS times. False: the median of the BlazeFace readings on crops around
#: the face, as before the mesh, which also stands where the mesh sees no face.
#: Chosen on video frames against their eye line (docs/research.md, "The eye line
#: from a face mesh").
FINE_MESH = True
MESH_LEVEL = 2.0
MESH_RELEVELS = 2


def _mesh_roll(view: Image.Image, d: Detection) -> float | None:
    """The face's remaining tilt on the levelled view, from the face mesh's eye
    outlines on a square 1.5 face-box widths wide around it, averaged with the
    negated reading of its mirror image (None: not a face to the mesh)."""
    from faceup.models.facemesh import FaceMeshModel

    cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
    half = 0.75 * max(d.box[2] - d.box[0], d.box[3] - d.box[1])
    crop = view.crop((int(cx - half), int(cy - half), int(cx + half), int(cy + half)))
    mesh = get(FaceMeshModel)
    roll = mesh.eye_roll(crop)
    if roll is None:
        return None
    back = mesh.eye_roll(crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    return roll if back is None else (roll - back) / 2


def _mirror_rolls(view: Image.Image, d: Detection, per_model: dict[str, list[Detection]]) -> list[float]:
    """The face's tilt read on the view (`per_model`: its faces, already found)
    and on its mirror image (negated), by both detectors: the landmark
    regressors' own left-right bias cancels in their median."""
    rolls = [eye_roll(d)]
    mirrored = _level_faces(view.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    for name in ("blazeface_full", "blazeface_short"):
        for found, sign in ((per_model[name], 1.0), (mirrored[name], -1.0)):
            if found:
                best = max(found, key=lambda f: f.score * f.width)
                rolls.append(sign * eye_roll(best))
    return rolls


# --------------------------------------------------------------------------- analysis


ANALYSES = ("faces", "smile", "age", "gender")


def five_landmarks(d: Detection) -> list[list[float]]:
    """BlazeFace gives eyes, nose tip and the mouth centre; the two mouth corners
    are placed on the mouth line, half an eye distance apart, perpendicular to the
    face's vertical axis (an approximation, said so in the README)."""
    kp = d.keypoints
    eyes, down, n_e, _ = _axes(d)
    unit = eyes / max(n_e, 1e-9)
    half = 0.45 * n_e
    mouth = kp[3]
    return [kp[0].tolist(), kp[1].tolist(), kp[2].tolist(), (mouth - unit * half).tolist(), (mouth + unit * half).tolist()]


#: What lies outside the picture in a face crop (and around a picture that is all
#: face, for the detectors): mid grey, the same whether the face came from a big
#: photo or from a tight face crop.
GREY = (128, 128, 128)


def crop_filled(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """`image.crop(box)` in RGB, with GREY (not black) where the box leaves the picture."""
    x0, y0, x1, y1 = box
    out = Image.new("RGB", (x1 - x0, y1 - y0), GREY)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, image.width), min(y1, image.height)
    if ix1 > ix0 and iy1 > iy0:
        out.paste(image.crop((ix0, iy0, ix1, iy1)).convert("RGB"), (ix0 - x0, iy0 - y0))
    return out


def face_crop(image: Image.Image, d: Detection, margin: float = 1.05) -> Image.Image:
    """A square crop around the face with its eye line level: what the smile and
    age/gender models see, at training (train.attributes) and at run time."""
    cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
    side = margin * max(d.box[2] - d.box[0], d.box[3] - d.box[1])
    roll = eye_roll(d)
    x0, y0 = int(cx - side), int(cy - side)
    big = crop_filled(image, (x0, y0, int(cx + side), int(cy + side)))
    big = big.rotate(roll, resample=Image.Resampling.BILINEAR, center=(cx - x0, cy - y0), fillcolor=GREY)
    c = big.width / 2
    return big.crop((int(c - side / 2), int(c - side / 2), int(c + side / 2), int(c + side / 2)))


def aligned_chip(image: Image.Image, d: Detection | None) -> np.ndarray:
    """The chip the gender network takes (float32 3 x 150 x 150, 0..255): the picture
    turned, scaled and shifted so that the eye centres of `d` land where dlib's 5-point
    template puts them (black outside the picture, as dlib's own chips). Without a
    detection, eyes are assumed at 30% and 70% of the width, 40% of the height."""
    from faceup.models.attributes import CHIP_EYES, GENDER_CHIP

    if d is not None:
        i1, i2 = complex(*d.keypoints[0]), complex(*d.keypoints[1])  # right eye (image left), left eye
    else:
        i1 = complex(image.width * 0.3, image.height * 0.4)
        i2 = complex(image.width * 0.7, image.height * 0.4)
    t1, t2 = complex(*CHIP_EYES[0]), complex(*CHIP_EYES[1])
    a = (i2 - i1) / (t2 - t1)  # chip -> picture: a similarity transform
    b = i1 - a * t1
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    chip = rgb.transform((GENDER_CHIP, GENDER_CHIP), Image.Transform.AFFINE,
                         (a.real, -a.imag, b.real, a.imag, a.real, b.imag), Image.Resampling.BILINEAR)
    return np.asarray(chip, np.float32).transpose(2, 0, 1)


#: Detector score for a face in `analyze`. On the crowd photos' validation part:
#: 0.5 -> precision 89%, 0.6 -> 92%, 0.75 -> 98% (recall of their tiny faces is
#: low at any threshold: 27%, 20%, 13%).
DETECT_MIN_SCORE = 0.6


def _detect(image: Image.Image, min_score: float) -> Faces:
    found: list[Detection] = []
    for kind in DETECTORS:
        found += [f for f in get(kind).detect(image, min_score=min_score) if upright_geometry(f) > 0.05]
    return Faces.of(found).merged()


#: A picture with no face found is looked at again with this much grey around it
#: (share of its longer side, each side): a face that fills the whole picture (a
#: selfie, a face crop) is missed by the detectors otherwise. On 64x64 face crops
#: (200 of each smile source): found in 130 -> 199 (SMILEsmileD), 180 -> 190 (GENKI-4K).
ALL_FACE_PAD = 0.25


#: Ways of looking for small faces (benchmarks/detection.py compares them): the
#: whole picture only, or also each tile of an n x n grid (a quarter of a tile's
#: side overlapping), each tile seen at the detector's full input size.
TILINGS = {"whole": 1, "tiles-2": 2, "tiles-3": 3}
DEFAULT_TILING = "tiles-2"  # chosen on the crowd photos' validation part (benchmarks/detection.py)
#: Pictures smaller than this on their longer side are not tiled (their faces are
#: as big, relative to the detector's input, as a tile would make them).
TILE_MIN_SIDE = 320


def _detect_tiled(image: Image.Image, min_score: float, n: int) -> Faces:
    return _tiled(image, n, lambda im: _detect(im, min_score))


def _tiled(image: Image.Image, n: int, detect, whole: bool = True) -> Faces:
    """`detect` on the whole picture (unless `whole` is false) and, for pictures of
    at least TILE_MIN_SIDE, on each tile of an n x n grid (tiles overlap by a
    quarter of their side), merged."""
    found = Faces.of(detect(image)) if whole else Faces.none()
    if n < 2 or max(image.size) < TILE_MIN_SIDE:
        return found
    w, h = image.size
    tw, th = w / n * 1.25, h / n * 1.25
    parts = [found]
    for i in range(n):
        for j in range(n):
            x0 = min(max(0.0, i * w / n - (tw - w / n) / 2), w - tw)
            y0 = min(max(0.0, j * h / n - (th - h / n) / 2), h - th)
            box = (int(x0), int(y0), int(x0 + tw), int(y0 + th))
            parts.append(Faces.of(detect(image.crop(box))).shifted(box[0], box[1]))
    return Faces.joined(parts).merged()


#: What is tried, in order, when no face is found in the picture as it is: grey
#: room around it (a fraction of its longer side each way), optionally with the
#: contrast stretched by histogram equalisation (dark, faded or high-contrast
#: pictures). benchmarks/face_crops.py compares them.
FALLBACKS: dict[str, tuple[tuple[float, bool], ...]] = {
    "pad": ((ALL_FACE_PAD, False),),
    "pads": ((ALL_FACE_PAD, False), (0.6, False)),
    "pad-eq": ((ALL_FACE_PAD, False), (ALL_FACE_PAD, True)),
    "pads-eq": ((ALL_FACE_PAD, False), (0.6, False), (ALL_FACE_PAD, True)),
}
DEFAULT_FALLBACK = "pad"


def _retry(image: Image.Image, min_score: float, pad_fraction: float, equalize: bool) -> Faces:
    from PIL import ImageOps

    pad = max(1, int(pad_fraction * max(image.size)))
    seen = ImageOps.equalize(image.convert("L")).convert("RGB") if equalize else image
    padded = crop_filled(seen, (-pad, -pad, image.width + pad, image.height + pad))
    return _detect(padded, min_score).shifted(-pad, -pad)


def detect_all(image: Image.Image, min_score: float = DETECT_MIN_SCORE, tiling: str = DEFAULT_TILING,
               fallback: str = DEFAULT_FALLBACK) -> Faces:
    """Faces in an upright picture, from both BlazeFace models, merged (in the
    picture's coordinates; a box may reach past the border of a picture that is all face)."""
    found = _detect_tiled(image, min_score, TILINGS[tiling])
    for pad_fraction, equalize in FALLBACKS[fallback]:
        if len(found):
            break
        found = _retry(image, min_score, pad_fraction, equalize)
    return found


#: A picture in which no face is found is taken as a face crop (a thumbnail, an ID
#: picture, a crop from a photo) when it is shaped like one: at most this many
#: pixels on its longer side, its sides within WHOLE_PICTURE_ASPECT of each other,
#: and the detectors, looking again at it padded with a lower score
#: (WHOLE_PICTURE_MIN_SCORE), find a face covering at least WHOLE_PICTURE_MIN_AREA
#: of it, and the face-crop witness (models.facecrop) takes the whole picture for
#: a face crop. The score and the witness's bar were chosen on validation data by
#: a rule written before (benchmarks/whole_picture.py; docs/research.md): on
#: held-out scenes, crowds, everyday photos and street frames it fired on none.
WHOLE_PICTURE_MAX_SIDE = 256
WHOLE_PICTURE_ASPECT = 1.67
WHOLE_PICTURE_MIN_AREA = 0.25
WHOLE_PICTURE_MIN_SCORE: float | None = 0.2  # None: the rule is off
#: ... and the face-crop witness (models.facecrop) gives it at least this P(face crop).
WHOLE_PICTURE_MIN_P: float | None = 0.5


def looks_like_a_crop(image: Image.Image) -> bool:
    w, h = image.size
    return max(w, h) <= WHOLE_PICTURE_MAX_SIDE and max(w, h) <= WHOLE_PICTURE_ASPECT * min(w, h)


def whole_picture_face(image: Image.Image, min_score: float | None = None, witness: bool = True) -> Detection | None:
    """The face of a picture shaped like a face crop in which detect_all found none:
    the best face the detectors see at `min_score` (default
    WHOLE_PICTURE_MIN_SCORE) in the padded picture, if it covers at least
    WHOLE_PICTURE_MIN_AREA of the picture and (with `witness`) the face-crop
    witness agrees; else None."""
    min_score = WHOLE_PICTURE_MIN_SCORE if min_score is None else min_score
    if min_score is None or not looks_like_a_crop(image):
        return None
    w, h = image.size
    seen = _retry(image, min_score, ALL_FACE_PAD, False).clipped(w, h)
    best = None
    for d in seen:
        x0, y0, x1, y1 = d.box
        if (x1 - x0) * (y1 - y0) >= WHOLE_PICTURE_MIN_AREA * w * h and (best is None or d.score > best.score):
            best = d
    if best is not None and witness and WHOLE_PICTURE_MIN_P is not None:
        from faceup.models.facecrop import FaceCropModel

        if get(FaceCropModel).p_face([image])[0] < WHOLE_PICTURE_MIN_P:
            return None
    return best


def largest_face(image: Image.Image, min_score: float = DETECT_MIN_SCORE) -> Detection | None:
    """The largest face detect_all finds (None if none): the face of a picture of one face."""
    return detect_all(image, min_score).largest()


def main_face_crop(image: Image.Image, min_score: float = DETECT_MIN_SCORE) -> Image.Image | None:
    """The crop of the largest face (how training pictures of one face each are cut)."""
    d = largest_face(image, min_score)
    return None if d is None else face_crop(image, d)


def analyze(image: Image.Image, only: tuple[str, ...] = ANALYSES) -> Faces:
    """Every face of the upright picture (boxes cut to it), with its five
    landmarks and the analyses asked for as attributes."""
    found, whole = detect_all(image), False
    if not len(found):
        crop_face = whole_picture_face(image)
        if crop_face is None:
            return Faces.none()
        found, whole = Faces.of([crop_face]), True
    dets = list(found)
    rows: dict[str, np.ndarray] = {"landmarks": np.array([five_landmarks(d) for d in dets], dtype=np.float64),
                                   "whole_picture": np.full(len(dets), whole)}
    crops = [face_crop(image, d) for d in dets]
    if "smile" in only:
        rows["smile"] = np.asarray(get(SmileModel).predict(crops), dtype=np.float64)
    cnn = get(AgeGenderModel).predict(crops) if "age" in only or "gender" in only else []
    if "age" in only:
        rows["age"] = np.array([float(age) for age, _, _ in cnn], dtype=np.float64)
    if "gender" in only:
        readout = get(GenderModel).predict([aligned_chip(image, d) for d in dets])
        genders = [gender_of(c, r) for c, r in zip(cnn, readout)]
        rows["gender"] = np.array([g for g, _ in genders], dtype=object)
        rows["gender_score"] = np.array([float(p) for _, p in genders], dtype=np.float64)
    return found.clipped(*image.size).with_attributes(**rows)


#: Below this age (as the age/gender CNN reads it) a face's gender is the CNN's, which
#: learnt UTKFace's children; the face network's read-out reads children worse
#: (README, "Gender across sources"). Fixed at 13 before it was measured.
CNN_GENDER_BELOW_AGE = 13.0


def gender_of(cnn: tuple[float, str, float], readout: tuple[str, float]) -> tuple[str, float]:
    """(gender, score) of one face from the age/gender CNN's (age, gender, score) and
    the face network read-out's (gender, score)."""
    return (cnn[1], cnn[2]) if cnn[0] < CNN_GENDER_BELOW_AGE else readout
