"""The one model interface: typed access, a runtime (threads, execution
providers) set at creation, a lock per model, and the choice shown in /info."""

import threading

import httpx
import pytest
from conftest import faceup_cli, start_server

from faceup.errors import BadOptionError
from faceup.models import base
from faceup.models.angle import AngleModel
from faceup.models.orientation import OrientationModel


@pytest.fixture
def fresh_runtime():
    before = base.runtime()
    yield
    base.configure(before.threads, before.providers)


def test_a_model_is_fetched_by_its_class_typed_and_once():
    m = base.get(OrientationModel)
    assert type(m) is OrientationModel
    assert base.get(OrientationModel) is m
    assert base.get_model("orientation") is m  # the name-based door reaches the same instance
    with pytest.raises(KeyError, match="known: .*orientation"):
        base.get_model("nope")


def test_each_model_loads_under_its_own_lock(fresh_runtime):
    """Loading one model never waits for another: hold one model's lock and load
    a second beside it."""
    base.configure(threads=1)
    a, b = base.get(OrientationModel), base.get(AngleModel)
    assert a._lock is not b._lock
    done = threading.Event()
    with a._lock:
        t = threading.Thread(target=lambda: (b.session, done.set()))
        t.start()
        assert done.wait(30), "loading the angle model waited for the orientation model's lock"
    t.join()


def test_the_runtime_is_given_at_creation_and_an_unknown_provider_is_refused_at_once(fresh_runtime):
    with pytest.raises(BadOptionError, match="unknown execution provider 'warp'.*cuda"):
        base.configure(providers=["warp"])
    with pytest.raises(BadOptionError, match="threads"):
        base.Runtime(threads=0)
    old = base.get(OrientationModel)
    rt = base.configure(threads=1, providers=["cuda", "cpu"])
    assert rt.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    m = base.get(OrientationModel)
    assert m is not old and m.runtime == rt  # made again with the new runtime
    # CUDA is used only where this onnxruntime has it; the CPU is always there, last
    expected = (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in base.ort.get_available_providers()
                else []) + ["CPUExecutionProvider"]
    assert m.session.get_providers() == expected
    assert m.session.get_session_options().intra_op_num_threads == 1


def test_info_shows_the_providers_asked_for_and_used():
    proc, url = start_server({"FACEUP_PROVIDERS": "cuda"})
    try:
        info = httpx.get(url + "/info", timeout=10).json()
    finally:
        proc.terminate()
        proc.wait(10)
    assert info["providers_asked"] == ["CUDAExecutionProvider"]
    assert info["providers_used"][-1] == "CPUExecutionProvider"
    assert all(m["loaded"] and m["providers"] == info["providers_used"] for m in info["models"])


def test_the_cli_refuses_an_unknown_provider_naming_its_flag():
    r = faceup_cli("--providers", "warp", "info")
    assert r.returncode == 2 and "--providers: unknown execution provider 'warp'" in r.stderr
