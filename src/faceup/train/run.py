"""One training request, validated whole when it is made, and `run`, which picks
the data and the trainer for its task. The CLI only parses flags into a
`TrainRequest` and prints what `run` reports.

Messages name the request's fields (`task`, `backbone`, ...); a door adds its own
spelling. Nothing here imports torch until `run` is called.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from faceup.errors import BadOptionError, missing_extra
from faceup.train.options import parse_also


class Task(str, Enum):
    orientation = "orientation"
    angle = "angle"
    smile = "smile"
    agegender = "agegender"
    gender = "gender"


#: A small run (scale < 1) of smile or agegender takes this many faces per 1.0 of scale, at least 16.
ATTRIBUTE_FACES_AT_FULL_SCALE = 20000

SAMPLES = ("square", "inner")
CROPS = ("level", "aligned")


@dataclass(frozen=True)
class TrainRequest:
    """What `faceup train` was asked; see `faceup train --help` for each field."""

    task: Task = Task.orientation
    directory: Path | None = None
    data: Path | None = None
    out: Path | None = None
    epochs: float = 3.0
    scale: float = 1.0
    max_steps: int | None = None
    batch: int = 64
    freeze_blocks: int = 7
    install: bool = False
    sources: tuple[str, ...] = ()
    samples: str = "square"
    samples_per_picture: int = 12
    net_size: int | None = None
    hard: int = 0
    everyday: int = 0
    balance_ages: bool = False
    resume: bool = False
    patience: int = 3
    crop: str = "level"
    network: Path | None = None
    init: Path | None = None
    also: tuple[tuple[str, int], ...] = ()
    backbone: str = "mobilenet"

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "task", Task(self.task))
        except ValueError:
            raise BadOptionError(f"`task` must be one of {', '.join(t.value for t in Task)}, "
                                 f"not {self.task!r}") from None
        task = self.task
        backbones = {Task.orientation: ("mobilenet",), Task.gender: ("mobilenet",),
                     Task.smile: ("mobilenet", "expression"), Task.agegender: ("mobilenet",),
                     Task.angle: ("mobilenet", "lite2")}[task]
        if self.backbone not in backbones:
            raise BadOptionError(f"`backbone` for `task` {task.value} must be {' or '.join(backbones)}, "
                                 f"not {self.backbone!r}")
        if not 0 < self.scale <= 1 or self.epochs <= 0 or self.batch < 1 or self.patience < 1:
            raise BadOptionError("`scale` must be in (0, 1], `epochs` above 0, `batch` and `patience` at least 1")
        if self.also and task != Task.angle:
            raise BadOptionError("`also` is for `task` angle")
        parse_also(",".join(f"{name}:{k}" for name, k in self.also))  # refuses an unknown source or count
        if self.crop not in CROPS or (self.crop != "level" and task != Task.smile):
            raise BadOptionError("`crop` is level or aligned, and aligned is for `task` smile only")
        if self.samples not in SAMPLES:
            raise BadOptionError(f"`samples` must be one of {', '.join(SAMPLES)}, not {self.samples!r}")
        if self.init is not None and (task != Task.angle or self.backbone != "mobilenet"):
            raise BadOptionError("`init` is for `task` angle with the mobilenet `backbone`")
        if self.init is not None and not Path(self.init).is_file():
            raise BadOptionError(f"`init` {self.init}: no such checkpoint (give a faceup run's best.pt)")
        if task == Task.gender and (self.network is None or not Path(self.network).is_file()):
            raise BadOptionError("`task` gender needs `network`: the converted face network "
                                 "(tools/convert_dlib_face.py, then tools/quantize_models.py gender)")
        if self.also and self.directory is not None:
            raise BadOptionError("`also` adds parts of the shared data: give `data`, not a folder")

    @property
    def run_folder(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.task.value


@dataclass(frozen=True)
class TrainResult:
    onnx: Path
    #: What the registry records beside the weights (calibration, input size).
    meta: dict
    #: Where the model was installed in the package, if it was.
    installed: Path | None = None


def run(req: TrainRequest, on_progress: Callable[[int, str], Callable[[], None]] | None = None) -> TrainResult:
    """Train the model `req` asks for, write its run folder and, with `install`,
    copy it into the package registry. `on_progress(total, label)` gives a step
    callback for work whose size is known up front (the gender read-out's faces)."""
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise missing_extra("training", "train", exc) from None
    from faceup import datasets
    from faceup.train import calibrate as cal

    root = datasets.data_root(req.data)
    out_dir = req.run_folder
    if req.task == Task.gender:
        from faceup.train.gender_head import SOURCES, build, training_faces

        try:
            n = len(training_faces(root, req.sources or SOURCES))
        except ValueError as exc:
            raise BadOptionError(str(exc)) from None
        step = on_progress(n, "embedding training faces") if on_progress else None
        onnx_path, meta = build(req.network, out_dir, root, req.sources or SOURCES, on_step=step)
    elif req.task in (Task.smile, Task.agegender):
        from faceup.train.attributes import AttrConfig, train_attributes

        expression_net = Path(req.network or AttrConfig.expression_net)
        if req.backbone == "expression" and not expression_net.is_file():
            raise BadOptionError(f"{expression_net}: no expression network there; make it with "
                                 "tools/convert_fer_expression.py (or give `network`)")
        limit = None if req.scale >= 1 else max(16, int(ATTRIBUTE_FACES_AT_FULL_SCALE * req.scale))
        onnx_path = train_attributes(AttrConfig(
            data=str(root), out=str(out_dir), task=req.task.value, epochs=req.epochs, max_steps=req.max_steps,
            batch=req.batch, freeze_blocks=req.freeze_blocks, sources=req.sources or None, net_size=req.net_size,
            resume=req.resume, patience=req.patience, balance_ages=req.balance_ages, crop=req.crop,
            backbone=req.backbone, expression_net=str(expression_net), limit=limit))
        meta = {}
    elif req.task == Task.angle:
        from faceup.models.angle import INPUT_SIZE
        from faceup.train.angle import AngleConfig, train_angle

        if req.directory is not None:
            paths = datasets.list_pictures(req.directory)
        elif root.is_dir():
            paths = datasets.scenes(root, "train")
        else:
            raise BadOptionError("give a folder of upright pictures or the shared data (`data`)")
        if not paths:
            raise BadOptionError(f"no pictures in {req.directory}")
        if req.also and not root.is_dir():
            raise BadOptionError(f"`also` adds parts of the shared data, and there is none at {root}: give `data`")
        more = {"crowds": lambda: datasets.crowds(root, "train"),
                "frames68": lambda: datasets.frames68(root, "train"),
                "objects": lambda: datasets.objects(root, "train"),
                "camvid": lambda: datasets.camvid(root, "train")}
        limit = max(1, int(len(paths) * req.scale)) if req.scale < 1 else None
        val_paths = () if req.directory is not None else tuple(str(p) for p in datasets.scenes(root, "val"))
        onnx_path = train_angle(AngleConfig(
            data=str(req.directory or root), out=str(out_dir), epochs=req.epochs, max_steps=req.max_steps,
            batch=req.batch, limit=limit, freeze_blocks=req.freeze_blocks, samples=req.samples,
            samples_per_picture=req.samples_per_picture, resume=req.resume, patience=req.patience,
            val_paths=val_paths, init=str(req.init) if req.init else None, backbone=req.backbone,
            also=tuple(f"{n}:{k}" for n, k in req.also), **({"size": req.net_size} if req.net_size else {})),
            paths, {name: more[name]() for name, _ in req.also})
        meta = {"input_size": req.net_size or INPUT_SIZE}
    else:
        from faceup.train.orientation import TrainConfig, train

        if not root.is_dir():
            raise BadOptionError(f"no data at {root}; give `data` (the shared data folder)")
        cfg = TrainConfig(data=str(root), out=str(out_dir), epochs=req.epochs, scale=req.scale,
                          max_steps=req.max_steps, batch=req.batch, freeze_blocks=req.freeze_blocks,
                          resume=req.resume, patience=req.patience, hard=req.hard,
                          everyday=req.everyday)
        onnx_path = train(cfg)
        meta = cal.calibrate(onnx_path, root, cfg.size, scale=min(1.0, req.scale * 10))
        (out_dir / "calibration.json").write_text(json.dumps(meta, indent=2))
    installed = cal.install(onnx_path, meta, name=req.task.value) if req.install else None
    return TrainResult(onnx=Path(onnx_path), meta=meta, installed=installed)
