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

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from faceup import imageio, pipeline
from faceup.batch import store
from faceup.batch.work import DONE, MODES, STAGED, Job, Mode, discard, sha256, sidecar_of, staged_path
from faceup.errors import BadOptionError, BatchError, missing_extra, shown
from faceup.models import base as models_base

#: Pictures per Ray batch: an actor judges it in chunks of pipeline.CHUNK, the
#: next chunk decoded beside the current one's inference.
BATCH = 128

#: The lock file a run holds in the folder it writes to (hidden: walks pass it over).
LOCK = ".faceup-batch.lock"


@dataclass
class Summary:
    table: str
    inputs: int
    done_before: int
    done_now: int
    by_action: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: Seconds until the first pictures came back (Ray's start, the actors' models),
    #: and the rate after that: what a long run meets once Ray is up (None when
    #: everything came back in one batch).
    start_seconds: float | None = None
    per_second_once_up: float | None = None
    nodes: int = 1
    actors: int = 1


@dataclass
class Plan:
    """A run made ready: the job, its table, every input (absolute), where each
    goes (`dst`, None for a report) and the inputs refused before any work (a
    destination outside the output folder, onto an input, or shared by two).
    Paths are strings: local paths or s3://bucket/key (batch.store)."""

    job: Job
    table: str
    paths: list[str]
    dst: dict[str, str | None]
    refused: dict[str, str]


def _stem(source: str, is_dir: bool) -> str:
    name = store.basename(source)
    return name if is_dir else os.path.splitext(name)[0]


def _beside(source: str, what: str) -> str:
    """The folder that holds `source`: where its default output and table go."""
    parent = store.dirname(source)
    if store.is_remote(source) and parent == "s3:":
        raise BadOptionError(f"{source} is a whole bucket: nothing is beside it, so give {what}")
    return parent


def default_output(source: str | os.PathLike) -> str:
    """SOURCE-upright beside a folder (or beside a list file, named after it)."""
    source = store.absolute(source)
    return store.join(_beside(source, "`output`"), f"{_stem(source, store.of(source).is_dir(source))}-upright")


def prepare(source: str | os.PathLike, mode: str = "fix", output: str | os.PathLike | None = None,
            in_place: bool = False, table: str | os.PathLike | None = None, fmt: str | None = None,
            options: pipeline.Options | None = None, include_outputs: bool = False) -> Plan:
    """Check the options, find the inputs and where each one goes. Raises
    BadOptionError for options that cannot go together; an input whose
    destination is not safe is refused on its own row, never written. Each path
    is a local one or s3://bucket/prefix (batch.store), in any mix."""
    try:
        mode = Mode(mode).value
    except ValueError:
        raise BadOptionError(f"mode must be one of {', '.join(MODES)}, not {mode!r}") from None
    if in_place and mode not in (Mode.FIX, Mode.TAG):
        raise BadOptionError("in-place goes with the fix and tag modes only")
    if output is not None and (in_place or mode == Mode.REPORT):
        raise BadOptionError("give one of an output folder, in-place, or a report")
    source = store.absolute(source)
    where = store.of(source)
    if not where.exists(source):
        raise BadOptionError(f"{source} does not exist")
    is_dir = where.is_dir(source)
    fmt = imageio.normalize_format(fmt) if fmt else None
    if mode in (Mode.FIX, Mode.TAG, Mode.DRY_RUN) and not in_place:
        output = store.absolute(output) if output is not None else default_output(source)
        out_store = store.of(output)
        if output == source or (is_dir and out_store.realpath(output) == where.realpath(source)):
            raise BadOptionError("the output folder is the source; change the inputs with in-place instead")
        if out_store.is_file(output):
            raise BadOptionError(f"the output {output} is a file, not a folder")
    else:
        output = None
    if table is None:  # in the output folder, else beside the source (never inside a tree being walked)
        table = store.join(output, "faceup-results.parquet") if output is not None and mode != Mode.DRY_RUN \
            else store.join(_beside(source, "`table`"), f"{_stem(source, is_dir)}.faceup-results.parquet")
    table = store.absolute(table)
    skip = [table, table + ".d"] + ([output] if output is not None else [])
    paths = inputs_of(source, skip, include_outputs)
    if is_dir:
        base = source
    else:
        base = _common_folder(paths) if paths else store.dirname(source)
    job = Job(mode=mode, base=base, output=output, in_place=in_place, journal=table + ".d", format=fmt,
              options=options or pipeline.Options(format=fmt))
    dst, refused = destinations(paths, job)
    return Plan(job=job, table=table, paths=paths, dst=dst, refused=refused)


