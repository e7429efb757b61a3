"""workbench.speed: the llama-bench method, sweeps, crash isolation, the store."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import polars as pl
import pytest

from workbench.speed import (
    BENCH_SCHEMA,
    BenchError,
    BenchSettings,
    bench,
    bench_cases,
    check_interleave_fits,
    load_bench,
    paired_ratio,
    rate_stats,
    speed_ratios,
)


def _smollm() -> Path:
    from workbench.models.registry import smollm_path

    p = smollm_path()
    if p is None:
        pytest.skip("bundled SmolLM2 not installed (make models)")
    return p


# --------------------------------------------------------------------------- pure parts


def test_wb_bench_stays_the_function_whatever_is_imported() -> None:
    """``wb.bench(...)`` once broke after the CLI or a plot imported the bench module:
    Python binds an imported submodule onto its package, over the lazily exported
    function of the same name."""
    import importlib
    import importlib.util

    import workbench

    before = workbench.bench
    for module in ("workbench.speed", "workbench.cli.bench", "workbench.plots.bench"):
        importlib.import_module(module)
    assert workbench.bench is before and callable(before)
    assert before is importlib.import_module("workbench.speed").bench
    # No submodule may carry the name of an export (the bug, for any name).
    clashes = [n for n in workbench.__all__ if importlib.util.find_spec(f"workbench.{n}")]
    assert clashes == []


def test_rate_stats_is_llama_bench_mean_and_sample_sd() -> None:
    samples_ns = [1_000_000_000, 500_000_000, 250_000_000]  # 64 tokens each
    s = rate_stats(samples_ns, 64)
    assert s.samples_tps == [64.0, 128.0, 256.0]
    assert s.mean == pytest.approx(448 / 3)
    # llama-bench's stdev: sqrt(sum(x^2)/(n-1) - mean^2 * n/(n-1)), the sample sd
    n, xs = 3, s.samples_tps
    ref = math.sqrt(sum(x * x for x in xs) / (n - 1) - s.mean**2 * n / (n - 1))
    assert s.sd == pytest.approx(ref)
    assert s.sd == pytest.approx(statistics.stdev(xs))
    assert rate_stats([10**9], 8).sd == 0.0


def test_settings_take_lists_and_bare_values() -> None:
    s = BenchSettings(n_threads=[1, 2], flash_attn=False, type_k=["f16", "q8_0"])  # type: ignore[arg-type]
    assert s.n_threads == (1, 2)
    assert s.flash_attn == (False,)
    assert hash(s) == hash(
        BenchSettings(n_threads=(1, 2), flash_attn=[False], type_k=("f16", "q8_0"))
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"type_k": ["q9_9"]}, {"n_threads": [0]}, {"n_batch": []}, {"n_ubatch": [-1]}],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(BenchError):
        BenchSettings(**kwargs)  # type: ignore[arg-type]


def test_cases_follow_llama_bench_order() -> None:
    sweep = BenchSettings(n_threads=[1, 2], flash_attn=[False, True], n_gpu_layers=[0, 99])
    cases = bench_cases(n_prompt=64, n_gen=16, depths=(0, 128), sweep=sweep)
    assert len(cases) == 2 * 2 * 2 * 2 * 2  # ngl x fa x threads x depth x (pp, tg)
    # GPU layers outermost (one model load each), then fa, threads, depth, pp before tg
    assert [c.n_gpu_layers for c in cases[:16]] == [0] * 16
    assert [(c.test, c.depth) for c in cases[:4]] == [
        ("pp", 0),
        ("tg", 0),
        ("pp", 128),
        ("tg", 128),
    ]
    assert cases[0].n_threads == 1 and cases[4].n_threads == 2
    assert cases[0].flash_attn is False and cases[8].flash_attn is True
    assert cases[0].label == "pp64" and cases[3].label == "tg16 @ d128"
    assert cases[0].n_prompt == 64 and cases[0].n_gen == 0
    assert cases[1].n_prompt == 0 and cases[1].n_gen == 16


def test_ubatch_is_clamped_and_zero_skips_a_test() -> None:
    cases = bench_cases(n_prompt=0, n_gen=8, sweep=BenchSettings(n_batch=[64], n_ubatch=[512]))
    assert [c.test for c in cases] == ["tg"]
    assert cases[0].n_ubatch == 64
    with pytest.raises(BenchError):
        bench_cases(n_prompt=0, n_gen=0)


def test_paired_ratio_is_the_median_of_per_repetition_ratios() -> None:
    # model twice as fast in reps 0-2, as fast in reps 3-4: median of [2, 2, 2, 1, 1]
    p = paired_ratio([50, 50, 50, 100, 100], [100, 100, 100, 100, 100])
    assert p.ratio == 2.0 and p.pairs == 5
    assert math.isnan(p.low) and math.isnan(p.high)  # 5 pairs cannot give 95%
    # 6 pairs: the interval is the smallest to the largest ratio (coverage 1 - 2/64)
    p = paired_ratio([100] * 6, [90, 95, 100, 105, 110, 120])
    assert p.ratio == pytest.approx(1.025)
    assert (p.low, p.high) == (pytest.approx(0.9), pytest.approx(1.2))
    assert paired_ratio([], []).pairs == 0


def test_paired_interval_covers_the_true_median_95_percent_of_the_time() -> None:
    import random

    rng = random.Random(7)
    hits, trials, n = 0, 2000, 25
    for _ in range(trials):
        # the machine's speed drifts by up to 3x between pairs; the true ratio is 1.1
        drift = [rng.uniform(1, 3) for _ in range(n)]
        base = [int(1e6 * d * rng.lognormvariate(0, 0.1)) for d in drift]
        model = [int(1e6 * d / 1.1 * rng.lognormvariate(0, 0.1)) for d in drift]
        p = paired_ratio(model, base)
        hits += p.low <= 1.1 <= p.high
    assert 0.94 <= hits / trials <= 0.995, hits / trials


def test_interleave_refuses_models_that_do_not_fit_together(smollm: Path) -> None:
    from workbench.gguf import read_model_info

    info = read_model_info(smollm)
    check_interleave_fits([info, info], available_bytes=10 * info.size_bytes)
    with pytest.raises(BenchError, match="interleave loads all 2 models at once"):
        check_interleave_fits([info, info], available_bytes=2 * info.size_bytes)


# --------------------------------------------------------------------------- real runs


@pytest.mark.slow
def test_failing_model_becomes_an_error_row_and_others_run(tmp_path: Path) -> None:
    smol = _smollm()
    # A real GGUF header with its tensor data cut off: llama.cpp refuses to load it.
    broken = tmp_path / "broken.gguf"
    with smol.open("rb") as f:
        broken.write_bytes(f.read(2_000_000))
    frame = bench(
        [str(tmp_path / "missing.gguf"), str(broken), str(smol)],
        n_prompt=16,
        n_gen=4,
        reps=2,
        sweep=BenchSettings(n_threads=[1]),
        store=None,
    )
    assert frame.columns == list(BENCH_SCHEMA)
    by_model = {m: g for (m,), g in frame.group_by(["model"])}
    assert set(by_model) == {"missing", "broken", smol.stem.lower()}
    assert by_model["missing"]["error"].item()
    assert by_model["broken"]["error"].is_not_null().all()
    assert by_model["broken"]["tps_mean"].is_null().all()
    good = by_model[smol.stem.lower()]
    assert good["error"].is_null().all()
    assert sorted(good["test"].to_list()) == ["pp", "tg"]
    assert (good["tps_mean"] > 0).all()
    assert good["samples_ns"].list.len().to_list() == [2, 2]


@pytest.mark.slow
def test_interleaved_run_pairs_repetitions_and_keeps_others_running(
    tmp_path: Path, gemma: Path, smollm: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    with smollm.open("rb") as f:
        broken.write_bytes(f.read(2_000_000))
    order: list[tuple[str, str]] = []
    frame = bench(
        [str(smollm), str(tmp_path / "missing.gguf"), str(broken), str(gemma)],
        n_prompt=16,
        n_gen=4,
        reps=6,
        sweep=BenchSettings(n_threads=[1]),
        store=None,
        interleave=True,
        on_row=lambda r: order.append((r["model"], r["test"])),
    )
    assert frame.columns == list(BENCH_SCHEMA)
    bad = frame.filter(pl.col("model").is_in(["missing", "broken"]))
    assert bad["error"].is_not_null().all() and not bad["interleaved"].any()
    good = frame.filter(pl.col("error").is_null())
    assert set(good["model"]) == {smollm.stem.lower(), gemma.stem.lower()}
    assert good.height == 4 and good["interleaved"].all()
    assert good["samples_ns"].list.len().to_list() == [6] * 4
    # test by test, both models: pp of both arrives before tg of either
    tests = [t for m, t in order if m not in ("missing", "broken")]
    assert tests == ["pp", "pp", "tg", "tg"]

    ratios = speed_ratios(frame, str(smollm))
    assert ratios["model"].to_list() == [gemma.stem.lower()] * 2
    assert ratios["pairs"].to_list() == [6, 6]
    pp = frame.filter(pl.col("test") == "pp")
    by = {r["model"]: r["samples_ns"] for r in pp.iter_rows(named=True)}
    want = statistics.median(
        s / g for g, s in zip(by[gemma.stem.lower()], by[smollm.stem.lower()], strict=True)
    )
    got = ratios.filter(pl.col("test") == "pp")
    assert got["ratio"].item() == pytest.approx(want)
    assert got["low"].item() <= want <= got["high"].item()
    with pytest.raises(BenchError, match="interleave=True"):
        speed_ratios(frame, "missing")


@pytest.mark.slow
def test_a_dead_interleaved_process_leaves_each_model_to_finish_alone(
    gemma: Path, smollm: Path
) -> None:
    """llama.cpp killing the shared process cannot be pinned on one model: each model
    runs its remaining tests alone, so the culprit reports the failure and the others
    still run."""
    import psutil

    killed: list[int] = []
    started = time.time() - 1

    def kill_the_worker(row: dict[str, object]) -> None:
        if row["test"] != "pp" or killed:
            return
        for child in psutil.Process().children():
            try:  # only the worker this test started; older children may be zombies
                if child.create_time() >= started and any(
                    "workbench.llama.bench_worker" in part for part in child.cmdline()
                ):
                    child.kill()
                    killed.append(child.pid)
            except psutil.Error:
                continue

    frame = bench(
        [str(smollm), str(gemma)],
        n_prompt=16,
        n_gen=64,  # long enough that the tg test is still running when the kill comes
        reps=3,
        sweep=BenchSettings(n_threads=[1]),
        store=None,
        interleave=True,
        on_row=kill_the_worker,
    )
    assert killed, "the interleaved worker was not found"
    assert frame["error"].is_null().all(), frame["error"].to_list()
    assert frame.height == 4
    pp, tg = (frame.filter(pl.col("test") == t) for t in ("pp", "tg"))
    assert pp["interleaved"].all() and not tg["interleaved"].any()
    assert (tg["tps_mean"] > 0).all()


@pytest.mark.slow
def test_depth_sweep_and_store(tmp_path: Path) -> None:
    smol = _smollm()
    frame = bench(
        [str(smol)],
        n_prompt=32,
        n_gen=8,
        depths=(0, 256),
        reps=2,
        sweep=BenchSettings(n_threads=[1], type_k=["f16", "q8_0"]),
        store=tmp_path,
    )
    assert frame["error"].is_null().all(), frame["error"].to_list()
    assert frame.height == 2 * 2 * 2  # type_k x depth x test
    assert set(frame["type_k"]) == {"f16", "q8_0"}
    assert set(frame["depth"]) == {0, 256}
    # each context holds exactly what its test needs (rounded up by llama.cpp)
    deep = frame.filter((pl.col("depth") == 256) & (pl.col("test") == "pp"))
    assert (deep["n_ctx"] >= 256 + 32).all()
    stored = load_bench(tmp_path)
    assert stored.height == frame.height
    assert stored.select(list(BENCH_SCHEMA)).schema == frame.schema


@pytest.mark.slow
def test_bundled_models_bench() -> None:
    """Both bundled models bench end to end: a pp and a tg row each, every repetition
    kept. How much the repetitions spread is a speed figure, measured against a bare
    llama-cpp-python loop in the same run by benchmarks/bench_parity.py, not here."""
    from workbench.models.registry import bundled_models

    refs = bundled_models()
    if len(refs) < 2:
        pytest.skip("bundled models not installed (make models)")
    frame = bench(
        refs, n_prompt=64, n_gen=32, reps=3, store=None, sweep=BenchSettings(n_threads=[1])
    )
    assert frame["error"].is_null().all(), frame["error"].to_list()
    assert frame.height == 4
    assert set(frame["model"]) == {r.name for r in refs}
    assert (frame["tps_mean"] > 0).all()
    assert frame["samples_tps"].list.len().to_list() == [3] * 4
    assert (frame["samples_tps"].list.min() > 0).all()
    assert (frame["tps_sd"] >= 0).all()


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    from workbench.speed import rows_to_bench_frame

    base = {
        "n_threads": 2,
        "n_batch": 2048,
        "n_ubatch": 512,
        "flash_attn": None,
        "type_k": "f16",
        "type_v": "f16",
        "n_gpu_layers": -1,
        "tps_sd": 1.0,
    }
    return rows_to_bench_frame([{**base, **r} for r in rows])


def test_plot_draws_one_line_per_model_and_test_without_errors() -> None:
    from workbench.plots.bench import sweep_bars, tps_vs_depth

    frame = _frame(
        [
            {"model": "a", "test": "pp", "n_prompt": 64, "depth": 0, "tps_mean": 500.0},
            {"model": "a", "test": "pp", "n_prompt": 64, "depth": 512, "tps_mean": 400.0},
            {"model": "a", "test": "tg", "n_gen": 32, "depth": 0, "tps_mean": 50.0},
            {"model": "a", "test": "tg", "n_gen": 32, "depth": 512, "tps_mean": 40.0},
            {"model": "b", "test": "tg", "n_gen": 32, "depth": 0, "tps_mean": 80.0},
            {"model": "c", "error": "cannot load", "tps_mean": None},
        ]
    )
    fig = tps_vs_depth(frame)
    traces = {(t.name, t.xaxis): t for t in fig.data}
    assert set(traces) == {("a", "x"), ("a", "x2"), ("b", "x2")}  # pp panel, tg panel; no c
    assert list(traces[("a", "x2")].y) == [50.0, 40.0]
    assert list(traces[("a", "x2")].x) == [0, 512]
    assert [t.showlegend for t in fig.data].count(True) == 2  # one legend entry per model

    sweep = _frame(
        [
            {"model": "a", "test": "tg", "n_gen": 32, "depth": 0, "tps_mean": 50.0, "n_threads": 1},
            {"model": "a", "test": "tg", "n_gen": 32, "depth": 0, "tps_mean": 90.0, "n_threads": 2},
        ]
    )
    from workbench.plots.bench import ratio_figure

    ratios = pl.DataFrame(
        {"model": ["b", "b"], "test": ["pp", "tg"], "n_prompt": [64, 0], "n_gen": [0, 32],
         "depth": [0, 0], "ratio": [1.2, 0.9], "low": [1.1, float("nan")],
         "high": [1.3, float("nan")], "pairs": [30, 5]}
    )  # fmt: skip
    fig = ratio_figure(ratios, baseline="a")
    assert [list(t.y) for t in fig.data] == [["b pp64"], ["b tg32"]]
    assert list(fig.data[0].error_x.array) == pytest.approx([0.1])
    assert list(fig.data[0].error_x.arrayminus) == pytest.approx([0.1])
    assert list(fig.data[1].error_x.array) == [0]  # no interval below 6 pairs
    assert "against a" in fig.layout.title.text

    bars = sweep_bars(sweep)
    assert list(bars.data[0].x) == ["t=1", "t=2"]
    assert list(bars.data[0].y) == [50.0, 90.0]
