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


def test_the_map_shows_what_moves_the_decision_and_the_face_is_seen_in_the_upright_turn(coffee):
    data = jpeg_bytes(turn(coffee, 90))
    why = explain.explain(data)
    k = [0, 90, 180, 270].index(why.prediction.rotation)
    # hiding, in the picture itself, the part the map marks as pushing hardest toward the
    # decision lowers the classifier's probability of it; hiding the part marked as
    # pushing against it does not lower it as much
    img = Image.open(io.BytesIO(data)).convert("RGB")
    cw, ch = img.width / explain.GRID, img.height / explain.GRID

    def hidden(r: int, c: int) -> bytes:
        copy = img.copy()
        copy.paste((explain.HIDDEN,) * 3, (round(c * cw), round(r * ch), round((c + 1) * cw), round((r + 1) * ch)))
        return jpeg_bytes(copy, quality=95)

    top = np.unravel_index(np.argmax(why.occlusion), why.occlusion.shape)
    low = np.unravel_index(np.argmin(why.occlusion), why.occlusion.shape)
    assert why.occlusion[top] > 0.05, why.occlusion
    p_top = explain.explain(hidden(*top)).classifier[k]
    p_low = explain.explain(hidden(*low)).classifier[k]
    assert p_top < why.classifier[k] and p_top < p_low


def test_the_face_is_seen_in_the_upright_turn(astronaut):
    why = explain.explain(jpeg_bytes(turn(astronaut, 90)))
    assert why.prediction.rotation == 90
    upright_faces = [f for f in why.faces if f.turn_cw == 90 and f.geometry >= 0.5]
    assert upright_faces, why.faces
    assert why.face_evidence[1] == max(why.face_evidence)  # the 90 turn's evidence is the strongest


def test_post_explain_draws_or_answers_json(tmp_path, astronaut_small):
    from conftest import start_server

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