def _common_folder(paths: list[str]) -> str:
    """The deepest folder (or bucket prefix) that holds every path of a list."""
    remote = {store.is_remote(p) for p in paths}
    if len(remote) > 1:
        raise BadOptionError("the list mixes local paths and s3:// objects; give one kind per run")
    if remote == {True}:
        folders = ["/" + store.dirname(p)[len(store.SCHEME):] for p in paths]
        common = os.path.commonpath(folders).lstrip("/")
        if not common:
            raise BadOptionError("the list names objects in more than one bucket; give one bucket per run")
        return store.SCHEME + common
    return os.path.commonpath([os.path.dirname(p) for p in paths])


def inputs_of(source: str | os.PathLike, skip: list[str] | None = None, outputs: bool = False) -> list[str]:
    """The pictures of a folder tree (hidden files, OS litter, `skip` and, unless
    `outputs`, faceup's own outputs written beside their inputs left out), or the paths listed in a text file (one per line; # comments and blank
    lines left out; relative paths are relative to the file's folder), each as
    an absolute, normalised path, once."""
    source = store.absolute(source)
    where = store.of(source)
    if where.is_dir(source):
        return where.walk(source, skip=[store.absolute(s) for s in skip or []], outputs=outputs)
    if not where.is_file(source):
        raise BadOptionError(f"{source} is neither a folder nor a text file of paths")
    try:
        text = where.read(source).decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise BadOptionError(f"{source} cannot be read: {exc.strerror or exc}") from None
    out: dict[str, None] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out[store.absolute(line if store.is_remote(line) else store.join(store.dirname(source), line))] = None
    return list(out)


def destinations(paths: list[str], job: Job) -> tuple[dict[str, str | None], dict[str, str]]:
    """Where each input is written, and why an input is refused: its output
    would lie outside the output folder, would be an input (its own or
    another's), or would be shared with another input (a.jpg and a.png as
    webp)."""
    dst: dict[str, str | None] = {}
    refused: dict[str, str] = {}
    if job.mode == Mode.REPORT:
        return dict.fromkeys(paths), refused
    if job.in_place:
        return {p: p for p in paths}, refused
    assert job.output is not None
    inputs = {store.of(p).realpath(p) for p in paths}
    out_root = store.of(job.output).realpath(job.output)
    by_target: dict[str, list[str]] = {}
    for p in paths:
        d = store.absolute(store.join(job.output, store.relative(p, job.base)))
        if job.format and job.mode in (Mode.FIX, Mode.DRY_RUN):
            d = store.join(store.dirname(d), imageio.in_format(store.basename(d), job.format))
        real = store.of(d).realpath(d)
        dst[p] = d
        if not real.startswith(out_root + os.sep):
            refused[p] = f"its output {d} would lie outside the output folder {job.output}; nothing written"
        elif real in inputs:
            refused[p] = f"its output {d} is an input; nothing written (give an output folder apart from the inputs)"
        else:
            by_target.setdefault(real, []).append(p)
    for target, group in by_target.items():
        if len(group) > 1:
            for p in group:
                refused[p] = (f"{' and '.join(pipeline.printable_path(g) for g in group)} would all be written to "
                              f"{pipeline.printable_path(dst[p])}; nothing written for them (rename one, or "
                              "leave out the output format)")
    return dst, refused


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise missing_extra("faceup batch", "ray", exc) from None
    return ray


def _journal(command: str):
    """The journal's parts (pyarrow comes with the ray extra)."""
    try:
        from faceup.batch.journal import Journal, empty_row
    except ImportError as exc:
        raise missing_extra(command, "ray", exc) from None
    return Journal, empty_row


