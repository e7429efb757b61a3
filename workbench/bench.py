"""llama-bench-grade speed runs: prompt processing and generation tokens/s at a depth.

The method is llama-bench's (see :mod:`workbench._bench_worker` for the details): one
context per test, one untimed warm-up, then ``reps`` timed repetitions on a cleared
cache; a repetition's rate is tokens / its wall time, and a test reports the mean and
the sample standard deviation of those per-repetition rates. Settings given as lists
(:class:`BenchSettings`) are swept in llama-bench's order.

Each model is benchmarked in its own spawned process: when llama.cpp aborts (a
GGML_ASSERT on a bad file, a context it cannot allocate) that model's remaining tests
become error rows naming the cause, and the other models still run.

On a machine whose speed drifts (a laptop's boost clock and heat, a shared VM) run
after run of the *same* model can differ by 10-30%, more than the difference being
measured. ``interleave=True`` loads the models together and lets their repetitions take
turns, and :func:`speed_ratios` compares them pair by pair, with a confidence interval.

Example:
    >>> from workbench.bench import BenchSettings, bench
    >>> frame = bench(["smollm2-135m-instruct"], n_prompt=64, n_gen=32, reps=3,
    ...               sweep=BenchSettings(n_threads=[1, 2]))
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing as mp
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from workbench.backends.llama_log import exit_description, failure_cause
from workbench.errors import InputError
from workbench.gguf import KV_CACHE_TYPES as KV_TYPES
from workbench.gguf import GGUFError, ModelInfo, read_model_info, validate_header
from workbench.models.registry import ModelNotFound, ModelRef, default_models, resolve
from workbench.schemas import BENCH_SCHEMA

__all__ = [
    "BENCH_SCHEMA",
    "BenchCase",
    "BenchSettings",
    "PairedRatio",
    "RateStats",
    "bench",
    "bench_cases",
    "check_interleave_fits",
    "iter_bench",
    "load_bench",
    "paired_ratio",
    "rate_stats",
    "speed_ratios",
]

BENCH_TABLE = "bench"


class BenchError(InputError):
    """Settings that cannot be benchmarked (the message says which)."""


def _tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


@dataclass(frozen=True)
class BenchSettings:
    """Settings to sweep; every field is a list of values, and every combination runs.

    Lists are stored as tuples (so settings hash and compare); a bare value counts as a
    one-element list.
    """

    n_threads: Sequence[int | None] = (None,)
    """CPU threads; None = physical cores (what llama-bench uses)."""
    n_batch: Sequence[int] = (2048,)
    """Logical batch size: tokens per llama_decode call during prompt processing."""
    n_ubatch: Sequence[int] = (512,)
    """Physical batch size (clamped to n_batch, as llama.cpp does)."""
    flash_attn: Sequence[bool | None] = (None,)
    """Flash attention: True, False, or None for llama.cpp's auto."""
    type_k: Sequence[str] = ("f16",)
    """KV-cache type for K (f16, q8_0, q4_0, ...)."""
    type_v: Sequence[str] = ("f16",)
    """KV-cache type for V (quantized V needs flash attention)."""
    n_gpu_layers: Sequence[int] = (-1,)
    """Layers offloaded to the GPU; -1 = all (ignored by CPU-only builds)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            values = _tuple(getattr(self, f.name))
            if not values:
                raise BenchError(f"{f.name}: give at least one value")
            object.__setattr__(self, f.name, values)
        for t in (*self.type_k, *self.type_v):
            if t not in KV_TYPES:
                raise BenchError(f"unknown KV-cache type {t!r} (use one of {', '.join(KV_TYPES)})")
        for name in ("n_batch", "n_ubatch"):
            if any(int(v) < 1 for v in getattr(self, name)):
                raise BenchError(f"{name} must be at least 1")
        if any(v is not None and int(v) < 1 for v in self.n_threads):
            raise BenchError("n_threads must be at least 1")


@dataclass(frozen=True)
class BenchCase:
    """One test of one model: what the child process runs and times."""

    test: str
    """pp (prompt processing) or tg (text generation)."""
    n_prompt: int
    n_gen: int
    depth: int
    """Tokens already in the cache before the timed part."""
    n_threads: int
    n_batch: int
    n_ubatch: int
    flash_attn: bool | None
    type_k: str
    type_v: str
    n_gpu_layers: int

    @property
    def label(self) -> str:
        """llama-bench's test name: ``pp512``, ``tg128 @ d4096``."""
        n = self.n_prompt if self.test == "pp" else self.n_gen
        return f"{self.test}{n}" + (f" @ d{self.depth}" if self.depth else "")

    def settings(self) -> str:
        """The settings as llama-bench flags, for messages."""
        fa = "auto" if self.flash_attn is None else int(self.flash_attn)
        return (
            f"-t {self.n_threads} -b {self.n_batch} -ub {self.n_ubatch} -fa {fa} "
            f"-ctk {self.type_k} -ctv {self.type_v} -ngl {self.n_gpu_layers}"
        )

    def to_job(self) -> dict[str, Any]:
        return {
            "n_prompt": self.n_prompt,
            "n_gen": self.n_gen,
            "depth": self.depth,
            "n_threads": self.n_threads,
            "n_batch": self.n_batch,
            "n_ubatch": self.n_ubatch,
            "flash_attn": self.flash_attn,
            "type_k_id": KV_TYPES[self.type_k],
            "type_v_id": KV_TYPES[self.type_v],
            "n_gpu_layers": self.n_gpu_layers,
        }


