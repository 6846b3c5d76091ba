"""Why this way up: what the orientation decision rested on.

- An occlusion map computed with the classifier itself (ONNX): the picture, as the
  classifier sees it, is covered cell by cell with grey (an 8 x 8 grid, all in
  one network run) and each cell's value is how much the log-probability of the
  chosen turn falls when that cell is hidden (one pass, no test-time
  augmentation). Positive: the cell pushed toward the decision; negative: it
  pushed against it.
- The face evidence: BlazeFace's faces in each of the four quarter turns, with
  their boxes and landmarks mapped back onto the picture as displayed, and the
  evidence each turn earned from their landmark geometry.

`faceup explain IN -o why.png`, `POST /explain` and the web page's "why?" view
draw both beside the upright picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from faceup import imageio, orientation, pipeline
from faceup.calibration import log_softmax
from faceup.faces import Faces
from faceup.models.orientation import INPUT_SIZE, ROTATIONS
from faceup.models.preprocess import square_input

#: Cells on a side of the occlusion grid.
GRID = 8
#: The grey that hides a cell (the middle of the input range).
HIDDEN = 128
#: The colour scale of the map is fixed, so that it says how much the answer
#: moves: a cell is drawn fully coloured when hiding it moves the chosen turn's
#: log-probability by this much (about 2.7 times less or more likely), ...
FULL_SCALE = 1.0
#: ... and not at all below this: a map whose every cell stays below it is
#: "nothing here changes the answer", not noise drawn as an explanation.
NOTHING = 0.01


@dataclass
class Explanation:
    prediction: pipeline.Prediction
    #: GRID x GRID: the fall of the chosen turn's log-probability when the cell is
    #: hidden (rows top to bottom over the displayed picture).
    occlusion: np.ndarray
    #: The classifier's own probabilities of (0, 90, 180, 270), one pass.
    classifier: tuple[float, ...]
    #: The face evidence of each turn (0, 90, 180, 270), and the faces behind it.
    face_evidence: tuple[float, ...]
    #: faces.Faces in the displayed picture's pixels, with the attributes `turn_cw`
    #: (the quarter turn, clockwise as `rotation`, under which the face is upright)
    #: and `geometry` (0..1: how upright its landmarks are in that view).
    faces: Faces = field(default_factory=Faces.none)
    #: The picture's bytes, when it was given as a file object (read once, here;
    #: `draw` uses them when given the same, now exhausted, file object).
    data: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        # float64 before rounding (a float32 0.0001 prints as 9.999999747378752e-05), and
        # + 0.0 so that a rounded -0.0 prints as 0.0
        return {**self.prediction.to_json(),
                "occlusion": (np.round(self.occlusion.astype(np.float64), 4) + 0.0).tolist(),
                "classifier": [round(v, 4) for v in self.classifier],
                "face_evidence": [round(v, 4) for v in self.face_evidence],
                "faces": [{"turn": int(f.turn_cw), "box": [round(v, 1) for v in f.box],
                           "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in f.keypoints],
                           "score": round(f.score, 3), "geometry": round(float(f.geometry), 3)} for f in self.faces]}


def explain(source: pipeline.Source, options: pipeline.Options | None = None, path: str | None = None) -> Explanation:
    """The prediction, and what it rested on. Raises FaceupError for a bad picture."""
    from faceup import faces

    options = options or pipeline.Options()
    data = None
    if hasattr(source, "read") and not isinstance(source, Image.Image):  # a file object: read it once
        source = data = source.read()
    pred = pipeline.predict(source, options, path)
    if pred.exception is not None:
        raise pred.exception
    picture = imageio.read(source, max_pixels=options.max_pixels, reduce_to=pipeline.PREDICT_DECODE_SIDE)
    view = imageio.eight_bit(picture.image)
    model = orientation.model()
    square = square_input(view, INPUT_SIZE)
    k = ROTATIONS.index(pred.rotation)
    batch = [square]
    cell = INPUT_SIZE // GRID
    for r in range(GRID):
        for c in range(GRID):
            hidden = square.copy()
            hidden[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = HIDDEN
            batch.append(hidden)
    logp = log_softmax(log_softmax(model.logits(np.stack(batch))) / model.temperature)
    p = np.exp(logp)
    # in log-probability: a sure classifier (p = 0.9999) still shows what it leaned on
    occlusion = (logp[0, k] - logp[1:, k]).reshape(GRID, GRID)

    seen, evidence = [], []
    w, h = view.size
    for fv in faces.views(view):
        evidence.append(fv.evidence)
        found = fv.detections
        # the view turned j quarter turns back is upright when rotation is 90 j
        seen.append(found.with_attributes(
            turn_cw=np.full(len(found), (90 * fv.turn) % 360),
            geometry=np.array([faces.upright_geometry(d) for d in found], dtype=np.float64),
        ).unturned(fv.turn, w, h))
    return Explanation(prediction=pred, occlusion=occlusion, classifier=tuple(float(v) for v in p[0]),
                       face_evidence=tuple(evidence), faces=faces.Faces.joined(seen, keep=True), data=data)


def draw(source: pipeline.Source, why: Explanation, options: pipeline.Options | None = None,
         side: int = 512) -> Image.Image:
    """One picture: the input with the occlusion map over it (red: pushed toward
    the decision, blue: against) and every face found in any turn (the turn's
    number by it; green when its landmarks are upright in that turn), beside the
    upright picture, with the figures below."""
    options = options or pipeline.Options()
    if hasattr(source, "read") and not isinstance(source, Image.Image):
        source = source.read() or why.data  # the file object `explain` read already
    picture = imageio.read(source, max_pixels=options.max_pixels, reduce_to=side)
    shown = imageio.eight_bit(picture.image).convert("RGB")
    scale = side / max(shown.size)
    shown = shown.resize((max(1, round(shown.width * scale)), max(1, round(shown.height * scale))))
    left = Image.alpha_composite(shown.convert("RGBA"), _heat(why.occlusion, shown.size)).convert("RGB")
    g = ImageDraw.Draw(left)
    fw, fh = (why.prediction.size or shown.size)
    fs = shown.width / fw if fw else 1.0
    for f in why.faces:
        colour = (40, 220, 90) if f.geometry >= 0.5 else (240, 200, 40)
        g.rectangle([v * fs for v in f.box], outline=colour, width=2)
        for x, y in f.keypoints[:4]:
            g.ellipse((x * fs - 2, y * fs - 2, x * fs + 2, y * fs + 2), fill=colour)
        g.text((f.box[0] * fs + 3, f.box[1] * fs + 2), f"{f.turn_cw}", fill=colour)
    upright = pipeline.upright_image(picture, why.prediction, options).convert("RGB")
    upright.thumbnail((side, side))
    p = why.prediction
    decision = (f"turned {p.rotation} deg clockwise; turned back" if p.turned else
                f"judged {p.rotation} deg but not sure enough: left as it is" if p.rotation else "already upright")
    top = float(np.abs(why.occlusion).max())
    lines = [f"{decision} (confidence {p.confidence:.3f})",
             "classifier 0/90/180/270: " + " / ".join(f"{v:.3f}" for v in why.classifier),
             "face evidence 0/90/180/270: " + " / ".join(f"{v:.2f}" for v in why.face_evidence)
             + f"; {len(why.faces)} face(s) seen",
             ("map: nothing here changes the answer (hiding any one part moves it by less than "
              f"{NOTHING} in log-probability)") if top < NOTHING else
             (f"map: red pushed toward this turn, blue against; full colour = {FULL_SCALE:g} in log-probability "
              f"(the strongest part here: {top:.2f})")]
    from PIL import ImageFont

    font = ImageFont.load_default(size=15)
    line_h = 20
    width = left.width + 12 + upright.width
    width = max(width, 8 + max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(x, font=font)) for x in lines))
    text_h = 10 + line_h * len(lines) + 8
    out = Image.new("RGB", (width, max(left.height, upright.height) + text_h), "white")
    out.paste(left, (0, 0))
    out.paste(upright, (left.width + 12, 0))
    t = ImageDraw.Draw(out)
    y0 = max(left.height, upright.height) + 10
    for i, line in enumerate(lines):
        t.text((4, y0 + i * line_h), line, fill="black", font=font)
    return out


def _heat(occlusion: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """RGBA: red where hiding hurt the decision, blue where it helped, as opaque
    as the cell mattered on a fixed scale (FULL_SCALE: 75%; below NOTHING: clear)."""
    v = np.clip(occlusion / FULL_SCALE, -1.0, 1.0) * (np.abs(occlusion) >= NOTHING)
    rgba = np.zeros((*v.shape, 4))
    rgba[..., 0] = (v > 0) * 255
    rgba[..., 2] = (v < 0) * 255
    rgba[..., 3] = np.abs(v) * 190
    small = Image.fromarray(rgba.astype(np.uint8), "RGBA")
    return small.resize(size, Image.Resampling.BICUBIC)