def _in_place_row(row: dict) -> bool:
    return row["output"] is not None and row["output"] == row["path"]


def unchanged(row: dict) -> bool:
    """Whether the file a staged output is to replace is still what the worker
    saw: the input itself (in place: the same size and time), or what was in
    the output folder (the same content, or still no file)."""
    if _in_place_row(row):
        return store.of(row["output"]).stat(row["output"]) == (row["bytes"], row["mtime_ns"])
    return sha256(row["output"]) == row["replaced_sha256"]


def _changed(row: dict) -> dict:
    discard(row)
    return row | {"action": "changed", "error": "changed during the run; nothing replaced (run again to include it)",
                  "output": None, "staged": None, "output_sha256": None, "output_bytes": None, "sidecar": None,
                  "sidecar_sha256": None}


def _move_in_place(row: dict) -> None:
    for staged, dst in ((row["staged"], row["output"]),
                        (row["sidecar"] and staged_path(row["sidecar"]), row["sidecar"])):
        if staged and store.of(staged).exists(staged):
            store.of(staged).replace(staged, dst)


def recover(journal, job: Job) -> list[dict]:
    """Rows already journaled; their staged outputs moved in place (the rename
    that a killed run did not get to, if what it replaces is unchanged), and
    staged files without a row deleted."""
    rows = journal.rows()
    referenced, changed = set(), []
    for row in rows:
        referenced.update(s for s in (row["staged"], row["sidecar"] and staged_path(row["sidecar"])) if s)
        if row["staged"] and store.of(row["staged"]).exists(row["staged"]) and not unchanged(row):
            changed.append(_changed(row))
        else:
            _move_in_place(row)
    if changed:
        journal.append(changed)
        rows = journal.rows()
    root = job.output if job.output and not job.in_place else job.base
    if job.mode != Mode.DRY_RUN:
        for stray in store.of(root).files(root, f".*{STAGED}"):
            if stray not in referenced:
                store.of(stray).unlink(stray)
    return rows


def done(row: dict | None, job: Job) -> bool:
    """Whether a journaled row answers for its input as it is now: the same job
    (mode, output, options), an action that finished, and the input unchanged
    since (or, in place, the very output the run put there)."""
    if row is None or row["job"] != job.key or row["action"] not in DONE:
        return False
    where = store.of(row["path"])
    now = where.stat(row["path"])
    if now is None:
        return False
    if now == (row["bytes"], row["mtime_ns"]):
        return True
    if not (job.in_place and row["action"] in ("replaced", "tagged") and now[0] == row["output_bytes"]):
        return False
    # a file keeps its time when replaced (write_atomic's `like`); an object cannot: its content tells
    return sha256(row["path"]) == row["output_sha256"] if where.remote else now[1] == row["mtime_ns"]


def _locks(plan: Plan) -> list[tuple[str, str]]:
    job = plan.job
    locks = [(store.join(job.journal, "lock"), f"the table {plan.table}")]
    if job.mode in (Mode.FIX, Mode.TAG):
        root = job.base if job.in_place else job.output
        locks.append((store.join(root, LOCK), f"{root}"))
    return locks


@contextlib.contextmanager
def _held(locks: list[tuple[str, str]]):
    with contextlib.ExitStack() as stack:
        for path, what in locks:
            stack.enter_context(store.of(path).lock(path, what))
        yield


