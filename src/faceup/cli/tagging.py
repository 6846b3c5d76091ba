"""fix --tag-only: the orientation tag (or an XMP sidecar) instead of new pixels."""

from pathlib import Path

from faceup import imageio, pipeline
from faceup.cli.common import (
    err,
    failed_line,
    out,
    print_json,
    printable,
    progress,
    unexpected,
)
from faceup.cli.orientation import _Job, describe, summary_lines
from faceup.errors import FaceupError


def tag_all(jobs: list[_Job], options: pipeline.Options, in_place: bool, sidecar: bool, as_json: bool) -> int:
    """fix --tag-only: each picture's orientation tag (or sidecar) written; the
    exit code."""
    from faceup.batch.work import sidecar_of

    failures: list[tuple[Path, str]] = []
    turned, left = 0, []
    with progress(len(jobs), "tagging") as bar:
        task = bar.add_task("", total=len(jobs))
        for job in jobs:
            try:
                if job.refused:
                    raise FaceupError(job.refused)
                tagged = pipeline.tag(job.src, options, path=printable(job.src), sidecar=sidecar)
                side = sidecar_of(job.dst) if tagged.sidecar is not None else None
                if side is not None and side.exists() and side.read_bytes() != tagged.sidecar:
                    raise FaceupError(f"{printable(side)} exists already; faceup does not overwrite a sidecar")
                if not in_place:
                    imageio.write_atomic(job.dst, tagged.data)
                elif tagged.data != job.src.read_bytes():
                    imageio.write_atomic(job.dst, tagged.data, like=job.src)
                if side is not None:
                    imageio.write_atomic(side, tagged.sidecar)
            except Exception as exc:  # noqa: BLE001 - one bad file never ends the batch
                msg = str(exc) if isinstance(exc, (FaceupError, OSError)) else unexpected(exc)
                failures.append((job.src, msg))
                if as_json:
                    print_json({**pipeline.Prediction(path=printable(job.src), error=msg).to_json(), "output": None,
                                "turned": False, "status": "failed", "sidecar": None})
                else:
                    failed_line(job.src, msg)
                bar.advance(task)
                continue
            pred = tagged.prediction
            turned += pred.turned
            if pred.status == "not sure":
                left.append(pred)
            if as_json:
                print_json({**pred.to_json(), "output": printable(job.dst), "turned": pred.turned,
                            "status": pred.status, "sidecar": None if side is None else printable(side)})
            elif len(jobs) == 1 or not err.is_terminal:
                how = (f"orientation in {printable(side)}" if side is not None else
                       "orientation tag set" if pred.turned else "")
                line = describe(pred, job.dst)
                out.print(line.replace("turned back", f"{how}, pixels untouched", 1) if pred.turned else line)
            bar.advance(task)
    if len(jobs) > 1 and not as_json:
        summary_lines(len(jobs), turned, left, failures, options)
    return 1 if failures else 0
