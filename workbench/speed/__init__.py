"""llama-bench-grade speed runs: prompt processing and generation tokens/s at a depth.

The method is llama-bench's (see :mod:`workbench.llama.bench_worker` for the details):
one context per test, one untimed warm-up, then ``reps`` timed repetitions on a cleared
cache; a repetition's rate is tokens / its wall time, and a test reports the mean and the
sample standard deviation of those per-repetition rates. Settings given as lists
(:class:`BenchSettings`) are swept in llama-bench's order.

On a machine whose speed drifts (a laptop's boost clock and heat, a shared VM) run
after run of the *same* model can differ by 10-30%, more than the difference being
measured. ``interleave=True`` loads the models together and lets their repetitions take
turns, and :func:`speed_ratios` compares them pair by pair, with a confidence interval.

The package is ``workbench.speed`` and its main function ``bench`` (``wb.bench``): a
submodule named ``bench`` would replace the function on the ``workbench`` package as soon
as anything imported it.

Example:
    >>> from workbench.speed import BenchSettings, bench
    >>> frame = bench(["smollm2-135m-instruct"], n_prompt=64, n_gen=32, reps=3,
    ...               sweep=BenchSettings(n_threads=[1, 2]))
"""

from __future__ import annotations

from workbench.schemas import BENCH_SCHEMA
from workbench.speed.cases import BenchCase, BenchError, BenchSettings, bench_cases
from workbench.speed.results import load_bench, load_tool_comparison, rows_to_bench_frame
from workbench.speed.run import bench, check_interleave_fits, iter_bench
from workbench.speed.stats import PairedRatio, RateStats, paired_ratio, rate_stats, speed_ratios

__all__ = [
    "BENCH_SCHEMA",
    "BenchCase",
    "BenchError",
    "BenchSettings",
    "PairedRatio",
    "RateStats",
    "bench",
    "bench_cases",
    "check_interleave_fits",
    "iter_bench",
    "load_bench",
    "load_tool_comparison",
    "paired_ratio",
    "rate_stats",
    "rows_to_bench_frame",
    "speed_ratios",
]
