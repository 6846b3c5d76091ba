"""Whole archives on Ray Data: `faceup batch` and `faceup undo`.

The engine adds distribution, resume and the results table; each picture goes
through the same pipeline calls as `faceup fix` (batch.work). Ray is imported
here only, so the core install never needs it (`pip install 'faceup[ray]'`).

A run is resumable: killed at any moment and started again with the same
command, it reads its journal (batch.journal), finishes moving the outputs of
the rows it had journaled, deletes staged files it had not, and does only the
inputs without a row.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from faceup import imageio, pipeline
from faceup.batch.work import MODES, STAGED, Job, process
from faceup.errors import BadOptionError, missing_extra, shown
from faceup.files import walk

#: Pictures per Ray batch: an actor judges it in chunks of pipeline.CHUNK, the
#: next chunk decoded beside the current one's inference.
BATCH = 128


@dataclass
class Summary:
    table: str
    inputs: int
    done_before: int
    done_now: int
    by_action: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    nodes: int = 1
    actors: int = 1


def inputs_of(source: Path) -> list[str]:
    """The pictures of a folder tree (hidden files and OS litter left out), or
    the paths listed in a text file (one per line; # comments and blank lines
    left out; relative paths are relative to the file's folder)."""
    if source.is_dir():
        return [str(p) for p in walk(source)]
    if not source.is_file():
        raise BadOptionError(f"{source} is neither a folder nor a text file of paths")
    out = []
    for line in source.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line)
            out.append(str(p if p.is_absolute() else source.parent / p))
    return out


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise missing_extra("faceup batch", "ray", exc) from None
    return ray


def recover(journal, job: Job) -> list[dict]:
    """Rows already journaled; their staged outputs moved in place (the rename
    that a killed run did not get to), and staged files without a row deleted."""
    rows = journal.rows()
    referenced = set()
    for row in rows:
        if row["staged"] and os.path.exists(row["staged"]):
            os.replace(row["staged"], row["output"])
        if row["staged"]:
            referenced.add(row["staged"])
    root = Path(job.output if job.output and not job.in_place else job.base)
    if root.is_dir():
        for stray in root.rglob(f".*{STAGED}"):
            if str(stray) not in referenced:
                stray.unlink()
    return rows


def run(source: Path, job: Job, table: Path, address: str | None = None,
        progress: Callable[[int, int], None] | None = None, batch_size: int = BATCH) -> Summary:
    """Run `job` over the pictures of `source` on Ray (a local instance started
    here when there is no `address` and no RAY_ADDRESS), journaling into `table`."""
    import time

    from faceup.batch.journal import Journal

    if job.mode not in MODES:
        raise BadOptionError(f"mode must be one of {', '.join(MODES)}")
    ray = _ray()
    start = time.perf_counter()
    paths = inputs_of(source)
    journal = Journal(table)
    done = {row["path"] for row in recover(journal, job)}
    todo = [p for p in paths if p not in done]
    summary = Summary(table=str(table), inputs=len(paths), done_before=len(paths) - len(todo), done_now=0)
    if progress:
        progress(summary.done_before, len(paths))
    if todo:
        summary.nodes, summary.actors = _run_on_ray(ray, todo, job, journal, address, batch_size, summary, progress)
    wanted = set(paths)
    rows = [r for r in journal.rows() if r["path"] in wanted]
    journal.compact()
    for row in rows:
        summary.by_action[row["action"]] = summary.by_action.get(row["action"], 0) + 1
        if row["error"]:
            summary.failed.append((row["path"], row["error"]))
    summary.seconds = time.perf_counter() - start
    return summary


