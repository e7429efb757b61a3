"""Bench rows: their schema, frames of them, the stored table, tool comparisons."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from workbench.paths import data_dir
from workbench.store import load_table

BENCH_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "model": pl.String(),
    "model_path": pl.String(),
    "arch": pl.String(),
    "quant": pl.String(),
    "params": pl.Int64(),
    "size_bytes": pl.Int64(),
    "twin": pl.Boolean(),
    "backend": pl.String(),
    "test": pl.String(),
    "n_prompt": pl.Int32(),
    "n_gen": pl.Int32(),
    "depth": pl.Int32(),
    "reps": pl.Int32(),
    "interleaved": pl.Boolean(),
    "n_threads": pl.Int32(),
    "n_batch": pl.Int32(),
    "n_ubatch": pl.Int32(),
    "flash_attn": pl.Boolean(),
    "flash_attn_used": pl.Boolean(),
    "type_k": pl.String(),
    "type_v": pl.String(),
    "n_gpu_layers": pl.Int32(),
    "n_ctx": pl.Int32(),
    "tps_mean": pl.Float64(),
    "tps_sd": pl.Float64(),
    "samples_tps": pl.List(pl.Float64()),
    "samples_ns": pl.List(pl.Int64()),
    "error": pl.String(),
    "workbench_version": pl.String(),
    "llama_cpp_version": pl.String(),
    "host": pl.String(),
}
"""One row per (model, settings, depth, test). ``flash_attn`` is the request (null =
auto), ``flash_attn_used`` what llama.cpp chose. ``twin`` is true for a synthetic twin
(random weights: its speed is the original's, its text is not). Error rows carry
``error`` and whatever settings were known; their rates are null. ``host`` holds JSON."""

BENCH_TABLE = "bench"


def rows_to_bench_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Row dicts -> a frame with exactly BENCH_SCHEMA."""
    return pl.DataFrame(
        [{c: r.get(c) for c in BENCH_SCHEMA} for r in rows], schema=BENCH_SCHEMA, strict=False
    )


def load_bench(root: str | Path | None = None) -> pl.DataFrame:
    """Every stored bench row (under ``root``, default data_dir()) as one frame."""
    frame = load_table(root if root is not None else data_dir(), BENCH_TABLE, BENCH_SCHEMA)
    return frame.sort("created_at")


def load_tool_comparison(path: str | Path) -> pl.DataFrame:
    """A results file of ``benchmarks/gpu/measure.py`` (workbench bench and llama-bench on
    the same models, in one run) as one bench-shaped frame: the tool is part of the model
    label, so :func:`workbench.plots.bench.tps_vs_depth` draws both side by side, and a
    ``ratio`` column gives workbench / llama-bench for each test.

    Args:
        path: the JSON file (e.g. data/gpu/twins_h100.json).
    """
    doc = json.loads(Path(path).read_text())
    rows = []
    for r in doc["workbench_bench"]:
        rows.append(
            (
                r["model_name"],
                "workbench",
                r["test"],
                r["depth"],
                r["n_prompt"],
                r["n_gen"],
                r["tps_mean"],
                r["tps_sd"],
            )
        )
    for r in doc["llama_bench"]:
        test = "pp" if r["n_prompt"] else "tg"
        rows.append(
            (
                r["model_name"],
                "llama-bench",
                test,
                r["n_depth"],
                r["n_prompt"],
                r["n_gen"],
                r["avg_ts"],
                r["stddev_ts"],
            )
        )
    frame = pl.DataFrame(
        rows,
        schema=["model_name", "tool", "test", "depth", "n_prompt", "n_gen", "tps_mean", "tps_sd"],
        orient="row",
    )
    ref = frame.filter(pl.col("tool") == "llama-bench").select(
        "model_name", "test", "depth", pl.col("tps_mean").alias("_ref")
    )
    frame = frame.join(ref, on=["model_name", "test", "depth"], how="left").with_columns(
        (pl.col("tps_mean") / pl.col("_ref")).alias("ratio"),
        (pl.col("model_name") + " (" + pl.col("tool") + ")").alias("model"),
        pl.lit(None, dtype=pl.String).alias("error"),
        *[
            pl.lit(None).alias(c)
            for c in (
                "n_threads",
                "n_batch",
                "n_ubatch",
                "flash_attn",
                "type_k",
                "type_v",
                "n_gpu_layers",
            )
        ],
    )
    return frame.drop("_ref").sort("model_name", "test", "depth", "tool")
