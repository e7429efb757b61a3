"""The bench worker: one child process benchmarks its models (child side of
:mod:`workbench.speed`). Started as ``python -m workbench.llama.bench_worker FD`` (see
:mod:`workbench.llama.process`).

The measurement follows llama-bench (``tools/llama-bench/llama-bench.cpp``) step by step:

- one context per test, with ``n_ctx = n_prompt + n_gen + depth``;
- ``pp``: random tokens (the first one BOS when the vocabulary adds BOS) decoded in
  batches of ``n_batch`` with only the last logits requested, then one synchronize;
- ``tg``: one token per ``llama_decode`` (BOS, then random tokens, no sampling), with a
  synchronize after each;
- ``img`` (not llama-bench's): the model's projector encodes a fixed test image
  ``n_images`` times per repetition (see :class:`_ImageTest`);
- one untimed warm-up (a whole ``pp`` run, or a single ``tg`` token), then ``reps`` timed
  repetitions, each on a cache cleared with ``llama_memory_clear(mem, false)``;
- depth: before the timed part of each repetition the cache is filled with ``depth``
  random tokens; the state after the first fill is saved and restored for the later
  repetitions (and later tests at the same depth), as llama-bench does.

The one difference left is the CPU thread pool: llama-bench attaches a persistent
ggml thread pool, which llama-cpp-python does not expose, so every graph runs on ggml's
default (per-compute) pool, exactly as it does for workbench's own generation.

A job normally holds one model. An interleaved job (``bench(..., interleave=True)``)
holds several, loaded together, whose repetitions take turns (see :func:`run_job`).

Messages (plain tuples on the pipe):

- ``("ready", info)`` to the parent once llama_cpp is imported;
- ``("job", job)`` from the parent: the models, cases, repetitions, warm-up;
- ``("start", case)`` before test ``case`` is set up (so an abort can be attributed);
- ``("result", model, case, figures)`` with ``samples_ns`` and what llama.cpp used;
- ``("fail", model, case, message)`` for a test that failed without killing the process;
- ``("done",)`` at the end.
"""

from __future__ import annotations

import ctypes
import os
import random
import time
from multiprocessing.connection import Connection
from typing import Any

from workbench.errors import one_line
from workbench.llama.log import failure_cause, flash_attn_used
from workbench.llama.params import context_params
from workbench.llama.process import ChildLog, child_connection


class _Runner:
    """llama-bench's test_prompt / test_gen over the raw llama.cpp API."""

    def __init__(self, lc: Any, model: Any) -> None:
        self.lc = lc
        self.model = model
        vocab = lc.llama_model_get_vocab(model)
        self.n_vocab = int(lc.llama_vocab_n_tokens(vocab))
        self.bos = int(lc.llama_vocab_bos(vocab)) if lc.llama_vocab_get_add_bos(vocab) else None
        # llama-bench uses an unseeded std::rand(); a fixed seed keeps runs comparable.
        self.rng = random.Random(1)

    def _token(self) -> int:
        return self.rng.randrange(self.n_vocab)

    def prompt(self, ctx: Any, n_prompt: int, n_batch: int, n_threads: int) -> None:
        lc = self.lc
        lc.llama_set_n_threads(ctx, n_threads, n_threads)
        buf = (lc.llama_token * n_batch)()
        done = 0
        while done < n_prompt:
            n = min(n_prompt - done, n_batch)
            buf[0] = self.bos if done == 0 and self.bos is not None else self._token()
            for i in range(1, n):
                buf[i] = self._token()
            res = lc.llama_decode(ctx, lc.llama_batch_get_one(buf, n))
            if res != 0:
                raise RuntimeError(f"llama_decode failed on a prompt batch (status {res})")
            done += n
        lc.llama_synchronize(ctx)

    def gen(self, ctx: Any, n_gen: int, n_threads: int) -> None:
        lc = self.lc
        lc.llama_set_n_threads(ctx, n_threads, n_threads)
        buf = (lc.llama_token * 1)()
        buf[0] = self.bos if self.bos is not None else self._token()
        decode, batch_get_one, sync = lc.llama_decode, lc.llama_batch_get_one, lc.llama_synchronize
        for _ in range(n_gen):
            # llama_batch_get_one continues from the sequence's last position and asks for
            # the logits of its token: llama-bench's batch.add(token, pos++, 0, true).
            res = decode(ctx, batch_get_one(buf, 1))
            if res != 0:
                raise RuntimeError(f"llama_decode failed on a generation step (status {res})")
            sync(ctx)
            buf[0] = self._token()


def _context_params(lc: Any, case: dict[str, Any]) -> Any:
    return context_params(
        lc,
        n_ctx=case["n_prompt"] + case["n_gen"] + case["depth"],
        n_batch=case["n_batch"],
        n_ubatch=case["n_ubatch"],
        n_threads=case["n_threads"],
        flash_attn=case["flash_attn"],
        type_k=case["type_k_id"],
        type_v=case["type_v_id"],
    )