def _run_on_ray(ray, todo: list[str], job: Job, journal, address: str | None, batch_size: int,
                summary: Summary, progress) -> tuple[int, int]:
    from ray.data import ActorPoolStrategy, DataContext

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    started_here = not ray.is_initialized()
    if started_here:
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except ConnectionError as exc:
            raise BadOptionError(
                f"could not join the Ray cluster at {address} ({shown(exc, 160)}); if it uses token "
                "authentication, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN as on its nodes "
                "(`ray get-auth-token` on the head prints the token)") from None
    try:
        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        alive = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        nodes = max(1, len(alive))
        per_node = min(n["Resources"]["CPU"] for n in alive) if alive else 1.0
        # One actor per machine, working as `faceup predict` does on a folder: its
        # pictures decoded on one thread per CPU beside the inference. It asks for
        # half a CPU less than the machine has: actors that hold every CPU starve
        # the tasks that feed them and the job stalls (seen with Ray 2.60 on 2 cores).
        threads = max(1, int(per_node))
        ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=max(1, len(todo) // batch_size))
        ds = ds.map_batches(_Worker, fn_constructor_args=(job, threads), batch_size=batch_size,
                            batch_format="pyarrow", compute=ActorPoolStrategy(min_size=1, max_size=nodes),
                            num_cpus=max(0.5, per_node - 0.5))
        actors = nodes
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1):
            rows = batch.to_pylist()
            journal.append(rows)  # durable first ...
            for row in rows:  # ... then the outputs move in place
                if row["staged"]:
                    os.replace(row["staged"], row["output"])
            summary.done_now += len(rows)
            if progress:
                progress(summary.done_before + summary.done_now, summary.inputs)
        return nodes, actors
    finally:
        if started_here:
            ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse an address where nothing listens, at once: given one, Ray retries
    without end, printing a warning every few seconds (seen with Ray 2.60)."""
    if address == "auto" or "://" in address:  # Ray's own lookup of a local cluster; Ray Client
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise BadOptionError(f"--address takes HOST:PORT (the head node's address, port 6379 unless "
                             f"`ray start --head --port` said otherwise), not {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise BadOptionError(
            f"no Ray cluster answers at {address} ({exc.strerror or type(exc).__name__}): start one there "
            "with `ray start --head`, check the address (`ray status` on the head prints it), or leave out "
            "--address (and RAY_ADDRESS) to run on a local Ray") from None


class _Worker:
    """A Ray actor: loads the models once, then judges a batch at a time."""

    def __init__(self, job: Job, threads: int):
        from faceup.models import base

        base.set_threads(1)  # inference on one thread, decoding on `threads` beside it
        self.job, self.threads = job, threads
        pipeline.predict(_warmup_picture(), job.options)  # the models load now, once per actor

    def __call__(self, batch):
        import pyarrow as pa

        from faceup.batch.journal import SCHEMA

        paths = batch.column("path").to_pylist()
        return pa.Table.from_pylist(process(paths, self.job, self.threads), schema=SCHEMA)


def _warmup_picture() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "grey").save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------ undo


@dataclass
class UndoReport:
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def undo(table: Path) -> UndoReport:
    """Restore what the run journaled in `table` changed: inputs replaced in place
    get their original bytes back (kept by the run), outputs and sidecars it
    wrote are removed. A file changed since the run is left alone and reported."""
    from faceup.batch.journal import Journal

    journal = Journal(table)
    if not table.exists() and not journal.parts.is_dir():
        raise BadOptionError(f"{table} is not a faceup batch table")
    report = UndoReport()
    for row in journal.rows():
        target, action = row["output"], row["action"]
        if action not in ("written", "replaced", "tagged", "sidecar") or not target:
            continue
        if row["staged"] and os.path.exists(row["staged"]):
            os.unlink(row["staged"])
        if not os.path.exists(target):
            report.skipped.append((target, "not there any more"))
            continue
        current = hashlib.sha256(Path(target).read_bytes()).hexdigest()
        if current != row["output_sha256"]:
            reason = "already restored" if current == row["sha256"] else "changed since the run; left alone"
            report.skipped.append((target, reason))
            continue
        if row["backup"]:  # an input replaced in place
            imageio.write_atomic(target, Path(row["backup"]).read_bytes())
            report.restored.append(target)
        else:  # a file the run made
            os.unlink(target)
            report.removed.append(target)
    return report
