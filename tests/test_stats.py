"""The median's distribution-free interval, and the depth figure drawing it."""

from __future__ import annotations

import math
import random

import polars as pl

from workbench.plots.bench import tps_vs_depth
from workbench.stats import median_interval


def test_median_interval_order_statistics() -> None:
    m = median_interval([5.0, 1.0, 4.0, 2.0, 3.0, 6.0])
    # n = 6: P(X <= 0) = 1/64 <= 2.5% < P(X <= 1) = 7/64, so k = 1: min and max.
    assert (m.median, m.low, m.high, m.n) == (3.5, 1.0, 6.0, 6)
    ten = median_interval([float(i) for i in range(1, 11)])
    assert (ten.low, ten.high) == (2.0, 9.0)  # n = 10: k = 2
    few = median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert few.median == 3.0 and math.isnan(few.low) and math.isnan(few.high)
    assert median_interval([]).n == 0 and math.isnan(median_interval([]).median)


def test_median_interval_covers_the_median_at_least_95_percent_of_the_time() -> None:
    rng = random.Random(7)
    hits = 0
    trials = 2000
    for _ in range(trials):
        m = median_interval([rng.expovariate(1.0) for _ in range(12)])
        hits += m.low <= math.log(2) <= m.high  # the exponential's median
    assert hits / trials >= 0.95


def _bench_rows(samples: dict[int, list[float]]) -> pl.DataFrame:
    rows = []
    for depth, s in samples.items():
        mean = sum(s) / len(s)
        sd = math.sqrt(sum((x - mean) ** 2 for x in s) / (len(s) - 1))
        rows.append(
            {
                "model": "m",
                "test": "tg",
                "n_prompt": 0,
                "n_gen": 16,
                "depth": depth,
                "tps_mean": mean,
                "tps_sd": sd,
                "samples_tps": s,
                "error": None,
                "n_threads": 2,
                "n_batch": 512,
                "n_ubatch": 512,
                "flash_attn": None,
                "type_k": "f16",
                "type_v": "f16",
                "n_gpu_layers": 0,
            }
        )
    return pl.DataFrame(rows)


def test_depth_figure_shows_the_median_and_its_interval_when_asked() -> None:
    frame = _bench_rows(
        {0: [100.0, 98.0, 60.0, 101.0, 99.0, 102.0], 1024: [80.0, 82.0, 79.0, 81.0, 83.0, 78.0]}
    )
    sd = tps_vs_depth(frame)
    (trace,) = sd.data
    assert list(trace.y) == frame["tps_mean"].to_list()
    assert "mean ± sd" in sd.layout.title.text

    fig = tps_vs_depth(frame, error="interval")
    (trace,) = fig.data
    assert list(trace.y) == [99.5, 80.5]  # medians: one slow outlier does not drag it
    assert list(trace.error_y.array) == [102.0 - 99.5, 83.0 - 80.5]
    assert list(trace.error_y.arrayminus) == [99.5 - 60.0, 80.5 - 78.0]
    assert "median, 95% interval" in fig.layout.title.text
