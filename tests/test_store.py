"""Runs to Parquet and back, atomically."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from workbench.schemas import RUN_SCHEMA
from workbench.store import RunStore, SchemaError, load_runs


def _row(i: int, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "run_id": "r1",
        "row_id": f"row{i}",
        "created_at": datetime(2026, 11, 28, 0, 0, i, tzinfo=UTC),
        "model": f"m{i % 2}",
        "prompt_id": f"p{i}",
        "prompt": "Grüße, مرحبا",
        "response": "ok",
        "ttft_s": 0.1 * (i + 1),
        "gen_tps": 50.0,
        "completion_tokens": 3,
    }
    base.update(kw)
    return base


def test_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.append([_row(0), _row(1)])
    store.append([_row(2)])
    frame = load_runs(tmp_path)
    assert frame.schema == pl.Schema(RUN_SCHEMA)
    assert frame["row_id"].to_list() == ["row0", "row1", "row2"]
    assert frame["prompt"][0] == "Grüße, مرحبا"
    assert frame["ttft_s"].to_list() == pytest.approx([0.1, 0.2, 0.3])


def test_empty_store_has_the_schema(tmp_path: Path) -> None:
    frame = RunStore(tmp_path / "nothing").load()
    assert frame.height == 0 and frame.schema == pl.Schema(RUN_SCHEMA)


def test_schema_checked_on_write(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with pytest.raises(SchemaError, match="unknown column"):
        store.append([_row(0, colour="blue")])
    with pytest.raises(SchemaError, match="model"):
        store.append([_row(0, model=None)])
    with pytest.raises(SchemaError):
        store.append([_row(0, ttft_s="fast")])
    assert store.load().height == 0, "a rejected batch writes nothing"


def test_crash_mid_write_keeps_earlier_rows(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.append([_row(0)])
    # What a crash mid-write leaves behind: a temporary file that never got renamed.
    (store.runs_dir / ".20261128-deadbeef.parquet.1234.tmp").write_bytes(b"PAR1 half a file")
    assert store.load()["row_id"].to_list() == ["row0"]
    store.append([_row(1)])
    assert store.load().height == 2


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_export(tmp_path: Path, suffix: str) -> None:
    store = RunStore(tmp_path)
    store.append([_row(0), _row(1)])
    out = store.export(tmp_path / f"runs{suffix}")
    if suffix == ".csv":
        back = pl.read_csv(out)
    elif suffix == ".jsonl":
        back = pl.DataFrame([json.loads(line) for line in out.read_text().splitlines()])
    else:
        back = pl.read_parquet(out)
    assert back.height == 2 and back["row_id"].to_list() == ["row0", "row1"]
    with pytest.raises(ValueError, match="unknown export format"):
        store.export(tmp_path / "runs.xlsx")
