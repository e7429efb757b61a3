"""Reading and checking votes: Parquet, CSV, JSON lines, or the public arena battle dump.

A votes frame has the columns :data:`~workbench.schemas.VOTE_REQUIRED_COLUMNS`
(``model_a``, ``model_b``, ``winner``, with ``winner`` one of
:data:`~workbench.schemas.VOTE_WINNERS`); other columns are carried along.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from workbench.ratings.errors import VotesFileError, VotesFileNotFound
from workbench.schemas import VOTE_REQUIRED_COLUMNS as REQUIRED_COLUMNS
from workbench.schemas import VOTE_WINNERS as WINNERS

__all__ = ["prepare", "read_votes", "validate_votes"]


def validate_votes(frame: pl.DataFrame, *, source: str | None = None) -> pl.DataFrame:
    """Checks a votes frame and returns it with string-typed model and winner columns.

    Rows are numbered from 1 (the first data row; a CSV header is not a row).

    Args:
        frame: Votes, one row per battle.
        source: Name to put in front of error messages (usually the file name).

    Returns:
        The frame, with ``model_a``, ``model_b`` and ``winner`` cast to strings; other
        columns untouched.

    Raises:
        VotesFileError: Missing column, empty or null model name, unknown winner, or a
            model battling itself. The message names the first offending row and column.
    """
    return prepare(frame, source)[0]


def prepare(frame: pl.DataFrame, source: str | None) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """:func:`validate_votes`, also returning the sorted model names."""
    prefix = f"{source} " if source else ""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        found = ", ".join(frame.columns) or "none"
        raise VotesFileError(f"{prefix}missing column {missing[0]!r} (columns found: {found})")
    casts = []
    for col in REQUIRED_COLUMNS:
        dtype = frame.schema[col]
        if dtype == pl.String:
            continue
        if (
            dtype.is_numeric()
            or dtype in (pl.Categorical, pl.Boolean, pl.Null)
            or isinstance(dtype, pl.Enum)
        ):
            casts.append(pl.col(col).cast(pl.String))
        else:
            raise VotesFileError(f"{prefix}column {col}: expected text, found {dtype}")
    if casts:
        frame = frame.with_columns(casts)
    if frame.height == 0:
        raise VotesFileError(f"{prefix}no votes (the file has no rows)")
    return frame, _check_votes(frame, prefix)


def _check_votes(frame: pl.DataFrame, prefix: str) -> tuple[str, ...]:
    """Finds the first bad row, if any; returns the sorted model names."""

    def first_bad(mask: pl.Expr) -> int:
        return int(frame.select(mask.arg_true().first()).item())

    # Checks run on the distinct values (cheap); rows are searched only on failure.
    names = pl.concat([frame["model_a"], frame["model_b"]]).unique()
    if names.null_count() or (names.str.strip_chars() == "").any():
        for col in ("model_a", "model_b"):
            mask = pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")
            if frame.select(mask.any()).item():
                row = first_bad(mask)
                raise VotesFileError(f"{prefix}row {row + 1}, column {col}: missing model name")
    winners = frame["winner"].unique()
    if winners.null_count() or not winners.is_in(list(WINNERS)).all():
        row = first_bad(~pl.col("winner").is_in(list(WINNERS)).fill_null(False))
        value = frame["winner"][row]
        shown = "missing" if value is None else repr(value)
        raise VotesFileError(
            f"{prefix}row {row + 1}, column winner: {shown} is not one of {', '.join(WINNERS)}"
        )
    same = pl.col("model_a") == pl.col("model_b")
    if frame.select(same.any()).item():
        row = first_bad(same)
        raise VotesFileError(
            f"{prefix}row {row + 1}, column model_b: same model as model_a "
            f"({frame['model_a'][row]!r}); a model cannot battle itself"
        )
    return tuple(names.sort().to_list())


def read_votes(path: str | Path) -> pl.DataFrame:
    """Reads and validates a votes file: Parquet, CSV, JSON lines or a JSON array.

    The JSON array form is the public arena battle dump (``clean_battle_*.json``): its
    scalar fields become columns, nested ones are dropped, and where ``len_a`` / ``len_b``
    are absent they are taken from ``conv_metadata.sum_assistant_{a,b}_tokens``.

    Raises:
        VotesFileError: Unreadable or malformed file; the one-line message names the file
            and, where it can, the row and column.
        VotesFileNotFound: No such file (a ``VotesFileError`` and a ``FileNotFoundError``).
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise VotesFileNotFound(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            frame = pl.read_csv(
                path,
                separator="\t" if suffix == ".tsv" else ",",
                schema_overrides={c: pl.String for c in REQUIRED_COLUMNS},
                infer_schema_length=10_000,
            )
        elif suffix in (".jsonl", ".ndjson", ".json"):
            frame = _read_json(path)
        else:
            raise VotesFileError(
                f"{name}: unknown file type {suffix or '(none)'!r}; "
                "expected .parquet, .csv, .jsonl or .json"
            )
    except VotesFileError:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VotesFileError(f"{name}: cannot read votes: {first_line}") from e
    return validate_votes(frame, source=name)


def _read_json(path: Path) -> pl.DataFrame:
    name = path.name
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    if not head:
        raise VotesFileError(f"{name}: no votes (the file is empty)")
    if head[:1] == b"[":
        try:
            records = json.loads(path.read_bytes())
        except json.JSONDecodeError as e:
            raise VotesFileError(f"{name}: invalid JSON at line {e.lineno}: {e.msg}") from e
        return _records_frame(records, name)
    # JSON lines: parse ourselves so that an error names the row.
    records = []
    with path.open("r", encoding="utf-8") as f:
        row = 0
        for line in f:
            if not line.strip():
                continue
            row += 1
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise VotesFileError(f"{name} row {row}: invalid JSON ({e.msg})") from e
    return _records_frame(records, name)


def _records_frame(records: Any, name: str) -> pl.DataFrame:
    if not isinstance(records, list):
        raise VotesFileError(f"{name}: expected a list of vote objects")
    scalar = (str, int, float, bool, type(None))
    columns: dict[str, list[Any]] = {}
    n = len(records)
    for row, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise VotesFileError(f"{name} row {row + 1}: expected an object, found {rec!r:.40}")
        meta = rec.get("conv_metadata")
        if isinstance(meta, dict):
            for key, src in (
                ("len_a", "sum_assistant_a_tokens"),
                ("len_b", "sum_assistant_b_tokens"),
            ):
                if key not in rec and src in meta:
                    columns.setdefault(key, [None] * n)[row] = meta[src]
        for key, value in rec.items():
            if isinstance(value, scalar):
                columns.setdefault(key, [None] * n)[row] = value
    for col in REQUIRED_COLUMNS:
        if col in columns:
            columns[col] = [None if v is None else str(v) for v in columns[col]]
    if not columns:
        return pl.DataFrame()
    return pl.DataFrame(columns, strict=False, infer_schema_length=None)