def run(plan: Plan, address: str | None = None, progress: Callable[[int, int], None] | None = None,
        batch_size: int = BATCH, verbose: bool = False) -> Summary:
    """Run the plan on Ray (a local instance started here when there is no
    `address` and no RAY_ADDRESS), journaling into its table. One run at a time
    per output and per table: another one refuses at once (BatchError). Ray's own
    log lines (its C++ core writes to the process's stderr) go to a log file
    unless `verbose`; the file is named in the error when the run fails."""
    ray = _ray()
    Journal, empty_row = _journal("faceup batch")
    job = plan.job
    start = time.perf_counter()
    with _held(_locks(plan)):
        journal = Journal(plan.table)
        prior = {row["path"]: row for row in recover(journal, job)}
        journal.append([empty_row(p) | {"job": job.key, "action": "failed", "error": why}
                        for p, why in plan.refused.items()])
        todo = [p for p in plan.paths if p not in plan.refused and not done(prior.get(p), job)]
        summary = Summary(table=plan.table, inputs=len(plan.paths),
                          done_before=len(plan.paths) - len(todo) - len(plan.refused), done_now=len(plan.refused))
        if progress:
            progress(summary.done_before, len(plan.paths))
        if todo:
            items = [_item(p, plan.dst[p], prior.get(p)) for p in todo]
            with _ray_log(verbose):
                summary.nodes, summary.actors = _run_on_ray(ray, items, job, journal, address, batch_size, summary,
                                                            progress)
        wanted = set(plan.paths)
        rows = [r for r in journal.rows() if r["path"] in wanted]
        journal.compact()
    for row in rows:
        summary.by_action[row["action"]] = summary.by_action.get(row["action"], 0) + 1
        if row["error"]:
            summary.failed.append((row["path"], row["error"]))
    summary.seconds = time.perf_counter() - start
    return summary


@contextlib.contextmanager
def _ray_log(verbose: bool):
    """Ray's own messages (token notes, actor restart policies: meant for Ray's
    developers) away from the user's terminal: this process's stderr (fd 2, where
    Ray's C++ core writes) goes to a temporary log file for the block. faceup's
    own progress bar writes to a copy of the terminal's stderr made before."""
    if verbose:
        yield
        return
    import sys
    import tempfile

    log = tempfile.NamedTemporaryFile(prefix="faceup-batch-ray-", suffix=".log", delete=False)
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    failed = True
    try:
        yield
        failed = False
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.close()
        if failed:
            sys.stderr.write(f"(Ray's own log of this run: {log.name})\n")
        else:
            os.unlink(log.name)


def _item(path: str, dst: str | None, prior: dict | None) -> dict:
    """What a worker needs for one input: where it goes, and what an earlier
    run of this table wrote there (so that it is replaced without a backup)."""
    item = {"path": path, "dst": dst, "prior_output_sha256": None, "prior_backup": None, "prior_sidecar_sha256": None}
    if prior is not None and dst is not None:
        if prior["output"] == dst:
            item.update(prior_output_sha256=prior["output_sha256"], prior_backup=prior["backup"])
        if prior["sidecar"] == sidecar_of(dst):
            item["prior_sidecar_sha256"] = prior["sidecar_sha256"]
    return item


def _journal_and_place(rows: list[dict], journal) -> None:
    """Check that nothing an output replaces changed during the run, journal the
    rows (durable first), then move their outputs in place."""
    rows[:] = [_changed(r) if r["staged"] and not unchanged(r) else r for r in rows]
    try:
        journal.append(rows)
    except BatchError:
        for row in rows:
            discard(row)
        raise
    for row in rows:
        _move_in_place(row)


