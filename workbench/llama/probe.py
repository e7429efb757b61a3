"""Ask llama.cpp itself how much cache memory it allocates, in a child process.

The parent (:func:`probe`) starts ``python -m workbench.llama.probe`` through
:mod:`workbench.llama.process`; the child loads the model once and creates one context
per :class:`ProbeConfig`, saying where in its log each context's lines are, so that the
parent reads the KV-cache and recurrent-state buffer sizes llama.cpp printed
(:func:`workbench.llama.log.buffers`; two decimals of MiB). A configuration that makes
llama.cpp abort ends the run: it and the ones after it get no result, and the run says
why. Used by the twin checks and the planner's tests.

Messages: ``("ready", info)``; ``("probe", path, configs, mmap_only)`` from the parent;
then ``("result", i, log_start, log_end, error)`` per configuration and ``("done",)``, or
``("error", message)`` when the model does not load.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.errors import BackendError
from workbench.llama.log import Buffers, buffers, failure_cause, projector_bytes
from workbench.llama.params import context_params, kv_type_id
from workbench.llama.process import ChildLog, Worker, child_connection


@dataclass(frozen=True)
class ProbeConfig:
    """One context to create."""

    n_ctx: int
    swa_full: bool = False
    flash_attn: bool | None = None
    """True, False, or None for llama.cpp's auto."""
    type_k: str = "f16"
    type_v: str = "f16"
    n_batch: int = 512
    n_ubatch: int = 512
    decode: bool = False
    """Also decode a few tokens (to catch aborts on the first decode)."""
    mmproj: str | None = None
    """Also load this vision projector on the model (its weights are read from the log)."""


@dataclass(frozen=True)
class ProbeResult:
    """What llama.cpp logged for one configuration."""

    config: ProbeConfig
    buffers: Buffers | None
    """The cache buffers it allocated (None when the context was not created)."""
    error: str | None
    projector_bytes: int | None = None
    """The projector's weights llama.cpp loaded (None: no ``mmproj`` asked for)."""


@dataclass(frozen=True)
class ProbeRun:
    """The results of one child process, in configuration order."""

    results: tuple[ProbeResult, ...]
    """One per configuration that finished; none for one that killed the process, nor
    for those after it."""
    returncode: int | None
    """The child's exit status (negative: the signal that ended it)."""
    error: str | None
    """Why the run ended early (the model did not load, the process died), one line."""
    log: str
    """The child's whole log (llama.cpp's lines)."""


def probe(
    path: str | Path,
    configs: list[ProbeConfig],
    *,
    mmap_only: bool = False,
    timeout: float = 600.0,
) -> ProbeRun:
    """Create each context of ``configs`` for the model at ``path`` in a child process
    and read the cache buffers llama.cpp allocated.

    Args:
        path: the .gguf file.
        configs: the contexts to create, one after another, on one loaded model.
        mmap_only: keep the weights in the file mapping (no CPU repack copies), so that a
            large model costs little memory; the cache sizes are the same.
        timeout: seconds for the whole run; then the child is killed.
    """
    worker = Worker("workbench.llama.probe", name="memory probe")
    results: list[ProbeResult] = []
    error: str | None = None
    try:
        worker.start()
        jobs = [
            {**asdict(c), "type_k_id": kv_type_id(c.type_k), "type_v_id": kv_type_id(c.type_v)}
            for c in configs
        ]
        worker.send(("probe", str(path), jobs, mmap_only))
        while True:
            try:
                msg = worker.recv(timeout=timeout)
            except TimeoutError:
                error = f"the memory probe took longer than {timeout:g} s"
                break
            if msg is None:
                doing = f"creating context {len(results) + 1} of {len(configs)}"
                error = worker.death_message(0, doing)
                break
            if msg[0] == "error":
                error = str(msg[1])
                results = [ProbeResult(c, None, error) for c in configs]
                break
            if msg[0] == "done":
                break
            _, i, start, end, err = msg
            log = worker.log_since(start)[: end - start]
            results.append(
                ProbeResult(configs[i], None if err else buffers(log), err, projector_bytes(log))
            )
    except BackendError as e:  # the child could not start
        error = str(e)
    finally:
        code = worker.finish(grace_s=10)
        log = worker.log_since(0)
        worker.close()
    return ProbeRun(tuple(results), code, error, log)


