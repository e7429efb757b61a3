"""llama-cpp-python in process-isolated workers.

Each :class:`LlamaCppBackend` owns one worker process (started with ``spawn``) that holds
its loaded model. Some malformed GGUF files make llama.cpp abort the whole process (a
GGML_ASSERT, not a Python exception); in a worker that abort becomes a :class:`Failed`
event naming the model and the assertion, and the caller (a notebook kernel, the arena
server, the other models of a comparison) lives on. A worker also makes Stop immediate
(a stuck worker is killed) and frees the model's memory for certain when it is closed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.backends.base import (
    BackendError,
    Completion,
    Done,
    Event,
    Failed,
    GenerationConfig,
    Prompt,
    Token,
    resolve_sampling,
)
from workbench.backends.llama_log import exit_description, failure_cause
from workbench.chat import completion_text, request_messages
from workbench.gguf import KV_CACHE_TYPES as _KV_TYPES
from workbench.gguf import GGUFError, ModelInfo, read_model_info, validate_header
from workbench.host import physical_cores
from workbench.thinking import setting

_CANCEL_GRACE_S = 5.0
"""After Stop, a worker that has not answered within this many seconds (stuck in a long
prompt evaluation) is killed."""


def llama_cpp_version() -> str | None:
    """Version of the installed llama-cpp-python, without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def _load_params(config: GenerationConfig, info: ModelInfo) -> dict[str, Any]:
    n_ctx = config.n_ctx
    if info.n_ctx_train:
        n_ctx = min(n_ctx, int(info.n_ctx_train))
    for t in (config.type_k, config.type_v):
        if t not in _KV_TYPES:
            raise BackendError(f"unknown KV-cache type {t!r} (use one of {', '.join(_KV_TYPES)})")
    return {
        "n_ctx": n_ctx,
        "n_threads": config.n_threads or physical_cores(),
        "n_threads_batch": config.n_threads or physical_cores(),
        "n_gpu_layers": config.n_gpu_layers,
        "n_batch": config.n_batch,
        "n_ubatch": config.n_ubatch,
        "flash_attn": config.flash_attn,
        "swa_full": config.swa_full,
        "type_k": _KV_TYPES[config.type_k],
        "type_v": _KV_TYPES[config.type_v],
        "seed": config.seed if config.seed is not None else 0xFFFFFFFF,
    }


class _Output:
    """The thinking and the answer as the worker's pieces arrive, and when they did."""

    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        self.t_first: float | None = None
        self.t_answer: float | None = None

    def add(self, text: str, reasoning: bool, moved: bool) -> Token:
        now = time.perf_counter()
        if self.t_first is None and text.strip():
            self.t_first = now
        if moved:  # the answer so far was thinking: this piece holds it
            self.answer.clear()
            self.t_answer = None
        if reasoning:
            self.reasoning.append(text)
        else:
            self.answer.append(text)
            if self.t_answer is None:
                self.t_answer = now
        return Token(text, reasoning=reasoning, moved=moved)

    def fill(self, comp: Completion, t0: float) -> None:
        comp.text, comp.reasoning = "".join(self.answer), "".join(self.reasoning)
        if self.t_first is not None:
            comp.ttft_s = self.t_first - t0
        if self.t_answer is not None:
            comp.ttfa_s = self.t_answer - t0


