"""llama-cpp-python in process-isolated workers.

Each :class:`LlamaCppBackend` owns one worker process (:mod:`workbench.llama.gen_worker`,
started by :mod:`workbench.llama.process`) that holds its loaded model. Some malformed
GGUF files make llama.cpp abort the whole process (a GGML_ASSERT, not a Python
exception); in a worker that abort becomes a :class:`Failed` event naming the model and
the assertion, and the caller lives on. A worker also makes Stop immediate (a stuck
worker is killed) and frees the model's memory for certain when it is closed.

Figures, as the row records them: ``spawn_s`` (starting the worker: interpreter and
``import llama_cpp``), ``load_s`` (loading the model), then, per request, ``ttft_s``
(submit to the first generated token), ``ttfa_s`` (to the first token of the answer,
after any thinking) and ``gen_tps_wall`` (decode steps after the first token per second of
wall time until the stream ends). The worker renders the conversation with the model's
chat template and splits the thinking from the answer (see :mod:`workbench.llama.gen_worker`).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
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
from workbench.chat import completion_text, request_messages
from workbench.errors import InputError
from workbench.gguf import GGUFError, ModelInfo, read_model_info, validate_header
from workbench.llama.log import buffers, failure_cause, flash_attn_used
from workbench.llama.params import LoadParams, load_params
from workbench.llama.process import Worker
from workbench.llama.vision import image_payload, text_only_refusal
from workbench.models.memory import plan
from workbench.models.projectors import check_budget
from workbench.thinking import setting

_CANCEL_GRACE_S = 5.0
"""After Stop, a worker that has not answered within this many seconds (stuck in a long
prompt evaluation) is killed."""
_SEED_LIMIT = 0xFFFFFFFF
"""llama.cpp's LLAMA_DEFAULT_SEED ("pick one", unrecorded): drawn seeds stay below it."""


def llama_cpp_version() -> str | None:
    """Version of the installed llama-cpp-python, without importing it."""
    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


@dataclass(frozen=True)
class LoadTimes:
    """What making a model ready took (0 for a step that was not needed)."""

    spawn_s: float
    """Starting the worker process (interpreter start and ``import llama_cpp``)."""
    load_s: float
    """Loading the model into the running worker."""