# --------------------------------------------------------------------------- child side


def _decode_a_few(lc: Any, model: Any, ctx: Any) -> str | None:
    vocab = lc.llama_model_get_vocab(model)
    n_vocab = int(lc.llama_vocab_n_tokens(vocab))
    first = int(lc.llama_vocab_bos(vocab)) if lc.llama_vocab_get_add_bos(vocab) else 0
    ids = [first, *(t % n_vocab for t in (1, 2, 3))]
    buf = (lc.llama_token * len(ids))(*ids)
    res = lc.llama_decode(ctx, lc.llama_batch_get_one(buf, len(ids)))
    return None if res == 0 else f"llama_decode failed (status {res})"


def _load_projector(model: Any, mmproj: str) -> str | None:
    """Load (and free) a projector on ``model``, as a generation worker does."""
    import llama_cpp.mtmd_cpp as mtmd

    params = mtmd.mtmd_context_params_default()
    params.use_gpu, params.n_threads, params.print_timings = False, 1, False
    ctx = mtmd.mtmd_init_from_file(mmproj.encode(), model, params)
    if not ctx:
        return f"llama.cpp could not load the projector {Path(mmproj).name}"
    mtmd.mtmd_free(ctx)
    return None


def _run(conn: Any, lc: Any, log: ChildLog, path: str, jobs: list[dict[str, Any]],
         mmap_only: bool) -> None:  # fmt: skip
    mp = lc.llama_model_default_params()
    if mmap_only:
        mp.use_extra_bufts = False  # no CPU repack copies: weights stay in the mapping
    offset = log.size()
    model = lc.llama_model_load_from_file(path.encode("utf-8"), mp)
    if not model:
        cause = failure_cause(log.since(offset))
        conn.send(("error", f"cannot load {Path(path).name}: {cause or 'llama.cpp refused it'}"))
        return
    try:
        for i, c in enumerate(jobs):
            start = log.size()
            n_batch = min(c["n_ctx"], c["n_batch"])  # as llama-cpp-python's Llama clamps them
            cp = context_params(
                lc,
                n_ctx=c["n_ctx"],
                n_batch=n_batch,
                n_ubatch=min(n_batch, c["n_ubatch"]),
                n_threads=1,
                flash_attn=c["flash_attn"],
                type_k=c["type_k_id"],
                type_v=c["type_v_id"],
                swa_full=c["swa_full"],
            )
            ctx = lc.llama_init_from_model(model, cp)
            error = None
            if not ctx:
                cause = failure_cause(log.since(start))
                error = cause or "llama.cpp could not create the context"
            else:
                try:
                    if c["decode"]:
                        error = _decode_a_few(lc, model, ctx)
                    if c.get("mmproj") and error is None:
                        error = _load_projector(model, c["mmproj"])
                finally:
                    lc.llama_free(ctx)
            conn.send(("result", i, start, log.size(), error))
    finally:
        lc.llama_model_free(model)
    conn.send(("done",))


def main(argv: list[str] | None = None) -> None:
    """Child entry point: say ready, run the one probe the parent sends, exit."""
    conn = child_connection(argv)
    import llama_cpp

    llama_cpp.llama_backend_init()
    conn.send(("ready", {"pid": os.getpid()}))
    with contextlib.suppress(EOFError, OSError):
        msg = conn.recv()
        if msg[0] == "probe":
            _run(conn, llama_cpp, ChildLog(argv), msg[1], msg[2], msg[3])


if __name__ == "__main__":
    main()
