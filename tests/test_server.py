"""The HTTP service, as a real server process on 127.0.0.1."""

from __future__ import annotations

import io
import os
import subprocess

import httpx
import pytest
from PIL import Image

from conftest import jpeg_bytes, mean_abs_diff, start_server, turn
from test_imageio import png_bomb

CONTRACT_KEYS = ["path", "rotation", "confidence", "confident", "angle", "exif_orientation", "error"]


def test_fix_returns_the_upright_picture_with_headers(server, astronaut):
    data = jpeg_bytes(turn(astronaut, 90))
    r = httpx.post(server + "/fix", files={"file": ("in.jpg", data, "image/jpeg")}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["X-Faceup-Rotation"] == "90"
    assert float(r.headers["X-Faceup-Confidence"]) > 0.5
    assert "X-Faceup-Angle" in r.headers
    assert mean_abs_diff(Image.open(io.BytesIO(r.content)), astronaut) < 4


def test_curl_command_from_the_readme_works(server, astronaut, tmp_path):
    src, out = tmp_path / "in.jpg", tmp_path / "out.jpg"
    src.write_bytes(jpeg_bytes(turn(astronaut, 180)))
    curl = subprocess.run(["curl", "-sS", "-o", str(out), "-F", f"file=@{src}", server + "/fix"], capture_output=True)
    if curl.returncode == 127:
        pytest.skip("curl is not installed")
    assert curl.returncode == 0, curl.stderr
    assert mean_abs_diff(Image.open(out), astronaut) < 4


def test_fix_can_change_the_format(server, astronaut_small):
    buf = io.BytesIO()
    turn(astronaut_small, 270).save(buf, "PNG")
    r = httpx.post(server + "/fix", files={"file": ("a.png", buf.getvalue())}, data={"format": "webp"}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(r.content)).format == "WEBP"


def test_an_avif_comes_back_upright_as_avif(server, astronaut_small):
    buf = io.BytesIO()
    turn(astronaut_small, 90).save(buf, "AVIF", quality=90)
    r = httpx.post(server + "/fix", files={"file": ("a.avif", buf.getvalue())}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/avif", r.text
    assert "a.upright.avif" in r.headers["content-disposition"]
    out = Image.open(io.BytesIO(r.content))
    assert out.format == "AVIF" and mean_abs_diff(out, astronaut_small) < 4


def test_predict_one_and_many(server, astronaut_small):
    one = httpx.post(server + "/predict", files={"file": ("a.jpg", jpeg_bytes(turn(astronaut_small, 90)))}, timeout=60)
    assert one.status_code == 200
    assert list(one.json()) == CONTRACT_KEYS and one.json()["rotation"] == 90 and one.json()["path"] == "a.jpg"
    files = [("file", (f"{r}.jpg", jpeg_bytes(turn(astronaut_small, r)))) for r in (270, 0, 180)]
    files.append(("file", ("bad.jpg", b"not a picture at all" * 20)))
    many = httpx.post(server + "/predict", files=files, timeout=60)
    assert many.status_code == 200
    answers = many.json()
    assert [a["path"] for a in answers] == ["270.jpg", "0.jpg", "180.jpg", "bad.jpg"]
    assert [a["rotation"] for a in answers] == [270, 0, 180, None]
    assert "not a picture" in answers[3]["error"]


def test_many_pictures_are_judged_together_with_the_clis_answers(server, astronaut_small, chelsea, tmp_path):
    """/predict judges its pictures in chunks (one classifier run each): the answers
    are the CLI's `predict --json` lines, in order, a bad part among them."""
    import json

    from conftest import faceup_cli

    names = []
    for i, r in enumerate((90, 0, 270, 180, 90, 0)):
        img = astronaut_small if i % 2 else chelsea
        names.append(f"{i}.jpg")
        (tmp_path / names[-1]).write_bytes(jpeg_bytes(turn(img, r)))
    (tmp_path / "bad.jpg").write_bytes(b"GIF89a" + b"\0" * 300)
    names.insert(3, "bad.jpg")
    files = [("file", (n, (tmp_path / n).read_bytes())) for n in names]
    answers = httpx.post(server + "/predict", files=files, timeout=60).json()
    cli = faceup_cli("predict", "--json", *names, cwd=tmp_path)
    lines = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [a["path"] for a in answers] == names == [x["path"] for x in lines]
    assert answers == lines


def truncated_jpeg(img) -> bytes:
    data = jpeg_bytes(img)
    return data[: len(data) // 2]


BAD_INPUTS = [
    ("empty body", lambda img: {"files": {"file": ("e.jpg", b"")}}, 400),
    ("text file", lambda img: {"files": {"file": ("t.jpg", b"just some text\n" * 40)}}, 415),
    ("truncated jpeg", lambda img: {"files": {"file": ("t.jpg", truncated_jpeg(img))}}, 400),
    ("30 MB file", lambda img: {"files": {"file": ("big.jpg", b"\xff" * (30 * 1024 * 1024))}}, 413),
    ("png bomb", lambda img: {"files": {"file": ("bomb.png", png_bomb())}}, 413),
    ("wrong field", lambda img: {"files": {"picture": ("a.jpg", jpeg_bytes(img))}}, 422),
    ("no body at all", lambda img: {}, 422),
]


@pytest.mark.parametrize("endpoint", ["/fix", "/predict"])
@pytest.mark.parametrize("name,make,status", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_uploads_get_the_right_4xx_and_the_server_keeps_serving(server, astronaut_small, endpoint, name, make, status):
    r = httpx.post(server + endpoint, timeout=60, **make(astronaut_small))
    assert r.status_code == status, (name, r.text)
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in r.text
    assert httpx.get(server + "/health", timeout=5).status_code == 200


def test_info_lists_models_with_sha256(server):
    info = httpx.get(server + "/info", timeout=10).json()
    names = {m["name"]: m for m in info["models"]}
    assert len(names["orientation"]["sha256"]) == 64
    for name in ("angle", "blazeface_full", "blazeface_short", "smile", "agegender", "gender", "segmentation"):
        assert len(names[name]["sha256"]) == 64, name
    assert "CPUExecutionProvider" in names["orientation"]["providers"]
    assert info["version"]


def test_every_endpoint_is_in_the_openapi_docs(server):
    spec = httpx.get(server + "/openapi.json", timeout=10).json()
    for path in ("/fix", "/predict", "/analyze", "/background", "/health", "/info"):
        assert path in spec["paths"]
    assert httpx.get(server + "/docs", timeout=10).status_code == 200
    page = httpx.get(server + "/", timeout=10)
    assert page.status_code == 200 and "faceup" in page.text


def test_api_key_is_required_when_set(astronaut_small):
    proc, url = start_server({"FACEUP_API_KEY": "s3cret"})
    try:
        files = {"file": ("a.jpg", jpeg_bytes(astronaut_small))}
        assert httpx.post(url + "/predict", files=files, timeout=30).status_code == 401
        assert httpx.post(url + "/predict", files=files, headers={"X-API-Key": "wrong"}, timeout=30).status_code == 401
        ok = httpx.post(url + "/predict", files=files, headers={"X-API-Key": "s3cret"}, timeout=30)
        assert ok.status_code == 200
        assert httpx.get(url + "/health", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_fix_fine_turns_by_the_exact_angle(server, astronaut):
    from faceup import geometry

    turned = geometry.rotate(astronaut, 35, expand=True).crop(geometry.crop_box_inscribed(512, 512, 35))
    r = httpx.post(server + "/fix", files={"file": ("t.jpg", jpeg_bytes(turned))}, data={"fine": "true"}, timeout=60)
    assert r.status_code == 200, r.text
    angle = float(r.headers["X-Faceup-Angle"])
    assert 30 < angle < 45
    assert r.headers["X-Faceup-Rotation"] == "0"
    p = httpx.post(server + "/predict", files={"file": ("t.jpg", jpeg_bytes(turned))}, data={"fine": "true"}, timeout=60)
    assert abs(p.json()["angle"] - angle) < 0.01


def test_background_endpoint_colour_picture_and_transparent(server, astronaut_small, coffee):
    data = jpeg_bytes(turn(astronaut_small, 90))
    r = httpx.post(server + "/background", files={"file": ("in.jpg", data)}, data={"color": "#00ff00"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg" and r.headers["X-Faceup-Rotation"] == "90"
    out = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert out.size == (256, 256)
    r, g, b = out.getpixel((250, 5))  # top-right corner: sky, no person
    assert g > 200 and r < 60 and b < 60

    bg = jpeg_bytes(coffee)
    r = httpx.post(server + "/background", files={"file": ("in.jpg", data), "image": ("bg.jpg", bg)}, timeout=60)
    assert r.status_code == 200, r.text

    r = httpx.post(server + "/background", files={"file": ("in.jpg", data)}, data={"transparent": "true"}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).mode == "RGBA"


@pytest.mark.parametrize("name,make,status", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_background_bad_uploads(server, astronaut_small, name, make, status):
    r = httpx.post(server + "/background", timeout=60, data={"color": "white"}, **make(astronaut_small))
    assert r.status_code == status, (name, r.text)
    assert r.json()["error"]


@pytest.mark.parametrize("form", [{}, {"color": "white", "blur": "3"}, {"color": "nope"},
                                  {"transparent": "true", "format": "jpeg"}])
def test_background_bad_choices_are_422(server, astronaut_small, form):
    r = httpx.post(server + "/background", files={"file": ("a.jpg", jpeg_bytes(astronaut_small))}, data=form, timeout=60)
    assert r.status_code == 422, r.text
    assert "Traceback" not in r.text and r.json()["error"]


def test_background_with_a_bad_background_picture(server, astronaut_small):
    r = httpx.post(server + "/background", files={"file": ("a.jpg", jpeg_bytes(astronaut_small)),
                                                  "image": ("bg.jpg", b"text, not a picture" * 20)}, timeout=60)
    assert r.status_code == 415 and "background picture" in r.json()["error"]


def test_presets_are_listed_and_taken_by_background(server, astronaut_small):
    listed = httpx.get(server + "/presets", timeout=10).json()
    names = [p["name"] for p in listed]
    assert len(names) >= 7 and "auto" in names and "rainbow" in names
    for name in ("rainbow", "auto", "gradient:top=white,bottom=#203040"):
        r = httpx.post(server + "/background", data={"preset": name}, timeout=60,
                       files={"file": ("in.jpg", jpeg_bytes(astronaut_small), "image/jpeg")})
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == astronaut_small.size
    r = httpx.post(server + "/background", data={"preset": "nope"}, timeout=60,
                   files={"file": ("in.jpg", jpeg_bytes(astronaut_small), "image/jpeg")})
    assert r.status_code == 422 and "one of" in r.json()["error"]


def test_without_the_heic_extra_a_heic_upload_is_refused_with_the_install_command(tmp_path, astronaut):
    # pillow-heif (the heic extra) blocked: the server reads HEIC but cannot write it back
    pytest.importorskip("pillow_heif", reason="making the HEIC upload needs the heic extra")
    fake = tmp_path / "blocked" / "pillow_heif"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed', name='pillow_heif')\n")
    buf = io.BytesIO()
    turn(astronaut, 90).save(buf, "HEIF", quality=90)
    path = f"{tmp_path / 'blocked'}:{os.environ.get('PYTHONPATH', '')}"
    proc, url = start_server({"PYTHONPATH": path})
    try:
        refused = httpx.post(url + "/fix", files={"file": ("in.heic", buf.getvalue())}, timeout=60)
        as_jpeg = httpx.post(url + "/fix", files={"file": ("in.heic", buf.getvalue())}, data={"format": "jpeg"},
                             timeout=60)
    finally:
        proc.terminate()
        proc.wait(10)
    assert refused.status_code == 501
    assert "pip install 'faceup[heic]'" in refused.json()["error"]
    assert as_jpeg.status_code == 200 and as_jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(as_jpeg.content)).size == astronaut.size


def test_openapi_describes_every_json_answer_and_the_headers_are_exposed(server, astronaut_small):
    spec = httpx.get(server + "/openapi.json", timeout=10).json()
    for path in ("/predict", "/analyze", "/info"):
        op = spec["paths"][path].get("post") or spec["paths"][path].get("get")
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema and schema != {}, path
    props = spec["components"]["schemas"]["PredictionOut"]["properties"]
    assert list(props) == CONTRACT_KEYS
    r = httpx.post(server + "/fix", files={"file": ("a.jpg", jpeg_bytes(turn(astronaut_small, 90)), "image/jpeg")},
                   timeout=60)
    exposed = [h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")]
    sent = [h.lower() for h in r.headers if h.lower().startswith("x-faceup-")]
    assert len(sent) == 6 and all(h in exposed for h in sent), (sent, exposed)


def test_options_are_checked_whole_when_made():
    import pytest

    from faceup import pipeline
    from faceup.errors import BadOptionError, UnsupportedFormatError

    with pytest.raises(UnsupportedFormatError):
        pipeline.Options(format="xyz")
    for bad in (7.0, -0.1, float("nan")):
        with pytest.raises(BadOptionError):
            pipeline.Options(min_confidence=bad)
    with pytest.raises(BadOptionError):
        pipeline.Options(max_pixels=0)