def bench_cases(
    *,
    n_prompt: int = 512,
    n_gen: int = 128,
    depths: Sequence[int] = (0,),
    sweep: BenchSettings | None = None,
) -> list[BenchCase]:
    """Every test of a sweep, in llama-bench's order (GPU layers outermost, so a model is
    reloaded only when they change; then batch, KV types, flash attention, threads and
    depth; pp before tg)."""
    from workbench.host import physical_cores

    s = sweep or BenchSettings()
    if n_prompt < 0 or n_gen < 0 or (n_prompt == 0 and n_gen == 0):
        raise BenchError("n_prompt and n_gen must be >= 0 and not both 0")
    if not depths or any(int(d) < 0 for d in depths):
        raise BenchError("depths must be >= 0")
    cases = []
    for ngl, nb, nub, tk, tv, fa, nt, d in itertools.product(
        s.n_gpu_layers,
        s.n_batch,
        s.n_ubatch,
        s.type_k,
        s.type_v,
        s.flash_attn,
        s.n_threads,
        depths,
    ):
        common: dict[str, Any] = {
            "depth": int(d),
            "n_threads": int(nt) if nt is not None else physical_cores(),
            "n_batch": int(nb),
            "n_ubatch": min(int(nub), int(nb)),
            "flash_attn": fa,
            "type_k": tk,
            "type_v": tv,
            "n_gpu_layers": int(ngl),
        }
        if n_prompt > 0:
            cases.append(BenchCase("pp", n_prompt, 0, **common))
        if n_gen > 0:
            cases.append(BenchCase("tg", 0, n_gen, **common))
    return cases


@dataclass(frozen=True)
class RateStats:
    """Per-repetition rates of one test and their summary."""

    samples_tps: list[float] = field(default_factory=list)
    """Tokens/s of each repetition."""
    mean: float = math.nan
    """Mean of the per-repetition rates (tokens/s)."""
    sd: float = math.nan
    """Sample standard deviation of the per-repetition rates (0 for one repetition)."""

    @property
    def cv(self) -> float:
        """Coefficient of variation, sd / mean."""
        return self.sd / self.mean if self.mean else math.nan


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
    ratios = sorted(b / a for a, b in zip(samples_ns[:n], baseline_ns[:n], strict=True))
    mid = n // 2
    median = ratios[mid] if n % 2 else (ratios[mid - 1] + ratios[mid]) / 2
    k, tail = 0, 0.0
    while True:
        tail += math.comb(n, k) / 2**n  # P(X <= k)
        if tail > 0.025:
            break
        k += 1
    if k == 0:
        return PairedRatio(median, math.nan, math.nan, n)
    return PairedRatio(median, ratios[k - 1], ratios[n - k], n)


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


