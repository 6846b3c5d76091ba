"""Fuzzing: mutated pictures of every supported format through predict, fix,
analyze and background; and the HTTP API driven from its own OpenAPI schema.

Every call either answers or raises faceup's own typed error, within a time and
memory budget; a picture `fix` writes always decodes, at the turned size.
`make test` runs a few hundred cases; `make fuzz` runs the same with many more
(FACEUP_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import io
import os
import resource
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage import data as skdata

from faceup import imageio, pipeline
from faceup.background import Replacement
from faceup.errors import FaceupError

#: A slow file: left out of `make test-fast` (pytest -m "not slow").
pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FACEUP_FUZZ_EXAMPLES", "400"))
#: Each call's budget (seconds), and the growth of peak memory allowed over the whole run (MB).
SECONDS, PEAK_GROWTH_MB = 10.0, 600
OPTIONS = pipeline.Options(max_pixels=4_000_000)


def _seeds() -> dict[str, bytes]:
    """Small valid pictures of every format faceup reads, frames and pages included."""
    base = Image.fromarray(skdata.astronaut()).resize((72, 48))
    grey16 = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), base.transpose(Image.Transpose.FLIP_TOP_BOTTOM)]

    def save(img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "jpeg": save(base, "JPEG", quality=85, exif=exif.tobytes()),
        "jpeg-progressive": save(base, "JPEG", progressive=True),
        "png": save(base, "PNG"),
        "png-16bit-grey": save(grey16, "PNG"),
        "png-palette": save(base.convert("P"), "PNG"),
        "apng": save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50),
        "gif": save(frames[0].convert("P"), "GIF", save_all=True,
                    append_images=[f.convert("P") for f in frames[1:]], duration=50),
        "webp": save(base, "WEBP", quality=80),
        "webp-animated": save(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True),
        "tiff": save(base, "TIFF"),
        "tiff-deflate-pages": save(frames[0], "TIFF", save_all=True, append_images=frames[1:],
                                   compression="tiff_adobe_deflate"),
        "bmp": save(base, "BMP"),
        **({"heif": save(base, "HEIF", quality=60)} if _heif_writes() else {}),  # needs the heic extra
        "avif": save(base, "AVIF", quality=60),
        "avif-animated": save(frames[0], "AVIF", save_all=True, append_images=frames[1:], duration=50),
    }


def _heif_writes() -> bool:
    from faceup import imageio

    return imageio.heif_writes()


SEEDS = _seeds()


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "absurd", "repeat"]))
        n = len(data)
        if n < 2:
            break
        at = draw(st.integers(0, n - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[max(1, at):]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "absurd":  # a size, count or offset field in the header set to an extreme
            at = draw(st.integers(0, max(0, min(n - 4, 256))))
            data[at:at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00",
                                                    b"\x00\x01\x00\x00", b"\xff\xff\x00\x00"]))
        else:  # a chunk, frame or page repeated
            end = draw(st.integers(at, min(n, at + 4096)))
            data[end:end] = data[at:end]
    return name, bytes(data)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _check_written(fixed: pipeline.Fixed) -> None:
    out = Image.open(io.BytesIO(fixed.data))
    out.load()
    p = fixed.prediction
    if p.size and p.turned and p.angle is None:
        w, h = p.size
        assert out.size == ((h, w) if p.rotation in (90, 270) else (w, h))


@pytest.fixture(scope="module")
def peak_before():
    pipeline.predict(SEEDS["jpeg"])  # models loaded before the budget is taken
    pipeline.analyze(SEEDS["jpeg"])
    pipeline.background(SEEDS["jpeg"], Replacement(color="white"))
    before = _peak_mb()
    yield before
    assert _peak_mb() - before < PEAK_GROWTH_MB, f"peak memory grew by {_peak_mb() - before:.0f} MB"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(case=mutated())
def test_mutated_pictures_are_answered_or_refused_with_faceups_own_error(peak_before, case):
    name, data = case
    for op in ("predict", "fix", "analyze", "background"):
        start = time.perf_counter()
        try:
            if op == "predict":
                pred = pipeline.predict(data, OPTIONS)
                assert pred.error is None or isinstance(pred.exception, FaceupError)
            elif op == "fix":
                _check_written(pipeline.fix(data, OPTIONS))
            elif op == "analyze":
                res = pipeline.analyze(data, OPTIONS)
                assert res.prediction.error is None or isinstance(res.prediction.exception, FaceupError)
            else:
                pipeline.background(data, Replacement(color="white"), OPTIONS)
        except FaceupError:
            pass
        took = time.perf_counter() - start
        assert took < SECONDS, f"{op} on a mutated {name} took {took:.1f} s"


def test_every_seed_is_read_and_fixed():
    """The seeds themselves are valid: the fuzzing starts from pictures faceup handles."""
    for name, data in SEEDS.items():
        pic = imageio.read(data, keep_frames=True)
        assert pic.size[0] > 0, name
        _check_written(pipeline.fix(data))


# ---------------------------------------------------------------- the HTTP API, from its schema

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def api_url():
    from conftest import start_server

    proc, url = start_server({"FACEUP_MAX_UPLOAD_BYTES": str(4 << 20)})
    yield url
    proc.terminate()
    proc.wait(10)


def test_the_api_never_answers_5xx(api_url):
    schema = schemathesis.openapi.from_url(api_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/fix", "/predict", "/analyze", "/background"}
    statuses: list[int] = []
    for operation in operations:
        @settings(max_examples=max(10, EXAMPLES // 10), deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        @given(case=operation.as_strategy())
        def call(case):
            response = case.call(base_url=api_url, timeout=60)
            statuses.append(response.status_code)
            where = f"{case.method} {case.path}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
            if response.status_code >= 400:
                assert "error" in response.json(), f"{where}: {response.text[:300]}"

        call()
    assert len(statuses) >= 3 * len(operations)
    print(f"{len(statuses)} API calls:", {code: statuses.count(code) for code in sorted(set(statuses))})
