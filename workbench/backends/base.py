"""The backend protocol: a prompt goes in, a stream of events comes out.

A backend is anything with a ``name`` and a ``stream`` method; no inheritance needed.
Events are small frozen dataclasses so UIs can ``match`` on them:

- :class:`Token`: a piece of visible text (may be several tokens batched together),
  marked as thinking or answer;
- :class:`Done`: the response finished, with its :class:`Completion` figures;
- :class:`Failed`: the response failed; ``Failed.completion`` holds whatever was produced.

Every stream ends with exactly one ``Done`` or ``Failed``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from workbench import errors
from workbench.images import Image

FinishReason = Literal["stop", "length", "cancelled", "error", "interrupted"]
"""Why a response ended; "interrupted": the stream stopped before the engine said why
(a served request cut off by the server or a dropped connection), with an error."""


WORKBENCH_SAMPLING: dict[str, float | int] = {
    "temperature": 0.7,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
}
"""The sampling defaults of workbench itself, for a field the config leaves unset and the
model does not recommend (its GGUF has no ``general.sampling.*`` key for it)."""

SamplingSource = Literal["gguf", "workbench"]
"""Where a sampling value the config left unset came from: the model file's
``general.sampling.*`` keys (a model card's recommendation), or :data:`WORKBENCH_SAMPLING`."""


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling and context settings for one request. ``None`` means "engine default"
    (for the sampling fields: the model's recommended value, else workbench's)."""

    temperature: float | None = None
    """Sampling temperature; 0 means greedy decoding. None: the model's recommended
    value (GGUF ``general.sampling.temp``), else 0.7."""
    top_p: float | None = None
    """Nucleus sampling probability mass. None: the model's (``general.sampling.top_p``),
    else 0.95."""
    top_k: int | None = None
    """Sample among the k most likely tokens (0 disables). None: the model's
    (``general.sampling.top_k``), else 40."""
    min_p: float | None = None
    """Drop tokens less likely than this fraction of the most likely one (0 disables).
    None: the model's (``general.sampling.min_p``), else 0.05."""
    repeat_penalty: float | None = None
    """Penalty on recently generated tokens (1.0 = none). None: the model's
    (``general.sampling.penalty_repeat``), else 1.0."""
    seed: int | None = None
    """RNG seed for sampling; None draws one per request, and the row records it."""
    max_tokens: int = 256
    """Upper bound on generated tokens."""
    system_prompt: str | None = None
    """System message for chat models; prepended as plain text for base models."""
    grammar: str | None = None
    """A GBNF grammar the output must follow (llama.cpp's constrained sampling; served
    models get it as ``grammar``, which llama.cpp's servers accept). None: free text."""
    thinking: Literal["on", "off"] | None = None
    """Thinking (reasoning) mode of chat models that have one: "on", "off", or None for
    the model's default. In process it is the chat template's switch
    (``enable_thinking``); served models get it as ``chat_template_kwargs``."""
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
    image_tokens: int | None = None
    """Tokens per image for vision models with a budget (Gemma 4: 70 to 1120): in process
    the projector's image min/max tokens; None: the model's default. Servers set their
    own budget at start (llama-server's ``--image-min-tokens``/``--image-max-tokens``)."""

    def __post_init__(self) -> None:
        if self.image_tokens is not None and self.image_tokens < 1:
            raise errors.InputError(
                f"image_tokens must be at least 1 (or None: the model's), not {self.image_tokens}"
            )
        if self.thinking not in (None, "on", "off"):
            raise errors.InputError(
                f"thinking must be 'on', 'off' or None (the model's default), not {self.thinking!r}"
            )


@dataclass(frozen=True)
class Sampling:
    """The sampling values one request ran with, and which of them were defaults."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    defaults: dict[str, SamplingSource]
    """Field -> where its value came from, for the fields the config left unset."""

    def applied(self, config: GenerationConfig) -> GenerationConfig:
        """``config`` with these values in its sampling fields (none left unset)."""
        return replace(
            config,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            repeat_penalty=self.repeat_penalty,
        )


def resolve_sampling(
    config: GenerationConfig, recommended: Mapping[str, Any] | None = None
) -> Sampling:
    """The sampling values for ``config``: its own where set, else the model's
    ``recommended`` ones (:attr:`ModelInfo.recommended_sampling`), else workbench's."""
    values: dict[str, Any] = {}
    defaults: dict[str, SamplingSource] = {}
    for key, fallback in WORKBENCH_SAMPLING.items():
        value = getattr(config, key)
        if value is None and recommended and recommended.get(key) is not None:
            value, defaults[key] = recommended[key], "gguf"
        elif value is None:
            value, defaults[key] = fallback, "workbench"
        values[key] = int(value) if key == "top_k" else float(value)
    return Sampling(**values, defaults=defaults)


@dataclass(frozen=True)
class Message:
    """One message of a conversation (the OpenAI chat format's ``{role, content}``)."""

    role: Literal["system", "user", "assistant"]
    """Who speaks: the system prompt, the user, or the model."""
    content: str
    """What was said (for an assistant, the answer alone, without its thinking)."""

    def as_dict(self) -> dict[str, str]:
        """``{"role": ..., "content": ...}``, as chat templates and servers take it."""
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Prompt:
    """One prompt, with the fields a prompt set carries, and the conversation before it."""

    text: str
    """The (last) user message (or the completion prefix for base models)."""
    id: str = "adhoc"
    """Prompt id within its set."""
    category: str | None = None
    """Prompt category (coding, reasoning, ...)."""
    language: str | None = None
    """ISO 639-1 language code."""
    prompt_set: str | None = None
    """Name of the prompt set (file stem) it came from."""
    history: tuple[Message, ...] = ()
    """The conversation before ``text``: user and assistant turns in order (the system
    prompt is :attr:`GenerationConfig.system_prompt`)."""
    conversation_id: str | None = None
    """The conversation this prompt belongs to (None: a single prompt)."""
    turn: int | None = None
    """Which user turn of its conversation ``text`` is, from 1 (None: one more than the
    user messages in ``history``; a model whose earlier turn failed has fewer)."""
    images: tuple[Image, ...] = ()
    """Images sent with ``text`` (checked by :mod:`workbench.images`), in order."""

    @property
    def turn_number(self) -> int:
        """:attr:`turn`, or counted from the history (1 for a single prompt)."""
        return self.turn or 1 + sum(m.role == "user" for m in self.history)


PromptMode = Literal["chat", "completion"]
"""How a prompt reached the model: through its chat template (or a server's chat API), or
as plain text to continue (a base model whose GGUF has no chat template)."""


@dataclass
class Completion:
    """Figures of one finished (or failed) response. Times in seconds, rates in tokens/s."""

    text: str = ""
    """The answer alone (the row's ``response``), without the thinking."""
    finish_reason: FinishReason = "stop"
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    """Every generated token, thinking included."""
    reasoning: str = ""
    """The thinking text, empty when there was none."""
    reasoning_tokens: int | None = None
    """Tokens of thinking (None: unknown; 0: the model did not think)."""
    prompt_mode: PromptMode | None = None
    """How the prompt was sent (None: it was not sent)."""
    ttft_s: float | None = None
    """Time to first token: wall time from submit to the first generated token of any
    kind (thinking included), whitespace included (as llama.cpp's and serving benchmarks
    count it); model loading excluded."""
    ttfa_s: float | None = None
    """Time to first answer token: submit to the first token of the answer, after any
    thinking (equal to ``ttft_s`` without thinking); model loading excluded."""
    total_s: float | None = None
    """Wall time from submit to the end of the stream (model loading excluded)."""
    prompt_tps: float | None = None
    """Prompt tokens evaluated / prompt eval time, from the engine's counters."""
    gen_tps: float | None = None
    """Generated tokens / generation time, from the engine's counters."""
    gen_tps_wall: float | None = None
    """Decode steps after the first token / wall time from the first token to the end of
    the stream (what a user sees); a closing end-of-generation token counts as a step."""
    spawn_s: float | None = None
    """Time spent starting the engine's worker for this request (interpreter start and
    ``import llama_cpp``; 0 when it was running)."""
    load_s: float | None = None
    """Time spent loading the model for this request (0 when it was already loaded)."""
    seed: int | None = None
    """The sampling seed actually used (drawn when the config left it None)."""
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
    image_tokens: int | None = None
    """Tokens the prompt's images took in the context (None: no image, or not reported)."""
    image_encode_s: float | None = None
    """Time encoding the images (the projector), apart from prompt processing."""
    extra: dict[str, object] = field(default_factory=dict)
    """Backend-specific figures (server timings, ...)."""


@dataclass(frozen=True)
class Token:
    """Visible text produced since the previous event."""

    text: str
    reasoning: bool = False
    """The text is thinking, not answer."""
    moved: bool = False
    """The answer shown so far was thinking after all (a closing marker came with no
    opening one): drop it; this token, thinking, holds all of it."""


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
    """Turns one prompt into a stream of events.

    Besides streaming, a backend says what the runner needs to share memory between
    models: which engine it is, whether it holds a model in this machine's memory now,
    and how much memory a load would take.
    """

    name: str
    """Display name of the model."""
    kind: str
    """The engine, as the row's ``backend`` column records it ("llama-cpp", ...)."""

    @property
    def loaded(self) -> bool:
        """True while a model is held in this machine's memory (never for a server)."""
        ...

    def estimated_bytes(self, config: GenerationConfig) -> int:
        """Memory of this machine a load with ``config`` would take (0 for a server)."""
        ...

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
