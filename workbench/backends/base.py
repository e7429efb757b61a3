"""The backend protocol: a prompt goes in, a stream of events comes out.

A backend is anything with a ``name`` and a ``stream`` method; no inheritance needed.
Events are small frozen dataclasses so UIs can ``match`` on them:

- :class:`Token`: a piece of visible text (may be several tokens batched together);
- :class:`Done`: the response finished, with its :class:`Completion` figures;
- :class:`Failed`: the response failed; ``Failed.completion`` holds whatever was produced.

Every stream ends with exactly one ``Done`` or ``Failed``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from workbench import errors

FinishReason = Literal["stop", "length", "cancelled", "error", "interrupted"]
"""Why a response ended; "interrupted": the stream stopped before the engine said why
(a served request cut off by the server or a dropped connection), with an error."""


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling and context settings for one request. ``None`` means "engine default"."""

    temperature: float = 0.7
    """Sampling temperature; 0 means greedy decoding."""
    top_p: float = 0.95
    """Nucleus sampling probability mass."""
    top_k: int = 40
    """Sample among the k most likely tokens (0 disables)."""
    seed: int | None = None
    """RNG seed for sampling; with temperature 0 the output is deterministic anyway."""
    max_tokens: int = 256
    """Upper bound on generated tokens."""
    system_prompt: str | None = None
    """System message for chat models; prepended as plain text for base models."""
    n_ctx: int = 4096
    """Context length in tokens to allocate (clamped to the model's trained length)."""
    n_threads: int | None = None
    """CPU threads; None = physical cores, as llama.cpp's own tools choose."""
    n_gpu_layers: int = -1
    """Layers offloaded to the GPU; -1 = all (ignored by CPU-only builds)."""
    flash_attn: bool | None = None
    """Flash attention: True/False, or None for llama.cpp's "auto"."""
    swa_full: bool = False
    """Allocate a full-size sliding-window cache (llama-cpp-python's default wastes memory)."""
    n_batch: int = 512
    """Logical batch size for prompt processing."""
    n_ubatch: int = 512
    """Physical batch size for prompt processing."""
    type_k: str = "f16"
    """KV-cache type for K: f16, q8_0 or q4_0."""
    type_v: str = "f16"
    """KV-cache type for V: f16, q8_0 or q4_0 (quantized V needs flash attention)."""

    def load_key(self) -> tuple[object, ...]:
        """Fields that need a model reload when they change (the rest are per request)."""
        return (
            self.n_ctx,
            self.n_threads,
            self.n_gpu_layers,
            self.flash_attn,
            self.swa_full,
            self.n_batch,
            self.n_ubatch,
            self.type_k,
            self.type_v,
        )


@dataclass(frozen=True)
class Prompt:
    """One prompt, with the fields a prompt set carries."""

    text: str
    """The user message (or the completion prefix for base models)."""
    id: str = "adhoc"
    """Prompt id within its set."""
    category: str | None = None
    """Prompt category (coding, reasoning, ...)."""
    language: str | None = None
    """ISO 639-1 language code."""
    prompt_set: str | None = None
    """Name of the prompt set (file stem) it came from."""


@dataclass
class Completion:
    """Figures of one finished (or failed) response. Times in seconds, rates in tokens/s."""

    text: str = ""
    finish_reason: FinishReason = "stop"
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    """Wall time from submit to the first non-empty streamed text."""
    total_s: float | None = None
    """Wall time from submit to the end of the stream."""
    prompt_tps: float | None = None
    """Prompt tokens evaluated / prompt eval time, from the engine's counters."""
    gen_tps: float | None = None
    """Generated tokens / generation time, from the engine's counters."""
    gen_tps_wall: float | None = None
    """Generated tokens / wall time from first token to end (what a user sees)."""
    load_s: float | None = None
    """Time spent loading the model for this request (0 when it was already loaded)."""
    peak_rss_bytes: int | None = None
    """Peak resident memory of the process that ran the model."""
    kv_cache_bytes: int | None = None
    """Bytes of KV cache (and recurrent state) the engine allocated."""
    n_ctx: int | None = None
    """Context length actually allocated."""
    n_threads: int | None = None
    """Threads actually used."""
    flash_attn: bool | None = None
    """Whether flash attention was actually on (None = unknown)."""
    extra: dict[str, object] = field(default_factory=dict)
    """Backend-specific figures (server timings, ...)."""


@dataclass(frozen=True)
class Token:
    """Visible text produced since the previous event."""

    text: str


@dataclass(frozen=True)
class Done:
    """The response finished."""

    completion: Completion


@dataclass(frozen=True)
class Failed:
    """The response failed; ``message`` is one line naming the cause."""

    message: str
    completion: Completion


Event = Token | Done | Failed


@runtime_checkable
class Backend(Protocol):
    """Turns one prompt into a stream of events."""

    name: str

    def stream(
        self,
        prompt: Prompt,
        config: GenerationConfig,
        cancel: threading.Event | None = None,
    ) -> Iterator[Event]:
        """Stream events for ``prompt``; stops early with finish_reason "cancelled" when
        ``cancel`` is set. Never raises for model or engine failures: they become Failed."""
        ...

    def close(self) -> None:
        """Release the model and its memory."""
        ...


BackendError = errors.BackendError
"""A failure with a one-line, user-facing message (``workbench.errors.BackendError``)."""