# --------------------------------------------------------------------------- running


class _HasRoot(Protocol):
    root: Path


StoreArg = bool | str | Path | _HasRoot | None


def _store_root(store: StoreArg) -> Path | None:
    from workbench.store import data_dir

    if store is None or store is False:
        return None
    if store is True:
        return data_dir()
    if isinstance(store, (str, Path)):
        return Path(store)
    return Path(store.root)


def _cause(log_path: str) -> str | None:
    try:
        text = Path(log_path).read_text("utf-8", "replace")
    except OSError:
        return None
    return failure_cause(text)


@dataclass
class _ModelRun:
    """The figures the parent knows about one model before its child reports."""

    ref: ModelRef
    info: ModelInfo | None = None
    error: str | None = None


def _prepare(spec: str | Path | ModelRef) -> _ModelRun:
    try:
        ref = spec if isinstance(spec, ModelRef) else resolve(str(spec))
    except ModelNotFound as e:
        return _ModelRun(ModelRef(str(spec), str(spec), "unknown"), error=str(e))
    if ref.is_endpoint:
        return _ModelRun(ref, error=f"{ref.name}: bench needs a local GGUF file, not a server")
    try:
        info = read_model_info(ref.path)
        validate_header(info)
    except (GGUFError, OSError) as e:
        return _ModelRun(ref, error=str(e) or type(e).__name__)
    return _ModelRun(ref, info)


@dataclass(frozen=True)
class _Died:
    """The child process is gone without saying done (llama.cpp aborted it)."""

    error: str
    """What happened, with llama.cpp's own words when its log has them."""
    case: int | None
    """The test it was running, when known."""


def _run_child(
    paths: Sequence[str], cases: list[BenchCase], reps: int, warmup: bool
) -> Iterator[tuple[int, int, dict[str, Any] | None, str | None] | _Died]:
    """Run the models' cases in one spawned process; yield (model, case, figures, error)
    as tests finish, and a final :class:`_Died` if the process died before it was done
    (the caller decides what the unreported tests become)."""
    ctx = mp.get_context("spawn")
    fd, log_path = tempfile.mkstemp(prefix="workbench-bench-", suffix=".log")
    os.close(fd)
    parent, child = ctx.Pipe(duplex=False)
    from workbench import _bench_worker

    job = {
        "paths": list(paths),
        "cases": [c.to_job() for c in cases],
        "reps": reps,
        "warmup": warmup,
    }
    proc = ctx.Process(
        target=_bench_worker.main, args=(child, log_path, job), name="workbench-bench", daemon=True
    )
    current: int | None = None
    dead: tuple[Any, ...] = ("dead",)
    try:
        proc.start()
        child.close()
        while True:
            msg: tuple[Any, ...] | None
            try:
                msg = parent.recv() if parent.poll(0.1) else None
            except (EOFError, OSError):
                msg = dead
            if msg is None:
                if proc.is_alive():
                    continue
                try:
                    msg = parent.recv() if parent.poll(0) else dead
                except (EOFError, OSError):
                    msg = dead
            kind = msg[0]
            if kind == "start":
                current = msg[1]
            elif kind == "result":
                yield msg[1], msg[2], msg[3], None
            elif kind == "fail":
                yield msg[1], msg[2], None, msg[3]
            elif kind == "done":
                break
            else:  # the process is gone without saying done: llama.cpp aborted it
                proc.join(timeout=5)
                cause = _cause(log_path)
                doing = f" during {cases[current].label}" if current is not None else ""
                status = exit_description(proc.exitcode)
                err = f"llama.cpp stopped the bench process ({status}){doing}"
                yield _Died(f"{err}: {cause}" if cause else err, current)
                break
        proc.join(timeout=10)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        parent.close()
        Path(log_path).unlink(missing_ok=True)


def _run_alone(
    path: str, cases: list[BenchCase], reps: int, warmup: bool
) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """One model in its own process: yield (case index, figures, error) for every case,
    the cases a dead process never reached included."""
    reported: set[int] = set()
    for item in _run_child([path], cases, reps, warmup):
        if isinstance(item, _Died):
            for ci in range(len(cases)):
                if ci not in reported:
                    yield ci, None, item.error if ci == item.case else f"not run: {item.error}"
            return
        _, ci, figures, error = item
        reported.add(ci)
        yield ci, figures, error


