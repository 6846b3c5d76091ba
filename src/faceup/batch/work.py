"""What one worker does to a list of pictures: the same pipeline calls as `faceup
fix` / `faceup predict`, a row for each picture, and the outputs *staged*: written
next to where they belong under a hidden name, not yet in place. The driver
journals the rows first and only then moves the staged files in place, so an
output never exists without its row, and a row never points to a half-written
file. No Ray here: the engine calls `process` from its actors."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from faceup import geometry, imageio, pipeline
from faceup.errors import FaceupError, InternalError, UnfaithfulWriteError, shown

#: How a run treats each picture.
MODES = ("fix", "tag", "report", "dry-run")

#: Suffix of a staged output (hidden, next to its destination).
STAGED = ".faceup-staged"


@dataclass(frozen=True)
class Job:
    """What a run does; the same for every picture, sent to every worker.

    mode: fix (new upright pixels, as `faceup fix`), tag (the EXIF Orientation tag
    of a JPEG, or an XMP sidecar for other formats: no new pixels), report (the
    prediction only) or dry-run (the prediction and what fix would write, nothing
    written). output: the folder that mirrors the inputs (None with in_place or
    for report/dry-run). journal: the run's folder (backups of changed inputs)."""

    mode: str
    base: str
    output: str | None
    in_place: bool
    journal: str
    options: pipeline.Options = field(default_factory=pipeline.Options)
    format: str | None = None

    def destination(self, path: str) -> Path:
        """Where the picture at `path` is written (mirrored under `output`)."""
        if self.in_place or self.output is None:
            return Path(path)
        dst = Path(self.output) / os.path.relpath(path, self.base)
        if self.format and self.mode == "fix":
            dst = dst.with_suffix(imageio.SUFFIX[imageio.normalize_format(self.format)])
        return dst


def staged_path(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}{STAGED}")


def empty_row(path: str) -> dict:
    return {"path": path, "bytes": None, "sha256": None, "rotation": None, "confidence": None, "confident": None,
            "angle": None, "exif_orientation": None, "error": None, "turned": None, "action": None, "output": None,
            "output_sha256": None, "staged": None, "backup": None, "ms": None}


def process(paths: list[str], job: Job, threads: int = 1) -> list[dict]:
    """A row for each picture, in order, judged the way `faceup fix` / `predict`
    does on a folder (pipeline.fix_iter / predict_iter on `threads` threads).
    Never raises for a picture: its row carries `error` and `action` "failed"."""
    rows, datas = [], []
    for path in paths:
        row = empty_row(path)
        try:
            data = Path(path).read_bytes()
            row["bytes"], row["sha256"] = len(data), hashlib.sha256(data).hexdigest()
        except OSError as exc:
            data = None
            row.update(error=f"cannot be read: {exc.strerror or exc}", action="failed")
        rows.append(row)
        datas.append(data)
    ok = [i for i, d in enumerate(datas) if d is not None]
    start = time.perf_counter()
    many = pipeline.fix_iter if job.mode == "fix" else pipeline.predict_iter
    results = list(many([datas[i] for i in ok], job.options, [paths[i] for i in ok], workers=threads))
    each_ms = 1000 * (time.perf_counter() - start) / max(1, len(ok))
    for i, result in zip(ok, results):
        row = rows[i]
        row["ms"] = each_ms
        try:
            _finish(row, datas[i], result, job)
        except FaceupError as exc:
            row.update(error=str(exc), action="failed", output=None, staged=None, output_sha256=None)
        except OSError as exc:
            row.update(error=f"cannot be written: {exc.strerror or exc}", action="failed", output=None,
                       staged=None, output_sha256=None)
        except Exception as exc:  # noqa: BLE001 - a bug fails this picture only
            row.update(error=str(InternalError(f"unexpected error ({type(exc).__name__}: {shown(exc, 120)})")),
                       action="failed", output=None, staged=None, output_sha256=None)
    return rows


def _finish(row: dict, data: bytes, result, job: Job) -> None:
    if isinstance(result, FaceupError):
        raise result
    pred: pipeline.Prediction = result.prediction if isinstance(result, pipeline.Fixed) else result
    if pred.error is not None:
        raise pred.exception or FaceupError(pred.error)
    row.update({k: pred.to_json()[k] for k in ("rotation", "confidence", "confident", "angle", "exif_orientation")})
    row["turned"] = pred.turned
    if job.mode == "report":
        row["action"] = "reported"
        return
    dst = job.destination(row["path"])
    if job.mode == "dry-run":
        row["action"] = "planned"
        row["output"] = str(dst)
        return
    if job.mode == "fix":
        _stage(row, data, result.data, dst, job, changed="replaced" if job.in_place else "written")
        return
    # tag: no new pixels
    turn = geometry.UNDO_CW[pred.rotation] if pred.turned else None
    if not pred.turned:
        _stage(row, data, data, dst, job, changed="written")
        return
    if pred.angle is not None and abs(pred.angle - pred.rotation) > 0.05:
        raise UnfaithfulWriteError("an orientation tag holds quarter turns only; this picture needs "
                                   f"{pred.angle:.1f} degrees (use the fix mode)")
    picture = imageio.read(data, max_pixels=job.options.max_pixels, reduce_to=pipeline.PREDICT_DECODE_SIDE)
    value = imageio.orientation_value(picture.exif_orientation, turn)
    if picture.format == "JPEG":
        _stage(row, data, imageio.with_orientation_tag(picture, value), dst, job, changed="tagged")
        return
    sidecar = dst.with_suffix(".xmp")
    if sidecar.exists():
        raise UnfaithfulWriteError(f"{sidecar.name} exists already; faceup does not overwrite a sidecar")
    if not job.in_place:
        _stage(row, data, data, dst, job, changed="written")  # the picture itself, byte for byte
    xmp = imageio.xmp_orientation_sidecar(value)
    imageio.write_atomic(staged_path(sidecar), xmp)
    row.update(action="sidecar", output=str(sidecar), staged=str(staged_path(sidecar)),
               output_sha256=hashlib.sha256(xmp).hexdigest())


def _stage(row: dict, original: bytes, out: bytes, dst: Path, job: Job, changed: str) -> None:
    if job.in_place and out == original:
        row["action"] = "unchanged"
        return
    if job.in_place:  # the original is kept for `faceup undo` before anything replaces it
        backup = Path(job.journal) / "originals" / f"{row['sha256']}{Path(row['path']).suffix}"
        if not backup.exists():
            imageio.write_atomic(backup, original)
        row["backup"] = str(backup)
    imageio.write_atomic(staged_path(dst), out)
    row.update(action=changed, output=str(dst), staged=str(staged_path(dst)),
               output_sha256=hashlib.sha256(out).hexdigest())
