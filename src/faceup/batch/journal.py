"""The results table, which is also the run's journal.

While a run goes, each batch of rows is one Parquet file in `<table>.d/parts/`,
written atomically (temporary file, fsync, rename) before any of its outputs is
moved in place. When every input is handled the parts are gathered into the one
table (`<table>`, a Parquet file pandas and DuckDB read as it is). A run started
again reads both, so it knows what is done; a row is never lost, and a path
never has two rows.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from faceup import imageio

SCHEMA = pa.schema([
    ("path", pa.string()), ("bytes", pa.int64()), ("sha256", pa.string()),
    ("rotation", pa.int32()), ("confidence", pa.float64()), ("confident", pa.bool_()), ("angle", pa.float64()),
    ("exif_orientation", pa.int32()), ("error", pa.string()), ("turned", pa.bool_()), ("action", pa.string()),
    ("output", pa.string()), ("output_sha256", pa.string()), ("staged", pa.string()), ("backup", pa.string()),
    ("ms", pa.float64()),
])


class Journal:
    def __init__(self, table: str | os.PathLike):
        self.table = Path(table)
        self.folder = self.table.with_name(self.table.name + ".d")
        self.parts = self.folder / "parts"

    def rows(self) -> list[dict]:
        """Every row written so far (the table and the parts), one per path."""
        tables = [pq.read_table(self.table, schema=SCHEMA)] if self.table.exists() else []
        if self.parts.is_dir():
            tables += [pq.read_table(p, schema=SCHEMA) for p in sorted(self.parts.glob("*.parquet"))]
        seen: dict[str, dict] = {}
        for t in tables:
            for row in t.to_pylist():
                seen.setdefault(row["path"], row)
        return list(seen.values())

    def append(self, rows: list[dict]) -> None:
        """One part for these rows, durable before this returns."""
        if rows:
            imageio.write_atomic(self.parts / f"{uuid.uuid4().hex}.parquet", _parquet(rows))

    def compact(self) -> int:
        """Gather every row into the one table (sorted by path) and drop the parts."""
        rows = sorted(self.rows(), key=lambda r: r["path"])
        imageio.write_atomic(self.table, _parquet(rows))
        if self.parts.is_dir():
            for p in self.parts.glob("*.parquet"):
                p.unlink()
            self.parts.rmdir()
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()
        return len(rows)


def _parquet(rows: list[dict]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), sink)
    return sink.getvalue().to_pybytes()
