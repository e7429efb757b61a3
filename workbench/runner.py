"""The same prompt to N models: streaming events for UIs, one result row per response.

Models run one after another, never at the same time: on a machine with a few cores two
models generating at once would slow each other down and every speed figure would be
wrong. A UI still shows each model's answer streaming into its own column.

Loaded models stay in memory between prompts (each in its own worker process) until a
new one would exceed the memory budget; then the least recently used one is closed.
"""

from __future__ import annotations

import json
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from workbench import __version__
from workbench.backends.base import (
    Backend,
    BackendError,
    Completion,
    Done,
    Failed,
    GenerationConfig,
    Message,
    Prompt,
    Sampling,
    Token,
    resolve_sampling,
)
from workbench.backends.llama_cpp import LlamaCppBackend, llama_cpp_version
from workbench.backends.openai_http import OpenAIBackend
from workbench.chat import ParsedMessages, conversation_prompt, history_json, parse_messages
from workbench.errors import InputError, ModelError
from workbench.gguf import GGUFError, ModelInfo
from workbench.host import default_budget_bytes, host_info
from workbench.images import Image, load_images
from workbench.models.registry import ModelRef, default_models, file_sha256, resolve
from workbench.prompts import load_prompts
from workbench.schemas import RunRow
from workbench.store import RunStore, rows_to_frame
from workbench.thinking import setting

__all__ = [
    "Conversation",
    "ModelCheck",
    "ResponseFinished",
    "ResponseStarted",
    "RunEvent",
    "Runner",
    "TokenChunk",
    "check_models",
    "check_prompts",
    "compare",
    "load_prompts",
]


@dataclass(frozen=True)
class ResponseStarted:
    """A model starts answering a prompt."""

    model: str
    prompt_id: str
    rep: int


@dataclass(frozen=True)
class TokenChunk:
    """Visible text from one model."""

    model: str
    prompt_id: str
    rep: int
    text: str
    reasoning: bool = False
    """The text is thinking, not answer."""
    moved: bool = False
    """The answer shown so far was thinking: drop it (this chunk holds all of it)."""


@dataclass(frozen=True)
class ResponseFinished:
    """A response ended (successfully or not); ``row`` is what the store received."""

    model: str
    prompt_id: str
    rep: int
    row: RunRow
    completion: Completion

    @property
    def error(self) -> str | None:
        return self.completion.error


RunEvent = ResponseStarted | TokenChunk | ResponseFinished


def backend_for(ref: ModelRef) -> Backend:
    """The engine that runs ``ref``: in-process llama.cpp, or an OpenAI-compatible server."""
    if ref.is_endpoint:
        return OpenAIBackend(
            ref.path, ref.served_model or ref.name, name=ref.name, api_key_env=ref.api_key_env
        )
    return LlamaCppBackend(ref.path, name=ref.name, mmproj=ref.mmproj)


@dataclass
class _Slot:
    ref: ModelRef
    backend: Backend
    info: ModelInfo | None = None
    sha256: str | None = None
    meta_done: bool = False