def _run_on_ray(ray, items: list[dict], job: Job, journal, address: str | None, batch_size: int,
                summary: Summary, progress) -> tuple[int, int]:
    from ray.data import ActorPoolStrategy, DataContext

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    started_here = not ray.is_initialized()
    watchdog = None
    if started_here:
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            check_reachable(address)
        else:  # a local Ray, ended with this process even when it is killed
            import subprocess
            import sys

            watchdog = subprocess.Popen([sys.executable, "-m", "faceup.batch.watchdog", str(os.getpid())],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
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
        ds = ray.data.from_items(items, override_num_blocks=max(1, len(items) // batch_size))
        ds = ds.map_batches(_Worker, fn_constructor_args=(job, threads, models_base.runtime().providers), batch_size=batch_size,
                            batch_format="pyarrow", compute=ActorPoolStrategy(min_size=1, max_size=nodes),
                            num_cpus=max(0.5, per_node - 0.5))
        actors = nodes
        began, first, first_done = time.perf_counter(), None, 0
        for batch in _batches(ds):
            rows = batch.to_pylist()
            _journal_and_place(rows, journal)
            summary.done_now += len(rows)
            now = time.perf_counter()
            if first is None:
                first, first_done = now, summary.done_now
                summary.start_seconds = now - began
            elif now > first:
                summary.per_second_once_up = (summary.done_now - first_done) / (now - first)
            if progress:
                progress(summary.done_before + summary.done_now, summary.inputs)
        return nodes, actors
    finally:
        if started_here:
            ray.shutdown()
        if watchdog is not None:
            watchdog.terminate()
            watchdog.wait()


def _batches(ds):
    """The dataset's batches; a worker's BatchError (the store cannot be reached)
    ends the run with its own message, not Ray's wrapping of it."""
    try:
        yield from ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1)
    except Exception as exc:
        seen, cause = set(), exc
        while cause is not None and id(cause) not in seen:
            if type(cause) is BatchError:  # faceup's own, not Ray's subclass wrapping it
                raise BatchError(str(cause)) from None
            seen.add(id(cause))
            cause = getattr(cause, "cause", None) or cause.__cause__ or cause.__context__
        raise


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse an address where nothing listens, at once: given one, Ray retries
    without end, printing a warning every few seconds (seen with Ray 2.60)."""
    if address == "auto" or "://" in address:  # Ray's own lookup of a local cluster; Ray Client
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise BadOptionError(f"`address` takes HOST:PORT (the head node's address, port 6379 unless "
                             f"`ray start --head --port` said otherwise), not {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise BadOptionError(
            f"no Ray cluster answers at {address} ({exc.strerror or type(exc).__name__}): start one there "
            "with `ray start --head`, check the address (`ray status` on the head prints it), or leave out "
            "`address` (and RAY_ADDRESS) to run on a local Ray") from None


class _Worker:
    """A Ray actor: loads the models once, then judges a batch at a time."""

    def __init__(self, job: Job, threads: int, providers: tuple[str, ...] = ()):
        models_base.configure(threads=1, providers=providers)  # inference on one thread, decoding on `threads` beside it
        self.job, self.threads = job, threads
        pipeline.predict(_warmup_picture(), job.options)  # the models load now, once per actor

    def __call__(self, batch):
        import pyarrow as pa

        from faceup.batch.journal import SCHEMA
        from faceup.batch.work import process

        return pa.Table.from_pylist(process(batch.to_pylist(), self.job, self.threads), schema=SCHEMA)


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


def undo(table: str | os.PathLike) -> UndoReport:
    """Restore what the runs journaled in `table` changed: files they replaced
    (inputs in place, or files that were already in the output folder) get
    their bytes back from the backups the runs kept; outputs and sidecars they
    made are removed. A file changed since is left alone and reported."""
    Journal, _ = _journal("faceup undo")
    journal = Journal(store.absolute(table))
    if not journal.exists():
        raise BadOptionError(f"{table} is not a faceup results table (no such file)")
    report = UndoReport()
    for row in journal.rows():
        if row["action"] not in ("written", "replaced", "tagged", "sidecar"):
            continue
        discard(row)
        if row["output"] and row["output_sha256"]:
            _undo_one(row["output"], row["output_sha256"], row["backup"], row["replaced_sha256"], report)
        if row["sidecar"] and row["sidecar_sha256"]:
            _undo_one(row["sidecar"], row["sidecar_sha256"], None, None, report)
    return report


def _undo_one(target: str, written: str, backup: str | None, replaced: str | None, report: UndoReport) -> None:
    current = sha256(target)
    if current is None:
        report.skipped.append((target, "not there any more"))
    elif current != written:
        restored = current == replaced and backup is not None
        report.skipped.append((target, "already restored" if restored else "changed since the run; left alone"))
    elif backup:  # a file the run replaced
        if sha256(backup) is None:
            report.skipped.append((target, f"its backup {backup} is gone; left as the run wrote it"))
            return
        store.of(target).write(target, store.of(backup).read(backup), like=target)
        report.restored.append(target)
    else:  # a file the run made
        store.of(target).unlink(target)
        report.removed.append(target)
