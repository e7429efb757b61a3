"""Persistence: runs to Parquet, read back as Polars frames (schemas in :mod:`workbench.schemas`).

Runs are appended as one small Parquet file per batch, written to a temporary name and
renamed into place, so a crash mid-write never corrupts rows already stored and readers
never see half a file. ``load_runs`` concatenates them into one frame.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from workbench.errors import InputError
from workbench.paths import data_dir
from workbench.schemas import RUN_SCHEMA


class SchemaError(InputError):
    """A row does not fit the schema; the message names the column."""


def _check_row(row: Mapping[str, Any]) -> None:
    unknown = set(row) - set(RUN_SCHEMA)
    if unknown:
        raise SchemaError(f"unknown column(s) in run row: {', '.join(sorted(unknown))}")
    for col in ("run_id", "model", "created_at"):
        if row.get(col) is None:
            raise SchemaError(f"run row lacks required column {col!r}")


def rows_to_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Rows (dicts) -> a frame with exactly RUN_SCHEMA; checks every row first."""
    rows = list(rows)
    for r in rows:
        _check_row(r)
    try:
        return pl.DataFrame(
            [{c: r.get(c) for c in RUN_SCHEMA} for r in rows], schema=RUN_SCHEMA, strict=False
        )
    except (TypeError, pl.exceptions.PolarsError) as e:
        raise SchemaError(f"run rows do not fit the schema: {e}") from None


def _atomic_parquet(frame: pl.DataFrame, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        frame.write_parquet(tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def append_table(root: str | Path, table: str, frame: pl.DataFrame) -> Path | None:
    """Append a frame to ``root/table`` as a new Parquet file (atomic, never in place)."""
    if frame.height == 0:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    return _atomic_parquet(frame, Path(root) / table / name)


def load_table(root: str | Path, table: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Every file of ``root/table`` as one frame with ``schema``'s columns first."""
    d = Path(root) / table
    files = sorted(d.glob("*.parquet")) if d.exists() else []
    if not files:
        return pl.DataFrame(schema=dict(schema))
    out = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    missing = [c for c in schema if c not in out.columns]
    if missing:
        out = out.with_columns([pl.lit(None, dtype=schema[c]).alias(c) for c in missing])
    return out.select([*schema, *[c for c in out.columns if c not in schema]])


class RunStore:
    """Result rows under ``root/runs`` as Parquet files, one per appended batch."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else data_dir()

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def append(self, rows: Iterable[Mapping[str, Any]] | pl.DataFrame) -> Path | None:
        """Append rows atomically; returns the file written (None when there were none)."""
        frame = rows if isinstance(rows, pl.DataFrame) else rows_to_frame(rows)
        if frame.height == 0:
            return None
        if set(frame.columns) != set(RUN_SCHEMA):
            raise SchemaError("frame columns differ from RUN_SCHEMA")
        return append_table(self.root, "runs", frame.select(list(RUN_SCHEMA)))

    def load(self) -> pl.DataFrame:
        """All stored rows as one frame (empty, with the schema, when there are none)."""
        return load_table(self.root, "runs", RUN_SCHEMA).sort("created_at")

    def export(self, path: str | Path) -> Path:
        """Write all rows to .csv, .json/.jsonl or .parquet, chosen by the suffix."""
        p = Path(path)
        frame = self.load()
        suffix = p.suffix.lower()
        if suffix == ".csv":
            frame.with_columns(pl.col("created_at").cast(pl.String)).write_csv(p)
        elif suffix in (".json", ".jsonl", ".ndjson"):
            frame.write_ndjson(p)
        elif suffix == ".parquet":
            _atomic_parquet(frame, p)
        else:
            raise InputError(f"unknown export format {p.suffix!r} (use .csv, .jsonl or .parquet)")
        return p


def load_runs(root: str | Path | None = None) -> pl.DataFrame:
    """All stored result rows as one Polars frame."""
    return RunStore(root).load()