class LlamaCppBackend:
    """One local GGUF model, run by llama-cpp-python in its own worker process.

    Args:
        path: the .gguf file.
        name: display name (defaults to the file stem).
        validate: check the header for the architecture's required keys before loading.
    """

    backend = "llama-cpp"

    def __init__(self, path: str | Path, name: str | None = None, *, validate: bool = True):
        self.path = Path(path)
        self.name = name or self.path.stem
        self.validate = validate
        self._proc: mp.process.BaseProcess | None = None
        self._conn: Any = None
        self._cancel: Any = None
        self._loaded_key: tuple[object, ...] | None = None
        self._load_info: dict[str, Any] = {}
        self._log_path: str | None = None
        self._lock = threading.Lock()
        self._info: ModelInfo | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def loaded(self) -> bool:
        return self._proc is not None and self._proc.is_alive() and self._loaded_key is not None

    def info(self) -> ModelInfo:
        """The model's GGUF header (read once)."""
        if self._info is None:
            self._info = read_model_info(self.path)
        return self._info

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        fd, self._log_path = tempfile.mkstemp(prefix="workbench-llama-", suffix=".log")
        os.close(fd)
        parent, child = ctx.Pipe(duplex=True)
        self._cancel = ctx.Event()
        from workbench.backends import _llama_worker

        self._proc = ctx.Process(
            target=_llama_worker.main,
            args=(child, self._cancel, self._log_path),
            name=f"workbench-{self.name}",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._conn = parent

    def _log_since(self, offset: int) -> str:
        if not self._log_path:
            return ""
        try:
            with open(self._log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _log_size(self) -> int:
        try:
            return os.path.getsize(self._log_path) if self._log_path else 0
        except OSError:
            return 0

    def _cause(self, offset: int) -> str | None:
        return failure_cause(self._log_since(offset))

    def _died(self, offset: int, doing: str) -> str:
        assert self._proc is not None
        self._proc.join(timeout=5)
        code = self._proc.exitcode
        cause = self._cause(offset)
        self._reset_worker()
        msg = f"llama.cpp stopped the worker ({exit_description(code)}) while {doing}"
        return f"{msg}: {cause}" if cause else msg

    def _reset_worker(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None
        self._loaded_key = None

    def _recv(self, timeout: float | None = None) -> tuple[Any, ...] | None:
        """Next message, or None when the worker died. Polls so a crash is noticed."""
        assert self._conn is not None and self._proc is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if self._conn.poll(0.05):
                    return self._conn.recv()
            except (EOFError, OSError):
                return None
            if not self._proc.is_alive():
                try:
                    if self._conn.poll(0):
                        return self._conn.recv()
                except (EOFError, OSError):
                    pass
                return None
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError

    def load(self, config: GenerationConfig) -> float:
        """Load (or reload, when load settings changed) the model; returns seconds spent.

        Raises:
            BackendError: the file is missing, corrupt, unsupported or aborts llama.cpp.
        """
        try:
            info = self.info()
            if self.validate:
                validate_header(info)
        except GGUFError as e:
            raise BackendError(str(e)) from None
        params = _load_params(config, info)
        key = tuple(sorted(params.items()))
        if self.loaded and key == self._loaded_key:
            return 0.0
        if self._proc is None or not self._proc.is_alive():
            self._reset_worker()
            self._start()
        assert self._conn is not None
        offset = self._log_size()
        t0 = time.perf_counter()
        self._conn.send(("load", str(self.path), params))
        msg = self._recv()
        if msg is None:
            raise BackendError(self._died(offset, "loading the model"))
        if msg[0] == "error":
            cause = self._cause(offset)
            self._loaded_key = None
            detail = cause or msg[1]
            raise BackendError(f"cannot load {self.path.name}: {detail}")
        self._loaded_key = key
        self._load_info = msg[1]
        return time.perf_counter() - t0

    def close(self) -> None:
        """Stop the worker; the model's memory is returned to the system."""
        with self._lock:
            if self._conn is not None and self._proc is not None and self._proc.is_alive():
                try:
                    self._conn.send(("close",))
                    self._proc.join(timeout=5)
                except OSError:
                    pass
            self._reset_worker()
            if self._log_path:
                Path(self._log_path).unlink(missing_ok=True)
                self._log_path = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._reset_worker()

    # ------------------------------------------------------------------ generation

    def stream(
        self,
        prompt: Prompt,
        config: GenerationConfig,
        cancel: threading.Event | None = None,
    ) -> Iterator[Event]:
        """Stream one response. Never raises for model failures: they end in Failed."""
        with self._lock:
            yield from self._stream(prompt, config, cancel)

    def _stream(
        self, prompt: Prompt, config: GenerationConfig, cancel: threading.Event | None
    ) -> Iterator[Event]:
        comp = Completion()
        try:
            comp.load_s = self.load(config)
        except BackendError as e:
            comp.finish_reason, comp.error = "error", str(e)
            yield Failed(str(e), comp)
            return
        assert self._conn is not None and self._cancel is not None
        self._cancel.clear()
        comp.prompt_mode = "chat" if self._load_info.get("chat") else "completion"
        sampling = resolve_sampling(config, self.info().recommended_sampling)
        request = {
            "messages": request_messages(prompt, config.system_prompt),
            "text": completion_text(prompt, config.system_prompt),
            "thinking": setting(config.thinking),
            "grammar": config.grammar,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "seed": config.seed,
            "max_tokens": config.max_tokens,
        }
        offset = self._log_size()
        t0 = time.perf_counter()
        out = _Output()
        cancel_sent_at: float | None = None
        self._conn.send(("generate", request))
        while True:
            if cancel is not None and cancel.is_set() and cancel_sent_at is None:
                self._cancel.set()
                cancel_sent_at = time.perf_counter()
            try:
                msg = self._recv(timeout=0.1)
            except TimeoutError:
                if cancel_sent_at and time.perf_counter() - cancel_sent_at > _CANCEL_GRACE_S:
                    # Stuck inside a long llama_decode: kill it; Stop must be immediate.
                    self._reset_worker()
                    out.fill(comp, t0)
                    comp.finish_reason = "cancelled"
                    comp.total_s = time.perf_counter() - t0
                    comp.completion_tokens = None
                    yield Done(comp)
                    return
                continue
            if msg is None:
                err = self._died(offset, "generating")
                out.fill(comp, t0)
                comp.finish_reason, comp.error = "error", err
                comp.total_s = time.perf_counter() - t0
                yield Failed(err, comp)
                return
            kind = msg[0]
            if kind == "token":
                yield out.add(msg[1], msg[2] == "reasoning", msg[3])
                continue
            t_end = time.perf_counter()
            figures: dict[str, Any] = msg[2] if kind == "error" else msg[1]
            out.fill(comp, t0)
            self._fill(comp, figures, t0, out.t_first, t_end)
            if kind == "error":
                comp.finish_reason, comp.error = "error", str(msg[1])
                yield Failed(str(msg[1]), comp)
            else:
                yield Done(comp)
            return

    def _fill(
        self,
        comp: Completion,
        f: dict[str, Any],
        t0: float,
        t_first: float | None,
        t_end: float,
    ) -> None:
        comp.finish_reason = f.get("finish_reason", "stop")
        comp.total_s = t_end - t0
        comp.prompt_tokens = f.get("prompt_tokens")
        comp.completion_tokens = f.get("completion_tokens")
        if f.get("n_p_eval") and f.get("t_p_eval_ms"):
            comp.prompt_tps = f["n_p_eval"] / (f["t_p_eval_ms"] / 1000)
        if f.get("n_eval") and f.get("t_eval_ms"):
            comp.gen_tps = f["n_eval"] / (f["t_eval_ms"] / 1000)
        n = comp.completion_tokens or 0
        if t_first is not None and n > 1 and t_end > t_first:
            # The first token arrives at t_first; the rest are generated after it.
            comp.gen_tps_wall = (n - 1) / (t_end - t_first)
        comp.peak_rss_bytes = f.get("peak_rss_bytes")
        comp.kv_cache_bytes = f.get("kv_cache_bytes")
        comp.n_ctx = f.get("n_ctx")
        comp.n_threads = f.get("n_threads")
        comp.flash_attn = f.get("flash_attn")
        if f.get("seed") is not None:
            comp.extra["seed"] = f["seed"]
        comp.reasoning_tokens = f.get("reasoning_tokens")
        if f.get("prompt_thinking"):
            # How the rendered prompt left thinking: open, closed (off) or free.
            comp.extra["prompt_thinking"] = f["prompt_thinking"]
        if f.get("reasoning_unterminated"):
            comp.extra["reasoning_unterminated"] = True  # cut inside the thinking

    def estimated_bytes(self, config: GenerationConfig) -> int:
        """Memory this model is expected to need once loaded (weights + KV cache)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        try:
            from workbench.models import memory

            plan = memory.plan(
                self.info(), ctx=config.n_ctx, kv_type=config.type_k, swa_full=config.swa_full
            )
            return int(size + plan.kv_bytes + plan.state_bytes)
        except Exception:
            return int(size * 1.2)