class _Output:
    """The thinking and the answer as the worker's pieces arrive, and when they did."""

    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.answer: list[str] = []
        self.t_first: float | None = None
        self.t_answer: float | None = None

    def add(self, text: str, reasoning: bool, moved: bool) -> Token | None:
        """One message of the worker; the event to show (None for an empty one, which
        only marks the first token's time)."""
        now = time.perf_counter()
        if self.t_first is None:  # the first token, whitespace (or nothing) or not
            self.t_first = now
        if not text:
            return None
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

    kind = "llama-cpp"

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        *,
        validate: bool = True,
        mmproj: str | Path | None = None,
    ):
        self.path = Path(path)
        self.name = name or self.path.stem
        self.validate = validate
        self.mmproj = Path(mmproj) if mmproj is not None else None
        """The projector (``mmproj-*.gguf``) that lets the model see images; None: text only."""
        self._worker = Worker("workbench.llama.gen_worker", name="worker")
        self._loaded: LoadParams | None = None
        self._load_info: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._info: ModelInfo | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def loaded(self) -> bool:
        return self._worker.alive and self._loaded is not None

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._worker.pid if self._worker.alive else None

    def info(self) -> ModelInfo:
        """The model's GGUF header (read once)."""
        if self._info is None:
            self._info = read_model_info(self.path)
        return self._info

    def _params(self, config: GenerationConfig) -> LoadParams:
        try:
            info = self.info()
            if self.validate:
                validate_header(info)
            if self.mmproj is not None and config.image_tokens is not None:
                check_budget(read_model_info(self.mmproj), config.image_tokens)
            return load_params(config, info, str(self.mmproj) if self.mmproj else None)
        except (GGUFError, InputError) as e:
            raise BackendError(str(e)) from None

    def load(self, config: GenerationConfig) -> LoadTimes:
        """Start the worker if needed and load (or reload, when a load setting changed)
        the model.

        Raises:
            BackendError: the file is missing, corrupt, unsupported or aborts llama.cpp,
                or the worker cannot start.
        """
        params = self._params(config)
        if self.loaded and params == self._loaded:
            return LoadTimes(0.0, 0.0)
        spawn_s = 0.0
        if not self._worker.alive:
            self._loaded = None
            spawn_s = self._worker.start()
        w = self._worker
        offset = w.log_size()
        t0 = time.perf_counter()
        w.send(("load", str(self.path), params.as_dict()))
        msg = w.recv()
        load_s = time.perf_counter() - t0
        if msg is None:
            err = w.death_message(offset, "loading the model")
            w.kill()
            raise BackendError(err)
        log = w.log_since(offset)
        if msg[0] == "error":
            self._loaded = None
            raise BackendError(f"cannot load {self.path.name}: {failure_cause(log) or msg[1]}")
        b = buffers(log)
        self._load_info = {
            **msg[1],
            "kv_cache_bytes": b.kv_bytes + b.rs_bytes,
            "flash_attn": flash_attn_used(log, params.flash_attn),
        }
        self._loaded = params
        return LoadTimes(spawn_s, load_s)

    def close(self) -> None:
        """Stop the worker; the model's memory is returned to the system."""
        with self._lock:
            self._worker.close()
            self._loaded = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._worker.kill()

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
        if prompt.images and self.mmproj is None:
            comp.finish_reason, comp.error = "error", text_only_refusal(len(prompt.images))
            yield Failed(comp.error, comp)
            return
        try:
            times = self.load(config)
        except BackendError as e:
            comp.finish_reason, comp.error = "error", str(e)
            yield Failed(str(e), comp)
            return
        comp.spawn_s, comp.load_s = times.spawn_s, times.load_s
        # The seed is per request (not a load setting); one left open is drawn here, so
        # the row can say which one produced the text.
        comp.seed = config.seed if config.seed is not None else random.randrange(_SEED_LIMIT)
        comp.prompt_mode = "chat" if self._load_info.get("chat") else "completion"
        sampling = resolve_sampling(config, self.info().recommended_sampling)
        request = {
            # The images' bytes go apart ("images"), not inside the messages.
            "messages": request_messages(prompt, config.system_prompt, image_urls=False),
            "text": completion_text(prompt, config.system_prompt),
            "thinking": setting(config.thinking),
            "grammar": config.grammar,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "min_p": sampling.min_p,
            "repeat_penalty": sampling.repeat_penalty,
            "seed": comp.seed,
            "max_tokens": config.max_tokens,
            "images": [
                image_payload(im.format, im.data, im.width, im.height, im.rgb)
                for im in prompt.images
            ],
        }
        w = self._worker
        offset = w.log_size()
        out = _Output()
        cancel_sent_at: float | None = None
        t0 = time.perf_counter()
        w.send(("generate", request))
        while True:
            if cancel is not None and cancel.is_set() and cancel_sent_at is None:
                w.send(("cancel",))
                cancel_sent_at = time.perf_counter()
            try:
                msg = w.recv(timeout=0.1)
            except TimeoutError:
                if cancel_sent_at and time.perf_counter() - cancel_sent_at > _CANCEL_GRACE_S:
                    # Stuck inside a long llama_decode: kill it; Stop must be immediate.
                    w.kill()
                    self._loaded = None
                    out.fill(comp, t0)
                    comp.finish_reason = "cancelled"
                    comp.total_s = time.perf_counter() - t0
                    yield Done(comp)
                    return
                continue
            if msg is None:
                err = w.death_message(offset, "generating")
                w.kill()
                self._loaded = None
                out.fill(comp, t0)
                comp.finish_reason, comp.error = "error", err
                comp.total_s = time.perf_counter() - t0
                yield Failed(err, comp)
                return
            kind = msg[0]
            if kind == "token":
                token = out.add(msg[1], msg[2] == "reasoning", msg[3])
                if token is not None:
                    yield token
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
        steps = f.get("gen_steps") or 0
        if t_first is not None and steps > 0 and t_end > t_first:
            # The window from the first token to the end holds exactly `steps` decodes.
            comp.gen_tps_wall = steps / (t_end - t_first)
        comp.peak_rss_bytes = f.get("peak_rss_bytes")
        comp.kv_cache_bytes = self._load_info.get("kv_cache_bytes")
        comp.n_ctx = f.get("n_ctx")
        comp.n_threads = f.get("n_threads")
        comp.flash_attn = self._load_info.get("flash_attn")
        comp.reasoning_tokens = f.get("reasoning_tokens")
        comp.image_tokens = f.get("image_tokens")
        comp.image_encode_s = f.get("image_encode_s")
        if f.get("image_tokens_each") and len(f["image_tokens_each"]) > 1:
            comp.extra["image_tokens_each"] = f["image_tokens_each"]
        if f.get("prompt_thinking"):
            # How the rendered prompt left thinking: open, closed (off) or free.
            comp.extra["prompt_thinking"] = f["prompt_thinking"]
        if f.get("reasoning_unterminated"):
            comp.extra["reasoning_unterminated"] = True  # cut inside the thinking

    def estimated_bytes(self, config: GenerationConfig) -> int:
        """Memory this model is expected to need once loaded (weights + KV cache)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if self.mmproj is not None and self.mmproj.exists():
            size += self.mmproj.stat().st_size  # the projector is loaded with the model
        try:
            p = plan(self.info(), ctx=config.n_ctx, kv_type=config.type_k, swa_full=config.swa_full)
            return int(size + p.kv_bytes + p.state_bytes)
        except Exception:  # a file the planner cannot read: weights plus a margin
            return int(size * 1.2)