def _row(
    run_id: str,
    mr: _ModelRun,
    case: BenchCase | None,
    reps: int,
    figures: dict[str, Any] | None,
    error: str | None,
    meta: dict[str, Any],
    interleaved: bool = False,
) -> dict[str, Any]:
    info = mr.info
    row: dict[str, Any] = {
        "run_id": run_id,
        "created_at": datetime.now(UTC),
        "model": mr.ref.name,
        "model_path": mr.ref.path,
        "arch": info.arch if info else None,
        "quant": info.quant if info else None,
        "params": info.params if info else None,
        "size_bytes": info.size_bytes if info else None,
        "backend": "llama-cpp",
        "reps": reps,
        "interleaved": interleaved,
        "error": error,
        **meta,
    }
    if case is not None:
        row.update(
            test=case.test,
            n_prompt=case.n_prompt,
            n_gen=case.n_gen,
            depth=case.depth,
            n_threads=case.n_threads,
            n_batch=case.n_batch,
            n_ubatch=case.n_ubatch,
            flash_attn=case.flash_attn,
            type_k=case.type_k,
            type_v=case.type_v,
            n_gpu_layers=case.n_gpu_layers,
        )
    if figures is not None and case is not None:
        stats = rate_stats(figures["samples_ns"], case.n_prompt + case.n_gen)
        row.update(
            n_ctx=figures.get("n_ctx"),
            flash_attn_used=figures.get("flash_attn_used"),
            samples_ns=list(figures["samples_ns"]),
            samples_tps=stats.samples_tps,
            tps_mean=stats.mean,
            tps_sd=stats.sd,
        )
    return {c: row.get(c) for c in BENCH_SCHEMA}


def _meta() -> dict[str, Any]:
    from workbench import __version__
    from workbench.backends.llama_cpp import llama_cpp_version
    from workbench.host import host_info

    return {
        "workbench_version": __version__,
        "llama_cpp_version": llama_cpp_version(),
        "host": json.dumps(host_info().as_dict()),
    }


def check_interleave_fits(infos: Sequence[ModelInfo], available_bytes: int) -> None:
    """Refuse an interleaved run whose models' weights, all loaded at once, would not fit
    in ``available_bytes`` of memory (a run that swaps measures the disk, not the model)."""
    need = sum(i.size_bytes for i in infos)
    if need > 0.9 * available_bytes:
        gib = 2**30
        raise BenchError(
            f"interleave loads all {len(infos)} models at once: {need / gib:.1f} GiB of "
            f"weights, but only {available_bytes / gib:.1f} GiB of memory is available; "
            "bench them one after another (without interleave)"
        )


def iter_bench(
    models: Sequence[str | Path | ModelRef] | None = None,
    *,
    n_prompt: int = 512,
    n_gen: int = 128,
    depths: Sequence[int] = (0,),
    reps: int = 5,
    sweep: BenchSettings | None = None,
    warmup: bool = True,
    interleave: bool = False,
) -> Iterator[dict[str, Any]]:
    """Like :func:`bench`, but yields each row (a dict with BENCH_SCHEMA's keys) as soon
    as its test finishes, for progress displays. Nothing is stored."""
    if reps < 1:
        raise BenchError("reps must be at least 1")
    cases = bench_cases(n_prompt=n_prompt, n_gen=n_gen, depths=depths, sweep=sweep)
    specs: Sequence[str | Path | ModelRef] = default_models() if models is None else models
    run_id = uuid.uuid4().hex
    meta = _meta()
    prepared = [_prepare(spec) for spec in specs]
    ready = [mr for mr in prepared if mr.error is None]
    if interleave and len(ready) > 1:
        import psutil

        check_interleave_fits(
            [mr.info for mr in ready if mr.info], psutil.virtual_memory().available
        )
        for mr in prepared:
            if mr.error is not None:
                yield _row(run_id, mr, None, reps, None, mr.error, meta)
        yield from _interleaved(ready, cases, reps, warmup, run_id, meta)
        return
    for mr in prepared:
        if mr.error is not None:
            yield _row(run_id, mr, None, reps, None, mr.error, meta)
            continue
        for ci, figures, error in _run_alone(mr.ref.path, cases, reps, warmup):
            yield _row(run_id, mr, cases[ci], reps, figures, error, meta)