def _load_error(log: str) -> str:
    cause = failure_cause(log)
    return f"cannot load the model: {cause}" if cause else "cannot load the model"


class _Model:
    """One model of the job: loaded lazily, reloaded when the GPU-layer count changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: Any = None
        self.runner: _Runner | None = None
        self.ngl: int | None = None
        # the cache after the depth fill, per (depth, K type, V type, GPU layers)
        self.depth_state: dict[tuple[object, ...], ctypes.Array[ctypes.c_uint8]] = {}

    def ensure_loaded(self, lc: Any, ngl: int, log: ChildLog) -> _Runner:
        """The loaded model for ``ngl`` GPU layers (same parameters -> same loaded model,
        as llama-bench keeps it)."""
        if self.handle is not None and self.ngl == ngl and self.runner is not None:
            return self.runner
        self.free(lc)
        mp = lc.llama_model_default_params()
        mp.n_gpu_layers = 0x7FFFFFFF if ngl < 0 else ngl
        offset = log.size()
        handle = lc.llama_model_load_from_file(self.path.encode("utf-8"), mp)
        if not handle:
            raise RuntimeError(_load_error(log.since(offset)))
        self.handle, self.ngl = handle, ngl
        self.runner = _Runner(lc, handle)
        return self.runner

    def free(self, lc: Any) -> None:
        if self.handle is not None:
            lc.llama_model_free(self.handle)
        self.handle = self.runner = self.ngl = None
        self.depth_state.clear()


class _Test:
    """One test of one model: its context (warmed up) and its timed repetitions."""

    def __init__(
        self, lc: Any, model: _Model, case: dict[str, Any], job: dict[str, Any], log: ChildLog
    ) -> None:
        assert model.runner is not None, "load the model first"
        runner = model.runner
        self.lc, self.model, self.runner, self.case = lc, model, runner, case
        offset = log.size()
        self.ctx = lc.llama_init_from_model(model.handle, _context_params(lc, case))
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context with these settings")
        self.samples: list[int] = []
        try:
            self.flash_used = flash_attn_used(log.since(offset), case["flash_attn"])
            self.mem = lc.llama_get_memory(self.ctx)
            lc.llama_memory_clear(self.mem, False)
            nb, nt = case["n_batch"], case["n_threads"]
            if job["warmup"]:
                if case["n_prompt"] > 0:
                    runner.prompt(self.ctx, case["n_prompt"], nb, nt)
                if case["n_gen"] > 0:
                    runner.gen(self.ctx, 1, nt)
        except BaseException:
            self.close()
            raise

    def rep(self) -> None:
        """One timed repetition on a cleared cache (filled to ``depth`` first, untimed)."""
        lc, runner, case, ctx = self.lc, self.runner, self.case, self.ctx
        n_prompt, n_gen, depth = case["n_prompt"], case["n_gen"], case["depth"]
        nb, nt = case["n_batch"], case["n_threads"]
        lc.llama_memory_clear(self.mem, False)
        if depth > 0:
            key = (depth, case["type_k_id"], case["type_v_id"], case["n_gpu_layers"])
            state = self.model.depth_state.get(key)
            restored = False
            if state is not None:
                restored = lc.llama_state_seq_set_data(ctx, state, len(state), 0) != 0
            if not restored:
                lc.llama_memory_clear(self.mem, False)
                runner.prompt(ctx, depth, nb, nt)
                size = lc.llama_state_seq_get_size(ctx, 0)
                buf = (ctypes.c_uint8 * size)()
                lc.llama_state_seq_get_data(ctx, buf, size, 0)
                self.model.depth_state[key] = buf
        t0 = time.perf_counter_ns()
        if n_prompt > 0:
            runner.prompt(ctx, n_prompt, nb, nt)
        if n_gen > 0:
            runner.gen(ctx, n_gen, nt)
        self.samples.append(time.perf_counter_ns() - t0)

    def figures(self) -> dict[str, Any]:
        return {
            "samples_ns": self.samples,
            "n_ctx": int(self.lc.llama_n_ctx(self.ctx)),
            "flash_attn_used": self.flash_used,
        }

    def close(self) -> None:
        if self.ctx:
            self.lc.llama_free(self.ctx)
            self.ctx = None


class _ImageTest:
    """An img test: the projector encodes ``n_images`` images per timed repetition.

    The image is a fixed pseudo-random 448 x 448 RGB picture (the projector resizes or
    tiles it as it does any image), tokenized once; each repetition times
    ``mtmd_encode_chunk`` alone, the step the row's ``image_encode_s`` times in a
    comparison (the decode of the embeddings into the context is prompt processing).
    """

    SIDE = 448

    def __init__(self, model: _Model, case: dict[str, Any], job: dict[str, Any], mmproj: str):
        import llama_cpp.mtmd_cpp as mtmd

        self.mtmd, self.case = mtmd, case
        self.ctx = self.bitmap = self.chunks = None
        self.samples: list[int] = []
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = case["n_gpu_layers"] != 0
        params.n_threads = case["n_threads"]
        params.print_timings = False
        if case.get("image_tokens"):
            params.image_min_tokens = params.image_max_tokens = case["image_tokens"]
        self.ctx = mtmd.mtmd_init_from_file(mmproj.encode(), model.handle, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not load the projector {os.path.basename(mmproj)}")
        try:
            n = self.SIDE * self.SIDE * 3
            pixels = (ctypes.c_uint8 * n).from_buffer(bytearray(random.Random(2).randbytes(n)))
            self.bitmap = mtmd.mtmd_bitmap_init(self.SIDE, self.SIDE, pixels)
            text = mtmd.mtmd_input_text()
            raw = mtmd.mtmd_default_marker()
            text.text, text.text_len = raw, len(raw)
            text.add_special, text.parse_special = False, True
            self.chunks = mtmd.mtmd_input_chunks_init()
            array = (mtmd.mtmd_bitmap_p_ctypes * 1)(self.bitmap)
            if mtmd.mtmd_tokenize(self.ctx, self.chunks, ctypes.byref(text), array, 1) != 0:
                raise RuntimeError("the projector could not preprocess the test image")
            self.chunk = next(
                mtmd.mtmd_input_chunks_get(self.chunks, i)
                for i in range(mtmd.mtmd_input_chunks_size(self.chunks))
                if mtmd.mtmd_input_chunk_get_type(mtmd.mtmd_input_chunks_get(self.chunks, i))
                == mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE
            )
            self.image_tokens = int(mtmd.mtmd_input_chunk_get_n_tokens(self.chunk))
            if job["warmup"]:
                self._encode()
        except BaseException:
            self.close()
            raise

    def _encode(self) -> None:
        if self.mtmd.mtmd_encode_chunk(self.ctx, self.chunk) != 0:
            raise RuntimeError("the projector failed to encode the test image")

    def rep(self) -> None:
        t0 = time.perf_counter_ns()
        for _ in range(self.case["n_images"]):
            self._encode()
        self.samples.append(time.perf_counter_ns() - t0)

    def figures(self) -> dict[str, Any]:
        return {"samples_ns": self.samples, "n_ctx": None, "flash_attn_used": None,
                "image_tokens": self.image_tokens}  # fmt: skip

    def close(self) -> None:
        mtmd = self.mtmd
        if self.chunks:
            mtmd.mtmd_input_chunks_free(self.chunks)
        if self.bitmap:
            mtmd.mtmd_bitmap_free(self.bitmap)
        if self.ctx:
            mtmd.mtmd_free(self.ctx)
        self.ctx = self.bitmap = self.chunks = None


def run_job(conn: Connection, lc: Any, job: dict[str, Any], log: ChildLog) -> None:
    """Benchmark every model of ``job["paths"]`` on every case of ``job["cases"]``.

    With one model this is llama-bench's loop. With several, each test's repetitions
    take turns across the models (in ABBA order: forward on even repetitions, backward on
    odd ones), so slow drifts of the machine's speed (boost clocks, heat, neighbours on
    a shared host) fall on every model alike and repetition ``i`` of each model ran at
    nearly the same moment.
    """
    models = [_Model(p) for p in job["paths"]]
    mmprojs = job.get("mmprojs") or [None] * len(models)
    try:
        for ci, case in enumerate(job["cases"]):
            conn.send(("start", ci))
            tests: list[tuple[int, _Test | _ImageTest]] = []
            for mi, model in enumerate(models):
                try:
                    model.ensure_loaded(lc, case["n_gpu_layers"], log)
                    if case.get("test") != "img":
                        tests.append((mi, _Test(lc, model, case, job, log)))
                    elif mmprojs[mi] is None:
                        raise RuntimeError("a text-only model (no projector): no image test")
                    else:
                        tests.append((mi, _ImageTest(model, case, job, mmprojs[mi])))
                except Exception as e:
                    conn.send(("fail", mi, ci, one_line(e)))
            try:
                for r in range(job["reps"]):
                    for mi, test in list(tests if r % 2 == 0 else reversed(tests)):
                        try:
                            test.rep()
                        except Exception as e:
                            conn.send(("fail", mi, ci, one_line(e)))
                            test.close()
                            tests.remove((mi, test))
                for mi, test in tests:
                    conn.send(("result", mi, ci, test.figures()))
            finally:
                for _, test in tests:
                    test.close()
    finally:
        for model in models:
            model.free(lc)
    conn.send(("done",))


def main(argv: list[str] | None = None) -> None:
    """Worker entry point: say ready, run the one job the parent sends, exit."""
    conn = child_connection(argv)
    import llama_cpp

    llama_cpp.llama_backend_init()
    conn.send(("ready", {"pid": os.getpid()}))
    try:
        msg = conn.recv()
    except (EOFError, OSError):
        return
    if msg[0] == "job":
        run_job(conn, llama_cpp, msg[1], ChildLog(argv))


if __name__ == "__main__":
    main()
