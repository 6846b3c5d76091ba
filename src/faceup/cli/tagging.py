"""fix --tag-only: the orientation tag (or an XMP sidecar) instead of new pixels."""


from pathlib import Path

from faceup import imageio, pipeline
from faceup.cli.common import (
    printable,
    progress,
)
from faceup.cli.outputs import Tally, _Job, describe
from faceup.errors import FaceupError


def tag_all(jobs: list[_Job], options: pipeline.Options, in_place: bool, sidecar: bool, as_json: bool) -> int:
    """fix --tag-only: each picture's orientation tag (or sidecar) written; the
    exit code."""
    from faceup.batch.work import sidecar_of

    tally = Tally(len(jobs), as_json, options)
    with progress(len(jobs), "tagging") as bar:
        task = bar.add_task("", total=len(jobs))
        for job in jobs:
            side = None
            try:
                if job.refused:
                    raise FaceupError(job.refused)
                tagged = pipeline.tag(job.src, options, path=printable(job.src), sidecar=sidecar)
                side = Path(sidecar_of(job.dst)) if tagged.sidecar is not None else None
                if side is not None and side.exists() and side.read_bytes() != tagged.sidecar:
                    raise FaceupError(f"{printable(side)} exists already; faceup does not overwrite a sidecar")
                if not in_place:
                    imageio.write_atomic(job.dst, tagged.data)
                elif tagged.data != job.src.read_bytes():
                    imageio.write_atomic(job.dst, tagged.data, like=job.src)
                if side is not None:
                    imageio.write_atomic(side, tagged.sidecar)
            except Exception as exc:  # noqa: BLE001 - one bad file never ends the batch
                tally.failed(job.src, exc, sidecar=None)
            else:
                pred = tagged.prediction
                line = describe(pred, job.dst)
                if pred.turned:
                    how = f"orientation in {printable(side)}" if side is not None else "orientation tag set"
                    line = line.replace("turned back", f"{how}, pixels untouched", 1)
                tally.done(pred, job.dst, line, sidecar=None if side is None else printable(side))
            bar.advance(task)
    return tally.close()
