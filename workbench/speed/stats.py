"""Speed statistics: llama-bench's mean and sample sd of per-repetition rates, and paired
ratios (with a distribution-free interval) of interleaved runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from workbench.speed.cases import BenchError
from workbench.stats import median_interval


@dataclass(frozen=True)
class RateStats:
    """Per-repetition rates of one test and their summary."""

    samples_tps: list[float] = field(default_factory=list)
    """Tokens/s of each repetition."""
    mean: float = math.nan
    """Mean of the per-repetition rates (tokens/s)."""
    sd: float = math.nan
    """Sample standard deviation of the per-repetition rates (0 for one repetition)."""


def rate_stats(samples_ns: Sequence[int], n_tokens: int) -> RateStats:
    """llama-bench's avg_ts / stdev_ts: rates 1e9 * n_tokens / t, their mean and sample sd."""
    rates = [1e9 * n_tokens / t for t in samples_ns if t > 0]
    if not rates:
        return RateStats()
    mean = sum(rates) / len(rates)
    if len(rates) < 2:
        return RateStats(rates, mean, 0.0)
    var = sum((r - mean) ** 2 for r in rates) / (len(rates) - 1)
    return RateStats(rates, mean, math.sqrt(var))


_CASE_KEY = (
    "run_id", "test", "n_prompt", "n_gen", "depth", "n_threads", "n_batch", "n_ubatch",
    "flash_attn", "type_k", "type_v", "n_gpu_layers",
)  # fmt: skip


@dataclass(frozen=True)
class PairedRatio:
    """How fast one model ran relative to another, repetition by repetition."""

    ratio: float
    """Median over repetitions ``i`` of (the model's t/s) / (the baseline's t/s) in ``i``."""
    low: float
    """Lower end of a distribution-free 95% interval of that median (nan below 6 pairs)."""
    high: float
    """Upper end of the interval."""
    pairs: int
    """Repetitions paired."""


def paired_ratio(samples_ns: Sequence[int], baseline_ns: Sequence[int]) -> PairedRatio:
    """Speed of ``samples_ns`` relative to ``baseline_ns``, taken pair by pair.

    Repetition ``i`` of each side must have run at nearly the same moment (an
    interleaved run), so a drift of the machine's speed cancels within each pair. The
    interval holds the median with at least 95% confidence for any distribution of the
    ratios: the order statistics ``k`` and ``n + 1 - k`` with the largest ``k`` such that
    P(Binomial(n, 1/2) < k) <= 2.5%.
    """
    n = min(len(samples_ns), len(baseline_ns))
    if n == 0:
        return PairedRatio(math.nan, math.nan, math.nan, 0)
    # t/s ratio = (tokens / t_model) / (tokens / t_baseline) = t_baseline / t_model
    m = median_interval([b / a for a, b in zip(samples_ns[:n], baseline_ns[:n], strict=True)])
    return PairedRatio(m.median, m.low, m.high, n)


def speed_ratios(frame: pl.DataFrame, baseline: str) -> pl.DataFrame:
    """Every model of an interleaved run against ``baseline`` (a model name or path),
    test by test: columns model, test, depth, n_threads, ratio, low, high, pairs.

    Rows that were not interleaved (or failed) are left out: pairing repetitions of
    models that ran minutes apart would measure the machine's drift.
    """
    rows = frame.filter(pl.col("interleaved") & pl.col("error").is_null())
    base = rows.filter((pl.col("model") == baseline) | (pl.col("model_path") == baseline))
    if base.height == 0:
        raise BenchError(
            f"no interleaved result of {baseline!r} to compare with "
            "(bench the models with interleave=True)"
        )
    others = rows.filter((pl.col("model") != baseline) & (pl.col("model_path") != baseline))
    joined = others.join(base.select([*_CASE_KEY, "samples_ns"]), on=list(_CASE_KEY),
                         suffix="_base", nulls_equal=True)  # fmt: skip
    out = []
    for r in joined.iter_rows(named=True):
        p = paired_ratio(r["samples_ns"], r["samples_ns_base"])
        out.append({"model": r["model"], "test": r["test"], "n_prompt": r["n_prompt"],
                    "n_gen": r["n_gen"], "depth": r["depth"], "n_threads": r["n_threads"],
                    "ratio": p.ratio, "low": p.low, "high": p.high, "pairs": p.pairs})  # fmt: skip
    schema = {"model": pl.String(), "test": pl.String(), "n_prompt": pl.Int32(),
              "n_gen": pl.Int32(), "depth": pl.Int32(), "n_threads": pl.Int32(),
              "ratio": pl.Float64(), "low": pl.Float64(), "high": pl.Float64(),
              "pairs": pl.Int64()}  # fmt: skip
    return pl.DataFrame(out, schema=schema)