class Runner:
    """Runs prompts against several models and records every response.

    Args:
        models: registry names, .gguf paths, endpoint URLs or ModelRefs.
        config: generation settings shared by all models.
        store: where rows are appended (None: keep them only in the returned frame).
        budget_bytes: memory for loaded models (default: ``host.default_budget_bytes()``).
    """

    def __init__(
        self,
        models: Sequence[str | ModelRef],
        config: GenerationConfig | None = None,
        *,
        store: RunStore | None = None,
        budget_bytes: int | None = None,
        backend_factory: Callable[[ModelRef], Backend] = backend_for,
    ) -> None:
        if not models:
            raise ValueError("no models to run")
        self.config = config or GenerationConfig()
        self.store = store
        self.budget_bytes = budget_bytes if budget_bytes is not None else default_budget_bytes()
        refs = [m if isinstance(m, ModelRef) else resolve(m) for m in models]
        self._slots: dict[str, _Slot] = {}
        for ref in refs:
            name = ref.name
            i = 2
            while name in self._slots:  # the same model twice: keep both columns apart
                name = f"{ref.name}#{i}"
                i += 1
            self._slots[name] = _Slot(ref, backend_factory(ref))
        self._lru: OrderedDict[str, None] = OrderedDict()
        self.run_id = uuid.uuid4().hex[:12]

    @property
    def model_names(self) -> list[str]:
        return list(self._slots)

    def is_loaded(self, name: str) -> bool:
        """Whether ``name`` is loaded and warm (a served model always is)."""
        return self._slots[name].backend.loaded

    # ------------------------------------------------------------------ memory

    def _make_room(self, name: str) -> None:
        """Close least recently used models until ``name``'s load fits the budget."""
        backend = self._slots[name].backend
        if backend.loaded:
            return
        need = backend.estimated_bytes(self.config)
        if need <= 0:  # nothing of this machine's memory (a server)
            return
        while self._lru:
            used = sum(
                self._slots[n].backend.estimated_bytes(self.config)
                for n in self._lru
                if self._slots[n].backend.loaded
            )
            if used + need <= self.budget_bytes:
                break
            victim, _ = self._lru.popitem(last=False)
            self._slots[victim].backend.close()

    def _touch(self, name: str) -> None:
        self._lru[name] = None
        self._lru.move_to_end(name)

    # ------------------------------------------------------------------ rows

    def _model_meta(self, slot: _Slot) -> None:
        if slot.meta_done:
            return
        slot.meta_done = True
        if slot.ref.is_endpoint:
            return
        try:
            slot.info = slot.ref.info()
        except GGUFError:  # the backend reports it when it tries to load the file
            return
        slot.sha256 = file_sha256(slot.ref.path)

    def _row(
        self,
        name: str,
        prompt: Prompt,
        rep: int,
        comp: Completion,
        created: datetime,
        cfg: GenerationConfig,
        sampling: Sampling,
    ) -> RunRow:
        slot = self._slots[name]
        info = slot.info
        extra = comp.extra
        served = slot.ref.is_endpoint  # the server's own load settings, not ours
        images = prompt.images
        return {
            "run_id": self.run_id,
            "row_id": uuid.uuid4().hex,
            "created_at": created,
            "prompt_set": prompt.prompt_set,
            "prompt_id": prompt.id,
            "prompt": prompt.text,
            "system_prompt": cfg.system_prompt,
            "conversation_id": prompt.conversation_id,
            "turn": prompt.turn_number,
            "history": history_json(prompt),
            "prompt_mode": comp.prompt_mode,
            "category": prompt.category,
            "language": prompt.language,
            "rep": rep,
            "model": name,
            "model_path": slot.ref.path,
            "model_sha256": slot.sha256,
            "arch": info.arch if info else None,
            "quant": info.quant if info else None,
            "params": info.params if info else None,
            "backend": slot.backend.kind,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "min_p": sampling.min_p,
            "repeat_penalty": sampling.repeat_penalty,
            "sampling_defaults": json.dumps(sampling.defaults) if sampling.defaults else None,
            "thinking": setting(cfg.thinking),
            "seed": comp.seed if comp.seed is not None else cfg.seed,
            "max_tokens": cfg.max_tokens,
            "n_ctx": _setting(comp.n_ctx, cfg.n_ctx, served),
            "n_threads": _setting(comp.n_threads, cfg.n_threads, served),
            "n_gpu_layers": None if served else cfg.n_gpu_layers,
            "flash_attn": _setting(comp.flash_attn, cfg.flash_attn, served),
            "response": comp.text,
            "reasoning": comp.reasoning,
            "finish_reason": comp.finish_reason,
            "error": comp.error,
            "prompt_tokens": comp.prompt_tokens,
            "completion_tokens": comp.completion_tokens,
            "reasoning_tokens": comp.reasoning_tokens,
            "ttft_s": comp.ttft_s,
            "ttfa_s": comp.ttfa_s,
            "total_s": comp.total_s,
            "prompt_tps": comp.prompt_tps,
            "gen_tps": comp.gen_tps,
            "gen_tps_wall": comp.gen_tps_wall,
            "spawn_s": comp.spawn_s,
            "load_s": comp.load_s,
            "peak_rss_bytes": comp.peak_rss_bytes,
            "kv_cache_bytes": comp.kv_cache_bytes,
            "image_sha256": ",".join(im.sha256 for im in images) if images else None,
            "image_bytes": sum(im.size_bytes for im in images) if images else None,
            "image_size": ",".join(im.size for im in images) if images else None,
            # A server sets its own budget at start: the setting reaches local models only.
            "image_budget": cfg.image_tokens if images and not served else None,
            "image_tokens": comp.image_tokens,
            "image_encode_s": comp.image_encode_s,
            "workbench_version": __version__,
            "llama_cpp_version": llama_cpp_version(),
            "host": json.dumps(host_info().as_dict()),
            "extra": json.dumps(extra, default=str) if extra else None,
        }

    # ------------------------------------------------------------------ running

    def stream_one(
        self,
        name: str,
        prompt: Prompt,
        rep: int = 0,
        cancel: threading.Event | None = None,
        *,
        config: GenerationConfig | None = None,
    ) -> Iterator[RunEvent]:
        """One model, one prompt: its events, ending with ResponseFinished (row stored).

        ``config`` replaces the runner's for this response (a conversation's system
        prompt). Sampling fields it leaves unset take the model's recommended values
        (GGUF ``general.sampling.*``), else workbench's; the row says which.
        """
        slot = self._slots[name]
        created = datetime.now(UTC)
        yield ResponseStarted(name, prompt.id, rep)
        self._model_meta(slot)
        base = config or self.config
        sampling = resolve_sampling(base, slot.info.recommended_sampling if slot.info else None)
        cfg = sampling.applied(base)
        comp: Completion
        if slot.info is not None and slot.info.is_twin:
            comp = Completion(finish_reason="error", error=_twin_refused(name))
        elif cancel is not None and cancel.is_set():
            comp = Completion(finish_reason="cancelled")
        else:
            comp = Completion(finish_reason="error", error=f"{name}: no result")
            try:
                self._make_room(name)
                self._touch(name)
                for ev in slot.backend.stream(prompt, cfg, cancel):
                    if isinstance(ev, Token):
                        yield TokenChunk(name, prompt.id, rep, ev.text, ev.reasoning, ev.moved)
                    elif isinstance(ev, Done):
                        comp = ev.completion
                    elif isinstance(ev, Failed):
                        comp = ev.completion
                        # A cut stream stays "interrupted" (it has an error either way).
                        if comp.finish_reason != "interrupted":
                            comp.finish_reason = "error"
                        comp.error = (
                            ev.message
                            if ev.message.startswith(f"{name}:")
                            else f"{name}: {ev.message}"
                        )
            except BackendError as e:  # a backend that raised instead of yielding Failed
                comp = Completion(finish_reason="error", error=f"{name}: {e}")
        row = self._row(name, prompt, rep, comp, created, cfg, sampling)
        if self.store is not None:
            self.store.append([row])
        yield ResponseFinished(name, prompt.id, rep, row, comp)

    def stream(
        self,
        prompts: Sequence[Prompt | str],
        *,
        reps: int = 1,
        cancel: threading.Event | None = None,
        models: Sequence[str] | None = None,
    ) -> Iterator[RunEvent]:
        """Every (prompt, rep, model) in order. After ``cancel`` is set, the response in
        progress ends as "cancelled" and the remaining ones are not started."""
        names = list(models) if models is not None else self.model_names
        unknown = [n for n in names if n not in self._slots]
        if unknown:
            raise ValueError(f"not in this runner: {', '.join(unknown)}")
        for p in prompts:
            prompt = Prompt(p) if isinstance(p, str) else p
            for rep in range(reps):
                for name in names:
                    if cancel is not None and cancel.is_set():
                        return
                    yield from self.stream_one(name, prompt, rep, cancel)

    def run(
        self,
        prompts: Sequence[Prompt | str],
        *,
        reps: int = 1,
        cancel: threading.Event | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
    ) -> pl.DataFrame:
        """Run everything and return the rows as one frame (also appended to the store)."""
        rows = []
        for ev in self.stream(prompts, reps=reps, cancel=cancel):
            if on_event is not None:
                on_event(ev)
            if isinstance(ev, ResponseFinished):
                rows.append(ev.row)
        return rows_to_frame(rows)

    def conversation(
        self,
        messages: Sequence[Mapping[str, Any] | Message] | ParsedMessages = (),
        *,
        conversation_id: str | None = None,
    ) -> Conversation:
        """A conversation with every model of this runner, starting from ``messages``
        (an OpenAI-style list of ``{role, content}``; see :class:`Conversation`).

        Raises:
            InputError: malformed messages, or a system message when the runner's config
                has a different system prompt.
        """
        parsed = messages if isinstance(messages, ParsedMessages) else parse_messages(messages)
        return Conversation(self, parsed, conversation_id)

    def close(self) -> None:
        """Release every loaded model."""
        for slot in self._slots.values():
            slot.backend.close()
        self._lru.clear()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Conversation:
    """One conversation held with every model of a runner; each model keeps its own history.

    Every model starts from the same messages. Each :meth:`stream` (or :meth:`run`) sends
    the next user message to each model after that model's own earlier answers, then adds
    its answer (the answer alone: chat templates drop the thinking from history) to that
    model's history. A response that failed or was stopped leaves no trace: that model's
    next turn is sent without it. Rows carry the conversation's ``conversation_id`` and
    the ``turn``.

    Args:
        runner: the models and settings.
        messages: the conversation so far (checked by :func:`workbench.chat.parse_messages`);
            a system message becomes the system prompt.
        conversation_id: the id rows carry (default: a new one).
    """

    def __init__(
        self, runner: Runner, messages: ParsedMessages, conversation_id: str | None = None
    ) -> None:
        own = runner.config.system_prompt
        if messages.system is not None and own is not None and own != messages.system:
            raise InputError(
                "the conversation has a system message and the settings another system "
                "prompt: give only one"
            )
        self.runner = runner
        self.id = conversation_id or uuid.uuid4().hex[:12]
        self.config = (
            replace(runner.config, system_prompt=messages.system)
            if messages.system is not None
            else runner.config
        )
        self._histories = {name: list(messages.turns) for name in runner.model_names}
        # User turns sent so far (the given messages' pending one is sent by stream()).
        self._turn = sum(m.role == "user" for m in messages.turns) - messages.pending

    @property
    def system_prompt(self) -> str | None:
        """The system prompt every turn is sent with."""
        return self.config.system_prompt

    def history(self, model: str) -> tuple[Message, ...]:
        """``model``'s conversation so far: user messages and its own answers."""
        return tuple(self._histories[model])

    def stream(
        self,
        text: str | None = None,
        *,
        cancel: threading.Event | None = None,
        models: Sequence[str] | None = None,
    ) -> Iterator[RunEvent]:
        """Send the next user turn to every model (or ``models``), one after another.

        Args:
            text: the next user message; None answers the user message the conversation
                already ends with.
            cancel: as for :meth:`Runner.stream`.
            models: a subset of the runner's models.

        Raises:
            InputError: no text and nothing to answer, text after an unanswered user
                message, or empty text.
        """
        names = list(models) if models is not None else self.runner.model_names
        unknown = [n for n in names if n not in self._histories]
        if unknown:
            raise ValueError(f"not in this conversation: {', '.join(unknown)}")
        if text is not None and not text.strip():
            raise InputError("the prompt is empty: give some text to send")
        for name in names:
            pending = bool(self._histories[name]) and self._histories[name][-1].role == "user"
            if text is None and not pending:
                raise InputError(
                    "the conversation ends with the model's answer: give the next prompt"
                )
            if text is not None and pending:
                raise InputError(
                    "the conversation ends with a user message that has no answer yet: "
                    "send it first (no text), then the next prompt"
                )
        self._turn += 1
        for name in names:
            if cancel is not None and cancel.is_set():
                return
            history = self._histories[name]
            if text is not None:
                history.append(Message("user", text))
            prompt = conversation_prompt(
                history, conversation_id=self.id, turn=self._turn, id=f"turn{self._turn}"
            )
            for ev in self.runner.stream_one(name, prompt, 0, cancel, config=self.config):
                if isinstance(ev, ResponseFinished):
                    comp = ev.completion
                    if comp.error is None and comp.finish_reason in ("stop", "length"):
                        history.append(Message("assistant", comp.text))
                    else:  # no answer to continue from: the turn leaves no trace
                        history.pop()
                yield ev

    def run(
        self,
        text: str | None = None,
        *,
        cancel: threading.Event | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
    ) -> pl.DataFrame:
        """:meth:`stream` to the end; the rows as one frame."""
        rows = []
        for ev in self.stream(text, cancel=cancel):
            if on_event is not None:
                on_event(ev)
            if isinstance(ev, ResponseFinished):
                rows.append(ev.row)
        return rows_to_frame(rows)


