"""What one worker does to a list of pictures: the same pipeline calls as `faceup
fix` / `faceup predict`, a row for each picture, and the outputs *staged*: written
next to where they belong under a hidden name, not yet in place. The driver
checks, journals the rows and only then moves the staged files in place, so an
output never exists without its row, and a row never points to a half-written
file. No Ray here: the engine calls `process` from its actors."""

from __future__ import annotations

import enum
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

from faceup import imageio, pipeline
from faceup.batch import store
from faceup.errors import BatchError, FaceupError, InternalError, UnfaithfulWriteError, shown
from faceup.schemas import PredictionOut


class Mode(str, enum.Enum):
    """How a run treats each picture."""

    FIX = "fix"  # new upright pixels, as `faceup fix`
    TAG = "tag"  # the EXIF Orientation tag of a JPEG, or an XMP sidecar: no new pixels
    REPORT = "report"  # the prediction only
    DRY_RUN = "dry-run"  # the prediction and what fix would write; nothing written


MODES = tuple(m.value for m in Mode)

#: Suffix of a staged output (hidden, next to its destination).
STAGED = ".faceup-staged"

#: Actions after which a row counts as done (a failed or changed picture is tried again).
DONE = frozenset({"written", "replaced", "tagged", "sidecar", "unchanged", "reported", "planned"})


@dataclass(frozen=True)
class Job:
    """What a run does; the same for every picture, sent to every worker.

    output: the folder that mirrors the inputs (None with in_place or for
    report/dry-run). journal: the run's folder (backups of what it replaces)."""

    mode: str
    base: str
    output: str | None
    in_place: bool
    journal: str
    options: pipeline.Options = field(default_factory=pipeline.Options)
    format: str | None = None

    @property
    def key(self) -> str:
        """What makes two runs' answers for one input the same: a row of another
        mode, output or options is never taken as done."""
        what = {"mode": self.mode, "output": self.output, "in_place": self.in_place, "format": self.format,
                "options": asdict(self.options)}
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def staged_path(dst: str | os.PathLike) -> str:
    dst = str(dst)
    return store.join(store.dirname(dst), f".{store.basename(dst)}{STAGED}")


def sidecar_of(dst: str | os.PathLike) -> str:
    """The XMP sidecar of a picture: NAME.EXT.xmp (as digiKam and darktable name
    them), so a.png and a.tif never share one."""
    return str(dst) + ".xmp"


def sha256(path: str | os.PathLike) -> str | None:
    """The file's (or object's) sha256, or None when there is none."""
    return store.sha256(str(path))


def process(items: list[dict], job: Job, threads: int = 1) -> list[dict]:
    """A row for each item ({path, dst, prior_output_sha256, prior_backup,
    prior_sidecar_sha256}: where it goes, and what an earlier run of this table
    wrote there), in order, judged the way `faceup fix` / `predict` does on a
    folder (pipeline.fix_iter / predict_iter on `threads` threads). Never raises
    for a picture: its row carries `error` and `action` "failed"."""
    import time

    from faceup.batch.journal import empty_row

    rows, datas = [], []
    for item in items:
        row = empty_row(item["path"]) | {"job": job.key}
        where = store.of(item["path"])
        try:
            st = where.stat(item["path"])
            if st is None:
                raise FileNotFoundError(2, "No such file or directory")
            data = where.read(item["path"])
            row.update(bytes=len(data), mtime_ns=st[1], sha256=hashlib.sha256(data).hexdigest())
        except OSError as exc:
            data = None
            row.update(error=f"cannot be read: {exc.strerror or shown(exc, 160)}", action="failed")
        rows.append(row)
        datas.append(data)
    ok = [i for i, d in enumerate(datas) if d is not None]
    start = time.perf_counter()
    many = pipeline.fix_iter if job.mode == Mode.FIX else pipeline.predict_iter
    results = list(many([datas[i] for i in ok], job.options, [items[i]["path"] for i in ok], workers=threads))
    each_ms = 1000 * (time.perf_counter() - start) / max(1, len(ok))
    for i, result in zip(ok, results):
        row, item = rows[i], items[i]
        row["ms"] = each_ms
        try:
            _finish(row, item, datas[i], result, job)
        except Exception as exc:  # noqa: BLE001 - one picture fails, the batch goes on
            if isinstance(exc, BatchError):  # the store is gone: the whole run stops
                discard(row)
                raise
            if isinstance(exc, FaceupError):
                msg = str(exc)
            elif isinstance(exc, OSError):
                msg = f"cannot be written: {exc.strerror or exc}"
            else:  # a bug fails this picture only
                msg = str(InternalError(f"unexpected error ({type(exc).__name__}: {shown(exc, 120)})"))
            discard(row)
            row.update(error=msg, action="failed", output=None, staged=None, output_sha256=None, output_bytes=None,
                       sidecar=None, sidecar_sha256=None, backup=None, replaced_sha256=None)
    return rows


