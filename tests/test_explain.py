"""Why this way up: `faceup explain`, POST /explain (a real server), and what the
explanation holds."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from conftest import faceup_cli, jpeg_bytes, turn

from faceup import explain, pipeline

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "faceup" / "samples"


def test_explain_answers_for_every_sample_and_a_picture_without_faces(tmp_path, coffee):
    face_free = tmp_path / "coffee-turned.jpg"
    face_free.write_bytes(jpeg_bytes(turn(coffee, 270)))
    for src in [*sorted(SAMPLES.iterdir()), face_free]:
        out = tmp_path / f"{src.stem}.why.png"
        res = faceup_cli("explain", str(src), "-o", str(out), "--json")
        assert res.returncode == 0, res.stderr
        why = json.loads(res.stdout)
        assert why["rotation"] == pipeline.predict(src).rotation  # the same decision as predict
        assert np.asarray(why["occlusion"]).shape == (explain.GRID, explain.GRID)
        assert abs(sum(why["classifier"]) - 1) < 1e-3 and len(why["face_evidence"]) == 4
        img = Image.open(out)
        assert img.format == "PNG" and img.width > 300


def test_the_map_is_the_fall_of_the_decision_and_the_face_is_seen_in_the_upright_turn(astronaut):
    from faceup import imageio, orientation, pipeline
    from faceup.calibration import log_softmax
    from faceup.models.orientation import INPUT_SIZE
    from faceup.models.preprocess import square_input

    data = jpeg_bytes(turn(astronaut, 90))
    why = explain.explain(data)
    assert why.prediction.rotation == 90
    upright_faces = [f for f in why.faces if f.turn_cw == 90 and f.geometry >= 0.5]
    assert upright_faces, why.faces
    assert why.face_evidence[1] == max(why.face_evidence)  # the 90 turn's evidence is the strongest
    # the map at the face's cell is the fall of the 90 turn's log-probability when that cell is hidden
    # (how much the classifier leans on the face is the model's business, not this code's: this
    # session's classifier is sure of the astronaut from the whole figure)
    x0, y0, x1, y1 = upright_faces[0].box
    w, h = why.prediction.size
    r, c = int((y0 + y1) / 2 / h * explain.GRID), int((x0 + x1) / 2 / w * explain.GRID)
    square = square_input(imageio.read(data, reduce_to=pipeline.PREDICT_DECODE_SIDE).image, INPUT_SIZE)
    cell = INPUT_SIZE // explain.GRID
    hidden = square.copy()
    hidden[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = explain.HIDDEN
    m = orientation.model()
    logp = log_softmax(log_softmax(m.logits(np.stack([square, hidden]))) / m.temperature)
    assert abs((logp[0, 1] - logp[1, 1]) - why.occlusion[r, c]) < 1e-3
    assert np.abs(why.occlusion).max() > 0  # hiding something changes the answer somewhere


def test_post_explain_draws_or_answers_json(tmp_path, astronaut_small):
    from test_server import start_server

    proc, url = start_server()
    try:
        files = {"file": ("照片.jpg", jpeg_bytes(turn(astronaut_small, 180)), "image/jpeg")}
        r = httpx.post(url + "/explain", files=files, timeout=60)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(r.content)).width > 300
        r = httpx.post(url + "/explain", files=files, data={"as_json": "true"}, timeout=60)
        assert r.status_code == 200 and r.json()["rotation"] == 180 and len(r.json()["occlusion"]) == explain.GRID
        r = httpx.post(url + "/explain", files={"file": ("x.jpg", b"nope" * 50, "image/jpeg")}, timeout=60)
        assert r.status_code == 415 and "error" in r.json()
    finally:
        proc.terminate()
        proc.wait(10)


def test_explain_and_draw_take_a_file_object_as_the_other_calls_do(astronaut_small):
    import io

    from faceup import explain as why

    data = jpeg_bytes(turn(astronaut_small, 90))
    f = io.BytesIO(data)
    result = why.explain(f)
    assert result.prediction.rotation == 90
    assert why.draw(f, result).size[0] > 300  # the same, now read, file object
