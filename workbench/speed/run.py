"""Running a bench: each model's tests in a bench process, rows as tests finish.

Each model is benchmarked in its own process (:mod:`workbench.llama.bench_worker`): when
llama.cpp aborts (a GGML_ASSERT on a bad file, a context it cannot allocate) that model's
remaining tests become error rows naming the cause, and the other models still run. An
interleaved run loads the models together in one process and lets their repetitions
take turns.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl
import psutil

from workbench import __version__
from workbench.backends.llama_cpp import llama_cpp_version
from workbench.errors import BackendError
from workbench.gguf import GGUFError, ModelInfo, read_model_info, validate_header
from workbench.host import host_info
from workbench.llama.process import Worker
from workbench.models.registry import ModelNotFound, ModelRef, default_models, resolve
from workbench.paths import data_dir
from workbench.schemas import BenchRow
from workbench.speed.cases import BenchCase, BenchError, BenchSettings, bench_cases
from workbench.speed.results import BENCH_TABLE, rows_to_bench_frame
from workbench.speed.stats import rate_stats
from workbench.store import append_table


class _HasRoot(Protocol):
    root: Path


StoreArg = bool | str | Path | _HasRoot | None


def _store_root(store: StoreArg) -> Path | None:
    if store is None or store is False:
        return None
    if store is True:
        return data_dir()
    if isinstance(store, (str, Path)):
        return Path(store)
    return Path(store.root)


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
    paths: Sequence[str],
    cases: list[BenchCase],
    reps: int,
    warmup: bool,
    mmprojs: Sequence[str | None] | None = None,
) -> Iterator[tuple[int, int, dict[str, Any] | None, str | None] | _Died]:
    """Run the models' cases in one bench process; yield (model, case, figures, error)
    as tests finish, and a final :class:`_Died` if the process died before it was done
    (the caller decides what the unreported tests become)."""
    worker = Worker("workbench.llama.bench_worker", name="bench process")
    job = {
        "paths": list(paths),
        "mmprojs": list(mmprojs) if mmprojs is not None else [None] * len(paths),
        "cases": [{**c.to_job(), "test": c.test} for c in cases],
        "reps": reps,
        "warmup": warmup,
    }
    current: int | None = None
    try:
        try:
            worker.start()
        except BackendError as e:
            yield _Died(str(e), None)
            return
        worker.send(("job", job))
        while True:
            msg = worker.recv()
            if msg is None:  # gone without saying done
                doing = f"running {cases[current].label}" if current is not None else "starting"
                yield _Died(worker.death_message(0, doing), current)
                return
            kind = msg[0]
            if kind == "start":
                current = msg[1]
            elif kind == "result":
                yield msg[1], msg[2], msg[3], None
            elif kind == "fail":
                yield msg[1], msg[2], None, msg[3]
            elif kind == "done":
                return
    finally:
        worker.close(grace_s=10)


def _run_alone(
    path: str, cases: list[BenchCase], reps: int, warmup: bool, mmproj: str | None = None
) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """One model in its own process: yield (case index, figures, error) for every case,
    the cases a dead process never reached included."""
    reported: set[int] = set()
    for item in _run_child([path], cases, reps, warmup, [mmproj]):
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
    meta: _Meta,
    interleaved: bool = False,
) -> BenchRow:
    info = mr.info
    stats = (
        rate_stats(figures["samples_ns"], case.units)
        if figures is not None and case is not None
        else None
    )
    return {
        "run_id": run_id,
        "created_at": datetime.now(UTC),
        "model": mr.ref.name,
        "model_path": mr.ref.path,
        "arch": info.arch if info else None,
        "quant": info.quant if info else None,
        "params": info.params if info else None,
        "size_bytes": info.size_bytes if info else None,
        "twin": info.is_twin if info else None,
        "backend": "llama-cpp",
        "test": case.test if case else None,
        "n_prompt": case.n_prompt if case else None,
        "n_gen": case.n_gen if case else None,
        "n_images": case.n_images if case and case.test == "img" else None,
        "image_tokens": figures.get("image_tokens") if figures else None,
        "depth": case.depth if case else None,
        "reps": reps,
        "interleaved": interleaved,
        "n_threads": case.n_threads if case else None,
        "n_batch": case.n_batch if case else None,
        "n_ubatch": case.n_ubatch if case else None,
        "flash_attn": case.flash_attn if case else None,
        "flash_attn_used": figures.get("flash_attn_used") if figures else None,
        "type_k": case.type_k if case else None,
        "type_v": case.type_v if case else None,
        "n_gpu_layers": case.n_gpu_layers if case else None,
        "n_ctx": figures.get("n_ctx") if figures else None,
        "tps_mean": stats.mean if stats else None,
        "tps_sd": stats.sd if stats else None,
        "samples_tps": stats.samples_tps if stats else None,
        "samples_ns": list(figures["samples_ns"]) if stats and figures else None,
        "error": error,
        "workbench_version": meta.workbench_version,
        "llama_cpp_version": meta.llama_cpp_version,
        "host": meta.host,
    }


@dataclass(frozen=True)
class _Meta:
    """What every row of one run says about the software and the machine."""

    workbench_version: str
    llama_cpp_version: str | None
    host: str
    """host_info() as JSON."""


def _meta() -> _Meta:
    return _Meta(__version__, llama_cpp_version(), json.dumps(host_info().as_dict()))


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
    n_images: int = 0,
    image_tokens: int | None = None,
) -> Iterator[BenchRow]:
    """Like :func:`bench`, but yields each row (a :class:`~workbench.schemas.BenchRow`) as soon
    as its test finishes, for progress displays. Nothing is stored."""
    if reps < 1:
        raise BenchError("reps must be at least 1")
    cases = bench_cases(
        n_prompt=n_prompt, n_gen=n_gen, depths=depths, sweep=sweep, n_images=n_images,
        image_tokens=image_tokens,
    )  # fmt: skip
    specs: Sequence[str | Path | ModelRef] = default_models() if models is None else models
    run_id = uuid.uuid4().hex
    meta = _meta()
    prepared = [_prepare(spec) for spec in specs]
    ready = [mr for mr in prepared if mr.error is None]
    if interleave and len(ready) > 1:
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
        for ci, figures, error in _run_alone(mr.ref.path, cases, reps, warmup, mr.ref.mmproj):
            yield _row(run_id, mr, cases[ci], reps, figures, error, meta)


def _interleaved(
    ready: list[_ModelRun],
    cases: list[BenchCase],
    reps: int,
    warmup: bool,
    run_id: str,
    meta: _Meta,
) -> Iterator[BenchRow]:
    """All models in one process, their repetitions taking turns. If llama.cpp kills
    that process, which model did it is unknown: each model then finishes its remaining
    tests alone, so the one at fault reports the abort and the others still run."""
    reported: list[set[int]] = [set() for _ in ready]
    died = False
    paths = [mr.ref.path for mr in ready]
    for item in _run_child(paths, cases, reps, warmup, [mr.ref.mmproj for mr in ready]):
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
            for ci, figures, error in _run_alone(mr.ref.path, rest, reps, warmup, mr.ref.mmproj):
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
    on_row: Callable[[BenchRow], None] | None = None,
    interleave: bool = False,
    n_images: int = 0,
    image_tokens: int | None = None,
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
        n_images: images encoded per repetition of an image test (``img``: the rate is
            images per second; a model without a projector gets an error row); 0: none.
        image_tokens: the image token budget of that test (None: the projector's).

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
        n_images=n_images,
        image_tokens=image_tokens,
    ):
        rows.append(row)
        if on_row is not None:
            on_row(row)
    frame = rows_to_bench_frame(rows)
    root = _store_root(store)
    if root is not None:
        append_table(root, BENCH_TABLE, frame)
    return frame
