"""Bench rows (:data:`workbench.schemas.BENCH_SCHEMA`): frames of them, the stored table,
tool comparisons."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from workbench.paths import data_dir
from workbench.schemas import BENCH_SCHEMA
from workbench.store import load_table

BENCH_TABLE = "bench"


def rows_to_bench_frame(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
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