def _setting(reported: Any, asked: Any, served: bool) -> Any:
    """What the engine reported; else, in-process only, what was asked for (a server's
    load settings are its own, so for a served model the client's are never recorded)."""
    return reported if reported is not None or served else asked


def compare(
    prompt: str | Prompt | Sequence[Prompt | str] | None = None,
    models: Sequence[str | ModelRef] | None = None,
    config: GenerationConfig | None = None,
    *,
    messages: Sequence[Mapping[str, Any] | Message] | None = None,
    images: Sequence[str | Path | Image] = (),
    reps: int = 1,
    store: RunStore | bool = True,
    **settings: Any,
) -> pl.DataFrame:
    """One call from a notebook: run ``prompt`` on ``models`` (default: the bundled ones)
    and return the result rows.

    Args:
        prompt: a prompt, or a list of them (``load_prompts("coding")`` gives a set);
            with ``messages``, the next user message (optional).
        models: registry names, paths or endpoint URLs; default the bundled models.
        config: generation settings; ``settings`` (``max_tokens=64``, ``thinking="off"``,
            ...) override fields.
        messages: a whole conversation (OpenAI-style ``{role, content}`` list, a system
            message first if any), sent in order to each model; each model answers its
            last user message (or ``prompt``). For follow-up turns, use
            :meth:`Runner.conversation`.
        images: image files (PNG, JPEG, WebP) or :class:`~workbench.images.Image` objects
            sent with every prompt, after the prompt's own (a prompt set's); all are
            checked before any model runs. A text-only model answers with an error row.
        reps: repetitions per prompt and model (1 for a conversation).
        store: True (the default data directory), a RunStore, or False to keep nothing.

    Raises:
        InputError: no prompt, a bad setting, or an image that is unreadable, corrupt or
            not PNG, JPEG or WebP (:class:`~workbench.images.ImageError`).
    """
    cfg = replace(config or GenerationConfig(), **settings)
    extra_images = load_images(images)
    if extra_images and messages is not None:
        raise InputError("images go with a prompt, not with a conversation (messages)")
    parsed: ParsedMessages | None = None
    prompts: list[Prompt] = []
    if messages is not None:
        parsed = parse_messages(messages)
        if isinstance(prompt, Prompt):
            prompt = prompt.text
        if prompt is not None and not isinstance(prompt, str):
            raise InputError("with messages, the prompt is one follow-up message")
        if reps != 1:
            raise InputError("a conversation runs once per model (reps=1)")
        if prompt is None and not parsed.pending:
            raise InputError("the conversation ends with the model's answer: give the next prompt")
        if prompt is not None:
            check_prompts([prompt])
            if parsed.pending:
                raise InputError(
                    "the conversation ends with a user message: it is the prompt (give no other)"
                )
    elif prompt is None:
        raise InputError("no prompt: give a prompt or messages")
    else:
        prompts = check_prompts([prompt] if isinstance(prompt, str | Prompt) else list(prompt))
        if extra_images:
            prompts = [replace(p, images=(*p.images, *extra_images)) for p in prompts]
    check = check_models(models or default_models())
    for line in (*check.skipped, *check.warnings):
        warnings.warn(line, stacklevel=2)
    if not check.ready:
        raise ModelError(f"no model can run: {'; '.join(check.skipped)}")
    run_store = RunStore() if store is True else (store or None)
    with Runner(check.ready, cfg, store=run_store) as runner:
        if parsed is not None:
            text = prompt if isinstance(prompt, str) else None
            return runner.conversation(parsed).run(text)
        return runner.run(prompts, reps=reps)