def discard(row: dict) -> None:
    """Delete what was staged for this row."""
    for staged in (row.get("staged"), row.get("sidecar") and staged_path(row["sidecar"])):
        if staged:
            store.of(staged).unlink(staged)


def _finish(row: dict, item: dict, data: bytes, result, job: Job) -> None:
    if isinstance(result, FaceupError):
        raise result
    pred: pipeline.Prediction = result.prediction if isinstance(result, pipeline.Fixed) else result
    if pred.error is not None:
        raise pred.exception or FaceupError(pred.error)
    answer = pred.to_json()
    # the prediction's columns (schemas.PredictionOut); `error` is set where a row fails
    row.update({k: answer[k] for k in PredictionOut.model_fields if k not in ("path", "error")})
    row["turned"] = pred.turned
    if job.mode == Mode.REPORT:
        row["action"] = "reported"
        return
    dst = item["dst"]
    if job.mode == Mode.DRY_RUN:
        row.update(action="planned", output=dst)
        return
    if job.mode == Mode.FIX:
        _stage(row, item, data, result.data, dst, job, changed="replaced" if job.in_place else "written")
        return
    # tag: no new pixels (the EXIF tag where the format holds it, else an XMP sidecar)
    if not pred.turned:
        _stage(row, item, data, data, dst, job, changed="written")
        return
    picture = imageio.read(data, max_pixels=job.options.max_pixels, reduce_to=pipeline.PREDICT_DECODE_SIDE)
    tagged = pipeline.tagged(picture, pred, sidecar=picture.format not in imageio.TAGGABLE)
    if tagged.sidecar is None:
        _stage(row, item, data, tagged.data, dst, job, changed="tagged")
        return
    sidecar = sidecar_of(dst)
    existing = sha256(sidecar)
    if existing is not None and existing != item.get("prior_sidecar_sha256"):
        raise UnfaithfulWriteError(f"{store.basename(sidecar)} exists already; faceup does not overwrite a sidecar")
    if not job.in_place:
        _stage(row, item, data, data, dst, job, changed="written")  # the picture itself, byte for byte
    store.of(sidecar).write(staged_path(sidecar), tagged.sidecar)
    row.update(action="sidecar", sidecar=sidecar, sidecar_sha256=hashlib.sha256(tagged.sidecar).hexdigest())


def _stage(row: dict, item: dict, original: bytes, out: bytes, dst: str, job: Job, changed: str) -> None:
    """Write `out` beside `dst` under its staged name. Whatever `dst` holds now
    (the input itself in place, or a file already in the output folder) is kept
    in the run's folder first, for `faceup undo`, unless an earlier run of this
    table wrote it (its backup is then the earlier one's)."""
    if job.in_place:
        if out == original:
            row["action"] = "unchanged"
            return
        current, data = row["sha256"], original
    else:
        current = sha256(dst)
        data = None
    if current is not None:
        if current == item.get("prior_output_sha256"):
            backup = item.get("prior_backup")
        else:
            if data is None:
                data = store.of(dst).read(dst)
            backup = store.join(job.journal, "originals", f"{current}{os.path.splitext(store.basename(dst))[1]}")
            if not store.of(backup).exists(backup):
                store.of(backup).write(backup, data)
        row.update(backup=backup, replaced_sha256=current)
    store.of(dst).write(staged_path(dst), out, like=dst if job.in_place else None)
    row.update(action=changed, output=dst, staged=staged_path(dst),
               output_sha256=hashlib.sha256(out).hexdigest(), output_bytes=len(out))