def _interleaved(
    ready: list[_ModelRun],
    cases: list[BenchCase],
    reps: int,
    warmup: bool,
    run_id: str,
    meta: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """All models in one process, their repetitions taking turns. If llama.cpp kills
    that process, which model did it is unknown: each model then finishes its remaining
    tests alone, so the one at fault reports the abort and the others still run."""
    reported: list[set[int]] = [set() for _ in ready]
    died = False
    for item in _run_child([mr.ref.path for mr in ready], cases, reps, warmup):
        if isinstance(item, _Died):
            died = True
            break
        mi, ci, figures, error = item
        reported[mi].add(ci)
        yield _row(run_id, ready[mi], cases[ci], reps, figures, error, meta, interleaved=True)
    if not died:
        return
    for mi, mr in enumerate(ready):
        rest = [c for ci, c in enumerate(cases) if ci not in reported[mi]]
        if rest:
            for ci, figures, error in _run_alone(mr.ref.path, rest, reps, warmup):
                yield _row(run_id, mr, rest[ci], reps, figures, error, meta)


def bench(
    models: Sequence[str | Path | ModelRef] | None = None,
    *,
    n_prompt: int = 512,
    n_gen: int = 128,
    depths: Sequence[int] = (0,),
    reps: int = 5,
    sweep: BenchSettings | None = None,
    store: StoreArg = True,
    warmup: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    interleave: bool = False,
) -> pl.DataFrame:
    """Benchmark prompt processing and generation speed of each model, llama-bench style.

    Args:
        models: registry names, .gguf paths or ModelRefs (None = the bundled defaults).
        n_prompt: prompt tokens per pp test (0 skips pp).
        n_gen: generated tokens per tg test (0 skips tg).
        depths: tokens already in the KV cache before the timed part, one test each.
        reps: timed repetitions per test (after one untimed warm-up).
        sweep: settings lists; every combination runs (default: llama-bench's defaults).
        store: True = append to the "bench" table under data_dir(); a directory or an
            object with a ``root`` (a RunStore) = append there; None/False = don't store.
        warmup: run llama-bench's untimed warm-up before the repetitions.
        on_row: called with each row as its test finishes (progress displays).
        interleave: load all models in one process and let their repetitions take turns
            (ABBA order), so that the machine's drifts (boost clocks, heat, a busy
            neighbour) fall on every model alike and repetition ``i`` of each model ran
            at nearly the same moment: the fair way to compare models on a laptop or a
            shared VM, with :func:`speed_ratios` for the paired comparison. The models
            must fit in memory together. Default: one process per model, in turn, as
            llama-bench runs them.

    Returns:
        One row per (model, settings, depth, test) with BENCH_SCHEMA's columns; a model
        that failed contributes rows whose ``error`` says why.
    """
    rows = []
    for row in iter_bench(
        models,
        n_prompt=n_prompt,
        n_gen=n_gen,
        depths=depths,
        reps=reps,
        sweep=sweep,
        warmup=warmup,
        interleave=interleave,
    ):
        rows.append(row)
        if on_row is not None:
            on_row(row)
    frame = rows_to_bench_frame(rows)
    root = _store_root(store)
    if root is not None:
        from workbench.store import append_table

        append_table(root, BENCH_TABLE, frame)
    return frame


def rows_to_bench_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Row dicts -> a frame with exactly BENCH_SCHEMA."""
    return pl.DataFrame(
        [{c: r.get(c) for c in BENCH_SCHEMA} for r in rows], schema=BENCH_SCHEMA, strict=False
    )


def load_bench(root: str | Path | None = None) -> pl.DataFrame:
    """Every stored bench row (under ``root``, default data_dir()) as one frame."""
    from workbench.store import data_dir, load_table

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