# --------------------------------------------------------------------------- checks
# Run before the first prompt, so that a model that cannot start is reported once
# instead of failing (and storing an error row) once per prompt.


def _twin_refused(name: str) -> str:
    return f"{name}: a synthetic twin (random weights) cannot be compared for answers"


@dataclass(frozen=True)
class ModelCheck:
    """Which of the named models can run, found before the first prompt is sent."""

    ready: tuple[ModelRef, ...]
    """Models that can start; each answers every prompt."""
    skipped: tuple[str, ...]
    """One line per model that cannot start (missing or unreadable file, a twin, a
    server that cannot be reached); it gets no rows."""
    warnings: tuple[str, ...]
    """One line per doubt that does not stop a model (a served model name the server
    does not list)."""


def check_models(models: Sequence[str | ModelRef]) -> ModelCheck:
    """Check every model before anything runs: a local file's GGUF header (header only,
    never the weights), a server's ``GET /v1/models``.

    Raises:
        ModelNotFound: a name the registry does not know (nothing can be checked).
    """
    ready: list[ModelRef] = []
    skipped: list[str] = []
    doubts: list[str] = []
    for ref in (m if isinstance(m, ModelRef) else resolve(m) for m in models):
        if ref.is_endpoint:
            served = ref.served_model or ref.name
            report = OpenAIBackend(ref.path, served, api_key_env=ref.api_key_env).probe()
            if not report.reachable:
                skipped.append(f"{ref.name}: {report.error}")
                continue
            if report.models is not None and served not in report.models:
                listed = ", ".join(report.models) or "none"
                doubts.append(
                    f"{ref.name}: {ref.path} lists no model {served!r} (it lists: {listed}); "
                    "the answers may come from another model"
                )
        else:
            try:
                info = ref.info()
            except GGUFError as e:
                skipped.append(f"{ref.name}: {e}")
                continue
            if info.is_twin:
                skipped.append(_twin_refused(ref.name))
                continue
        ready.append(ref)
    return ModelCheck(tuple(ready), tuple(skipped), tuple(doubts))


def check_prompts(prompts: Sequence[Prompt | str]) -> list[Prompt]:
    """The prompts as :class:`Prompt` objects.

    Raises:
        InputError: no prompts, or one that is empty or only whitespace.
    """
    out = [Prompt(p) if isinstance(p, str) else p for p in prompts]
    if not out:
        raise InputError("no prompts to run")
    for i, p in enumerate(out):
        if not p.text.strip():
            which = "the prompt" if len(out) == 1 else f"prompt {i + 1} ({p.id})"
            raise InputError(f"{which} is empty: give some text to send")
    return out
