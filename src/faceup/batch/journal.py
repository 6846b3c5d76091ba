"""The results table, which is also the run's journal.

While a run goes, each batch of rows is one Parquet file in `<table>.d/parts/`,
written atomically (temporary file, fsync, rename) before any of its outputs is
moved in place. When every input is handled the parts are gathered into the one
table (`<table>`, a Parquet file pandas and DuckDB read as it is). A run started
again reads both, so it knows what is done; a row is never lost, and a path
never has two rows: a later row for a path (another mode, other options, the
input changed) takes the place of the earlier one.
"""

from __future__ import annotations

import errno
import os
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from faceup.batch import store
from faceup.errors import BatchError, shown
from faceup.schemas import PredictionOut

#: Marks a Parquet file as a faceup results table (its schema metadata).
MARK = {b"faceup": b"batch-table"}

def _arrow_type(annotation) -> pa.DataType:
    """The Parquet type of a response model's `X | None` field."""
    kinds = {int: pa.int32(), float: pa.float64(), bool: pa.bool_(), str: pa.string()}
    return next(kinds[a] for a in getattr(annotation, "__args__", (annotation,)) if a in kinds)


#: The prediction's columns, as `faceup predict --json` and POST /predict give them
#: (schemas.PredictionOut), after the path.
PREDICTION = [(name, _arrow_type(f.annotation)) for name, f in PredictionOut.model_fields.items() if name != "path"]

SCHEMA = pa.schema([
    ("path", pa.string()), ("bytes", pa.int64()), ("mtime_ns", pa.int64()), ("sha256", pa.string()),
    ("job", pa.string()),
    *PREDICTION,
    ("turned", pa.bool_()), ("action", pa.string()),
    ("output", pa.string()), ("output_sha256", pa.string()), ("output_bytes", pa.int64()),
    ("replaced_sha256", pa.string()), ("staged", pa.string()), ("backup", pa.string()),
    ("sidecar", pa.string()), ("sidecar_sha256", pa.string()),
    ("ms", pa.float64()),
], metadata=MARK)

#: The columns every faceup table has had; a Parquet file without them is not one.
CORE = ("path", "sha256", "action", "output", "output_sha256", "backup", "error")


def empty_row(path: str) -> dict:
    return dict.fromkeys(SCHEMA.names) | {"path": path}


class Journal:
    """The table and its parts, on a disk or a bucket (batch.store)."""

    def __init__(self, table: str | os.PathLike):
        self.table = str(table)
        self.folder = self.table + ".d"
        self.parts = store.join(self.folder, "parts")
        self.store = store.of(self.table)

    def exists(self) -> bool:
        return self.store.exists(self.table) or self.store.is_dir(self.parts)

    def _parts(self) -> list[str]:
        return self.store.files(self.parts, "*.parquet")

    def rows(self) -> list[dict]:
        """Every row written so far (the table, then the parts in the order they
        were written), the latest one per path."""
        files = [self.table] if self.store.exists(self.table) else []
        files += self._parts()
        latest: dict[str, dict] = {}
        for f in files:
            for row in _read(f).to_pylist():
                latest[row["path"]] = row
        return list(latest.values())

    def append(self, rows: list[dict]) -> None:
        """One part for these rows, durable before this returns."""
        if rows:
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"  # names sort in the order written
            self._write(store.join(self.parts, name), rows)

    def compact(self) -> int:
        """Gather every row into the one table (sorted by path) and drop the parts."""
        rows = sorted(self.rows(), key=lambda r: r["path"])
        self._write(self.table, rows)
        for p in self._parts():
            self.store.unlink(p)
        self.store.remove_empty_dir(self.parts)
        self.store.remove_empty_dir(self.folder)
        return len(rows)

    def _write(self, path: str, rows: list[dict]) -> None:
        try:
            self.store.write(path, _parquet(rows))
        except OSError as exc:
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            raise BatchError(
                f"cannot write the results table {self.table} ({exc.strerror or exc}). "
                + ("Free some space and run the same command again: " if full else
                   "Fix that and run the same command again: ")
                + "what was done and journaled is kept, nothing is done twice") from None


def _read(path: str) -> pa.Table:
    try:
        table = pq.read_table(pa.BufferReader(_arrow_owned(store.of(path).read(path))),
                              use_threads=False, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise BatchError(
            f"{path} cannot be read as a results table ({shown(exc, 100)}); it is damaged or not a Parquet "
            "file. Move it away (or give another `table`) to start afresh: pictures already written stay "
            "where they are, and an existing output is never replaced without a backup") from None
    missing = [c for c in CORE if c not in table.column_names]
    if missing:
        raise BatchError(f"{path} is a Parquet file but not a faceup results table (no {', '.join(missing)} "
                         "column); give the table a `faceup batch` run wrote")
    for name in SCHEMA.names:  # a table from an earlier faceup lacks the newer columns
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(len(table), SCHEMA.field(name).type))
    return table.select(SCHEMA.names).cast(SCHEMA)


def _arrow_owned(data: bytes) -> pa.Buffer:
    """A copy of `data` that Arrow owns. A reader over Python bytes lets Arrow's own threads drop the last
    reference to a Python object; when that happens while the interpreter exits (a run stopping on an error),
    the thread cannot take the GIL and the process aborts. With Arrow's memory and no reader threads it cannot."""
    sink = pa.BufferOutputStream()
    sink.write(data)
    return sink.getvalue()


def _parquet(rows: list[dict]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), sink)
    return sink.getvalue().to_pybytes()
