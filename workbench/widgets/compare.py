"""ComparePanel: one prompt, several local models, answers streaming side by side.

The panel is an ipywidgets ``VBox``. Its state lives in widget traits and plain
attributes, so a test can build it without a screen, set values, call the click handlers
and assert on what the columns hold and what the store received.

Generation runs in a background thread (the kernel stays responsive, Stop works). The
thread updates widget *values* only, never prints: under ipykernel 7 output written from
another thread can land in the wrong cell, while widget state travels over its own comm.
Figures go into ``Output`` widgets by setting their ``outputs`` trait directly, which
needs no output-capture context either. Each column redraws at most ``max_redraws_per_s``
times a second, however fast tokens arrive.
"""

from __future__ import annotations

import html
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

try:
    import ipywidgets as widgets
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "workbench.widgets needs ipywidgets: pip install 'workbench[notebook]'"
    ) from e

import polars as pl

from workbench.backends.base import GenerationConfig, Message, Prompt, PromptMode, resolve_sampling
from workbench.chat import prompt_mode
from workbench.gguf import GGUFError
from workbench.host import idle_release_s
from workbench.images import Image, ImageError, image_from_bytes
from workbench.models.registry import ModelRef, list_models, resolve
from workbench.runner import (
    Conversation,
    ResponseFinished,
    ResponseStarted,
    RunEvent,
    Runner,
    TokenChunk,
)
from workbench.store import RunStore, rows_to_frame

__all__ = ["BASE_MODEL_LABEL", "ComparePanel", "ModelColumn", "close_tree", "figure_bundle"]

BASE_MODEL_LABEL = "base model"
"""Shown next to the name of a model run as completion (``prompt_mode`` "completion": its
GGUF has no chat template, so it continues the text instead of answering it)."""

_TEXT_STYLE = (
    "white-space:pre-wrap;word-break:break-word;font-family:var(--jp-code-font-family,"
    "monospace);font-size:12px;line-height:1.45;min-height:6em;max-height:28em;"
    "overflow-y:auto;border:1px solid var(--jp-border-color2,#ddd);border-radius:4px;"
    "padding:6px;margin:0"
)


def figure_bundle(fig: Any) -> dict[str, Any]:
    """A Plotly figure as a display_data output (JupyterLab's Plotly mime renderer).

    Built by hand rather than with ``Output.append_display_data`` so that it can be set
    from any thread and needs no IPython shell; the JSON round trip turns numpy arrays
    into lists the widget comm can serialize.
    """
    import plotly.io as pio

    spec = json.loads(pio.to_json(fig, validate=False))
    spec.setdefault("config", {"displaylogo": False, "responsive": True})
    title = fig.layout.title.text or "figure"
    return {
        "output_type": "display_data",
        "data": {"application/vnd.plotly.v1+json": spec, "text/plain": f"<Figure: {title}>"},
        "metadata": {},
    }


def close_tree(widget: widgets.Widget) -> None:
    """Close a widget and every widget inside it (containers do not close children)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


def _fmt(v: float | int | None, spec: str, unit: str = "") -> str:
    return "–" if v is None else f"{format(v, spec)}{unit}"


def _metrics_html(ttft: str, tps: str, tokens: str, note: str, ttfa: str | None = None) -> str:
    cells = [("TTFT", "ttft", ttft), ("tokens/s", "tps", tps), ("tokens", "tokens", tokens)]
    if ttfa is not None:  # the model thought: its first answer token came later
        cells.insert(1, ("first answer", "ttfa", ttfa))
    body = " · ".join(
        f"<b>{k}</b> <span class='wb-{cls}'>{html.escape(v)}</span>" for k, cls, v in cells
    )
    extra = f" <span style='color:#888'>({html.escape(note)})</span>" if note else ""
    return f"<div class='wb-metrics' style='font-size:12px'>{body}{extra}</div>"


def _header_html(name: str, mode: PromptMode | None, turn: int | None) -> str:
    out = f"<b>{html.escape(name)}</b>"
    if mode == "completion":
        out += (
            " <span class='wb-base-model' title='no chat template: a pretrained base model "
            "that continues the text rather than answering it' style='font-size:11px;"
            "padding:0 5px;border-radius:8px;background:var(--jp-layout-color3,#eee);"
            f"color:var(--jp-ui-font-color1,#333)'>{BASE_MODEL_LABEL}</span>"
        )
    if turn is not None:
        out += f" <span class='wb-turn' style='color:#888;font-size:11px'>turn {turn}</span>"
    return out


def _history_html(messages: Sequence[Message]) -> str:
    """The conversation a column's model was sent: user turns and its own answers."""
    if not messages:
        return ""
    items = []
    for m in messages:
        who, color = ("you", "#4C78A8") if m.role == "user" else ("model", "#888")
        # Each message scrolls on its own, so the prompt being answered (the last one)
        # is always in view however long the earlier answers were.
        items.append(
            f"<div class='wb-msg wb-msg-{m.role}' style='margin:2px 0;max-height:6em;"
            f"overflow-y:auto'><b style='color:{color}'>{who}:</b> "
            f"{html.escape(m.content.strip())}</div>"
        )
    return (
        "<div class='wb-history' style='white-space:pre-wrap;word-break:break-word;"
        f"font-size:12px;margin-bottom:4px'>{''.join(items)}</div>"
    )


class ModelColumn:
    """One model's column: name, the conversation so far, thinking, streamed answer,
    live figures.

    Tokens are appended as they arrive: thinking to ``reasoning`` (shown in a collapsed
    Accordion above the answer, opened only by the user), the answer to ``text``. The
    widgets are redrawn at most every ``1 / max_redraws_per_s`` seconds (and once more
    when the response ends).

    Time to first token is shown only once the engine has measured it: the wait before
    the first token includes loading the model when it is not warm, so a live figure
    would change when the final one arrives. Until then the TTFT cell says ``loading``
    (the model is being loaded), ``waiting`` (a warm model reads the prompt) or ``…``
    (streaming). tokens/s is a live wall-clock estimate until the final figure replaces it.
    The thinking's title carries its own token count and time (from the first token to
    the first answer token): live estimates (marked ``…``) until the row's figures
    (``reasoning_tokens``, ``ttfa_s - ttft_s``) replace them.

    Args:
        name: the model's name.
        max_redraws_per_s: the redraw limit while tokens stream.
        mode: how the model gets its prompt, when known ("completion": labelled
            :data:`BASE_MODEL_LABEL`); :meth:`set_mode` sets it later, and the row's
            ``prompt_mode`` replaces it.
        turn: the conversation turn this column answers (chat mode), shown by the name.
        history: the messages shown above the answer (chat mode: the model's own
            conversation, ending with the prompt it answers).
    """

    def __init__(
        self,
        name: str,
        max_redraws_per_s: float = 20.0,
        *,
        mode: PromptMode | None = None,
        turn: int | None = None,
        history: Sequence[Message] = (),
    ) -> None:
        self.name = name
        self.interval = 1.0 / max_redraws_per_s
        self.mode = mode
        self.turn = turn
        self.header = widgets.HTML(_header_html(name, mode, turn))
        self.header.add_class("wb-column-header")
        self.history = widgets.HTML(_history_html(history))
        self.history.add_class("wb-column-history")
        self.thinking_body = widgets.HTML("")
        self.thinking_body.add_class("wb-thinking-body")
        self.thinking = widgets.Accordion(
            children=[self.thinking_body], titles=("thinking",), selected_index=None
        )
        self.thinking.add_class("wb-thinking")
        self.thinking.layout.display = "none"  # shown once the model thinks
        self.body = widgets.HTML(self._body_html("", "waiting"))
        self.metrics = widgets.HTML(_metrics_html("–", "–", "–", "queued"))
        self.box = widgets.VBox(
            [self.header, self.history, self.thinking, self.body, self.metrics],
            layout=widgets.Layout(flex="1 1 0", min_width="220px", margin="0 6px 0 0"),
        )
        self.box.add_class("wb-column")
        self.body.add_class("wb-column-body")
        self.text = ""
        """The answer so far (the row's ``response`` once finished)."""
        self.reasoning = ""
        """The thinking so far (the row's ``reasoning`` once finished)."""
        self.state = "waiting"
        """waiting (queued behind other models), loading (the model loads, or reads the
        prompt when ``cold`` is False), streaming, then the finish reason (stop, length,
        cancelled, error, ...) or skipped."""
        self.cold = True
        """Whether the model had to be loaded for this response (set by ``start``)."""
        self.error: str | None = None
        self.row: Mapping[str, Any] | None = None
        self.chunks = 0
        self.reasoning_chunks = 0
        """Chunks of ``chunks`` that were thinking (a live estimate of its tokens)."""
        self.redraws = 0
        """How many times the column's widgets were redrawn (the throttle keeps it low)."""
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._t_answer: float | None = None
        self._last_draw = 0.0

    @staticmethod
    def _body_html(text: str, state: str, error: str | None = None) -> str:
        if error:
            shown = html.escape(text) + ("\n\n" if text else "")
            return (
                f"<pre class='wb-text wb-error' style='{_TEXT_STYLE};border-color:#e45756'>"
                f"{shown}<span style='color:#c0392b'>⚠ {html.escape(error)}</span></pre>"
            )
        if not text:
            placeholder = {
                "waiting": "queued: runs after the models before it",
                "loading": "loading model…",
                "prompt": "reading the prompt…",
                "thinking": "thinking… (open “thinking” above to follow it)",
                "skipped": "not run (stopped)",
                "no answer": "no answer: the thinking did not end",
            }
            msg = placeholder.get(state, "")
            return (
                f"<pre class='wb-text wb-placeholder' style='{_TEXT_STYLE};color:#888'>{msg}</pre>"
            )
        return f"<pre class='wb-text' style='{_TEXT_STYLE}'>{html.escape(text)}</pre>"

    def start(self, *, cold: bool = True) -> None:
        """The model was submitted the prompt; ``cold``: it must be loaded first."""
        self.state = "loading"
        self.cold = cold
        self._draw()

    def add(self, text: str, *, reasoning: bool = False, moved: bool = False) -> None:
        """Append streamed text (thinking when ``reasoning``; ``moved``: the answer shown
        so far was thinking, and ``text`` holds all of it); redraws only if the last
        redraw is old enough."""
        now = time.perf_counter()
        if self._t_first is None and text.strip():
            self._t_first = now
        self._t_last = now
        self.chunks += 1
        if moved:  # what looked like the answer was thinking: it is all in ``text``
            self.text = ""
            self.reasoning_chunks = self.chunks - 1
            self._t_answer = None
        if reasoning:
            self.reasoning += text
            self.reasoning_chunks += 1
        else:
            self.text += text
            if self._t_answer is None and text.strip():
                self._t_answer = now
        self.state = "streaming"
        if now - self._last_draw >= self.interval:
            self._draw(now)

    def set_mode(self, mode: PromptMode | None) -> None:
        """How the model gets its prompt, once known ("completion": a base model)."""
        self.mode = mode
        self.header.value = _header_html(self.name, self.mode, self.turn)

    def finish(self, event: ResponseFinished) -> None:
        """The response ended: show its final text and the engine's own figures."""
        self.row = event.row
        comp = event.completion
        self.text = comp.text or self.text
        self.reasoning = comp.reasoning or self.reasoning
        self.state = comp.finish_reason
        self.error = comp.error
        self.set_mode(comp.prompt_mode or self.mode)
        self._draw()

    def fail(self, message: str) -> None:
        """The run broke off while this model was answering."""
        self.state, self.error = "error", message
        self._draw()

    def skip(self) -> None:
        """The run was stopped before this model started."""
        self.state = "skipped"
        self._draw()

    @property
    def thinking_title(self) -> str:
        """The thinking's title: its token count and time (live figures end in ``…``)."""
        r = self.row
        if r is not None:
            tokens = r.get("reasoning_tokens")
            ttft, ttfa = r.get("ttft_s"), r.get("ttfa_s")
            if ttfa is not None and ttft is not None:
                took = _fmt(max(ttfa - ttft, 0.0), ".2f", " s")
            elif ttft is not None and r.get("total_s") is not None:
                took = _fmt(r["total_s"] - ttft, ".2f", " s") + ", no answer"
            else:
                took = "–"
            count = "–" if tokens is None else f"{tokens} tokens"
            return f"thinking · {count} · {took}"
        start = self._t_first
        end = self._t_answer if self._t_answer is not None else self._t_last
        took = "–" if start is None or end is None else f"{max(end - start, 0.0):.1f} s"
        live = "" if self._t_answer is not None else "…"
        return f"thinking{live} · {self.reasoning_chunks} tokens · {took}"

    def _live_figures(self) -> tuple[str, str, str, str, str | None]:
        thought = bool(self.reasoning)
        if self.row is not None:
            r = self.row
            tps = r.get("gen_tps") or r.get("gen_tps_wall")
            note = r["finish_reason"]
            if r.get("load_s"):
                note += f", loaded in {r['load_s']:.1f} s"
            return (
                _fmt(r.get("ttft_s"), ".2f", " s"),
                _fmt(tps, ".1f"),
                _fmt(r.get("completion_tokens"), "d"),
                note,
                _fmt(r.get("ttfa_s"), ".2f", " s") if thought else None,
            )
        tps = None
        if (
            self._t_first is not None
            and self._t_last is not None
            and self._t_last > self._t_first
            and self.chunks > 1
        ):
            tps = (self.chunks - 1) / (self._t_last - self._t_first)
        ttft = {
            "waiting": "–",
            "loading": "loading" if self.cold else "waiting",
            "streaming": "…",
        }.get(self.state, "–")
        note = {"waiting": "queued", "streaming": "live", "skipped": "not run"}
        return (
            ttft,
            _fmt(tps, ".1f"),
            _fmt(self.chunks or None, "d"),
            note.get(self.state, ""),
            "…" if thought else None,
        )

    def _draw(self, now: float | None = None) -> None:
        self._last_draw = now if now is not None else time.perf_counter()
        self.redraws += 1
        shown = self.state
        if self.state == "loading" and not self.cold:
            shown = "prompt"
        elif not self.text and self.reasoning:
            shown = "thinking" if self.state == "streaming" else "no answer"
        self.body.value = self._body_html(self.text, shown, self.error)
        if self.reasoning:
            self.thinking_body.value = (
                f"<pre class='wb-text wb-thinking-text' style='{_TEXT_STYLE};color:#666;"
                f"min-height:0'>{html.escape(self.reasoning)}</pre>"
            )
            self.thinking.titles = (self.thinking_title,)
            self.thinking.layout.display = None
        else:
            self.thinking.layout.display = "none"
        self.metrics.value = _metrics_html(*self._live_figures())


class ComparePanel(widgets.VBox):
    """Send one prompt to several models; watch the answers stream side by side.

    Models run one after another (never at once), so the speed figures are honest; each
    answer streams into its own column, a model's thinking into a collapsed "thinking"
    section above its answer. Every finished response (stopped and failed ones included)
    is appended to the store, and the Plotly figures below the columns are redrawn from
    this panel's responses after every run.

    In chat mode (``mode.value = "chat"``) each prompt is the next turn of one
    conversation (a :class:`workbench.runner.Conversation`): every model gets the earlier
    prompts with its own earlier answers, and the rows share a ``conversation_id`` and
    count ``turn``. The models and the system prompt are fixed for a chat (their controls
    are locked after the first turn); **New chat** starts another.

    Args:
        models: models to offer (registry names, .gguf paths, endpoint URLs or ModelRefs);
            all of them are selected. None: everything the registry lists, with the
            bundled models selected.
        store: where responses are appended (default: ``RunStore()`` under data/).
        config: initial sampling settings; load settings (n_ctx, threads, ...) come from
            it unchanged.
        max_redraws_per_s: the per-column redraw limit while tokens stream.
        release_after_s: close the loaded models once the panel has been idle this long
            (seconds), so an idle notebook gives its memory back; the next run loads them
            again. Default: ``host.idle_release_s()`` ($WORKBENCH_IDLE_MINUTES, 10
            minutes); 0 keeps them loaded until the panel is closed.
    """

    def __init__(
        self,
        models: Sequence[str | ModelRef] | None = None,
        store: RunStore | None = None,
        config: GenerationConfig | None = None,
        *,
        max_redraws_per_s: float = 20.0,
        release_after_s: float | None = None,
    ) -> None:
        self.release_after_s = idle_release_s() if release_after_s is None else release_after_s
        """Idle seconds after which the loaded models are closed (None or 0: never)."""
        self.store = store if store is not None else RunStore()
        self.base_config = config or GenerationConfig()
        self.max_redraws_per_s = max_redraws_per_s
        self.refs = self._refs(models)
        selected = self._default_selection(models)
        cfg = self.base_config

        self.prompt = widgets.Textarea(
            placeholder="Type a prompt…",
            layout=widgets.Layout(width="100%", height="80px"),
        )
        self.prompt.add_class("wb-prompt")
        self.mode = widgets.ToggleButtons(
            options=[("Single prompt", "prompt"), ("Chat", "chat")],
            value="prompt",
            tooltips=[
                "each run is a new prompt",
                "each run is the next turn: every model continues its own conversation",
            ],
            style={"button_width": "130px"},
        )
        self.mode.add_class("wb-mode")
        self.new_chat_button = widgets.Button(
            description="New chat", icon="plus", disabled=True, tooltip="start a new conversation"
        )
        self.new_chat_button.add_class("wb-new-chat")
        self.system_prompt = widgets.Textarea(
            value=cfg.system_prompt or "",
            placeholder="Optional system prompt",
            layout=widgets.Layout(width="100%", height="44px"),
        )
        self.system_prompt.add_class("wb-system")
        self.image_upload = widgets.FileUpload(
            accept="image/png,image/jpeg,image/webp", multiple=True, description="image"
        )
        """Images sent with the prompt to every model (checked when Run is pressed)."""
        self.image_upload.add_class("wb-image")
        self.model_select = widgets.SelectMultiple(
            options=list(self.refs),
            value=selected,
            rows=min(max(len(self.refs), 2), 6),
            description="models",
            layout=widgets.Layout(width="auto", min_width="260px"),
        )
        self.model_select.add_class("wb-models")
        sampling = resolve_sampling(cfg)  # the panel's controls always hold a value
        self.temperature = widgets.BoundedFloatText(
            value=sampling.temperature,
            min=0.0,
            max=2.0,
            step=0.05,
            description="temperature",
            layout=widgets.Layout(width="215px"),
        )
        self.top_p = widgets.BoundedFloatText(
            value=sampling.top_p,
            min=0.0,
            max=1.0,
            step=0.01,
            description="top_p",
            layout=widgets.Layout(width="215px"),
        )
        self.max_tokens = widgets.BoundedIntText(
            value=cfg.max_tokens,
            min=1,
            max=32768,
            description="max tokens",
            layout=widgets.Layout(width="215px"),
        )
        self.seed = widgets.BoundedIntText(
            value=-1 if cfg.seed is None else cfg.seed,
            min=-1,
            max=2**31 - 1,
            description="seed",
            tooltip="-1: a new random seed for every response",
            layout=widgets.Layout(width="215px"),
        )
        for cls, w in (
            ("wb-temperature", self.temperature),
            ("wb-top-p", self.top_p),
            ("wb-max-tokens", self.max_tokens),
            ("wb-seed", self.seed),
        ):
            w.add_class(cls)
            w.style.description_width = "95px"
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.run_button.add_class("wb-run")
        self.stop_button = widgets.Button(
            description="Stop", button_style="danger", icon="stop", disabled=True
        )
        self.stop_button.add_class("wb-stop")
        self.status = widgets.HTML("")
        self.status.add_class("wb-status")
        self.columns_box = widgets.HBox(layout=widgets.Layout(width="100%", align_items="stretch"))
        self.columns_box.add_class("wb-columns")
        self.figure_outputs = {k: widgets.Output() for k in ("ttft", "speed", "length")}
        self.figures_box = widgets.GridBox(
            list(self.figure_outputs.values()),
            layout=widgets.Layout(grid_template_columns="repeat(3, minmax(0, 1fr))", width="100%"),
        )
        self.figures_box.add_class("wb-figures")

        self.columns: dict[str, ModelColumn] = {}
        self.rows: list[Mapping[str, Any]] = []
        """Result rows of every response this panel produced (also in the store)."""
        self.figures: dict[str, Any] = {}
        """The latest Plotly figures (ttft, speed, length), built from ``rows``."""
        self.last_error: str | None = None
        """A failure of the run as a whole (not of one model), or None."""
        self._run_images: tuple[Image, ...] = ()
        """The images of the run in progress (checked when Run was pressed)."""
        self.conversation: Conversation | None = None
        """The chat in progress (chat mode, after its first turn), else None."""
        self.turns = 0
        """Turns sent in the chat in progress."""
        self.conversation_models: tuple[str, ...] = ()
        """The models of the chat in progress (fixed at its first turn)."""
        self._modes: dict[str, PromptMode | None] = {}
        self._runner: Runner | None = None
        self._thread: threading.Thread | None = None
        self._label_thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._run_lock = threading.Lock()
        self._active = False
        self._idle_timer: threading.Timer | None = None
        self.released = 0
        """How many times idle models were released."""

        self.run_button.on_click(self._on_run)
        self.stop_button.on_click(self._on_stop)
        self.new_chat_button.on_click(self._on_new_chat)
        self.mode.observe(self._on_mode, names="value")

        sampling = widgets.VBox([self.temperature, self.top_p, self.max_tokens, self.seed])
        controls = widgets.HBox(
            [self.model_select, sampling],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"),
        )
        buttons = widgets.HBox(
            [self.run_button, self.stop_button, self.new_chat_button, self.image_upload,
             self.status]
        )  # fmt: skip
        super().__init__(
            [
                self.mode,
                self.prompt,
                self.system_prompt,
                controls,
                buttons,
                self.columns_box,
                self.figures_box,
            ],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("wb-compare")

    # ------------------------------------------------------------------ setup

    @staticmethod
    def _refs(models: Sequence[str | ModelRef] | None) -> dict[str, ModelRef]:
        if models is None:
            refs = list_models()
        else:
            refs = [m if isinstance(m, ModelRef) else resolve(m) for m in models]
        out: dict[str, ModelRef] = {}
        for ref in refs:
            out.setdefault(ref.name, ref)
        return out

    def _default_selection(self, models: Sequence[str | ModelRef] | None) -> tuple[str, ...]:
        if models is not None:
            return tuple(self.refs)
        bundled = [n for n, r in self.refs.items() if r.source == "bundled"]
        return tuple(bundled or list(self.refs)[:2])

    def prompt_mode(self, name: str) -> PromptMode | None:
        """How ``name`` gets its prompt, from its GGUF header (read once): "chat" through
        its chat template (or a server's chat API), "completion" for a base model without
        one (labelled :data:`BASE_MODEL_LABEL`); None when the header cannot be read."""
        if name not in self._modes:
            ref = self.refs[name]
            try:
                mode = "chat" if ref.is_endpoint else prompt_mode(ref.info().chat_template)
            except GGUFError:
                mode = None
            self._modes[name] = mode
        return self._modes[name]

    def generation_config(self) -> GenerationConfig:
        """The settings the controls describe, on top of the panel's base config."""
        system = self.system_prompt.value.strip()
        return replace(
            self.base_config,
            temperature=float(self.temperature.value),
            top_p=float(self.top_p.value),
            max_tokens=int(self.max_tokens.value),
            seed=None if int(self.seed.value) < 0 else int(self.seed.value),
            system_prompt=system or None,
        )

    def images(self) -> tuple[Image, ...]:
        """The uploaded images, checked (:func:`workbench.images.image_from_bytes`).

        Raises:
            ImageError: a file that is not a PNG, JPEG or WebP image, or does not decode.
        """
        return tuple(
            image_from_bytes(bytes(f["content"]), str(f.get("name") or "image"))
            for f in self.image_upload.value
        )

    # ------------------------------------------------------------------ running

    @property
    def running(self) -> bool:
        """True while a run is in progress."""
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> bool:
        """Start a run with the current prompt and settings (what the Run button does).

        Returns immediately; :meth:`wait` blocks until the run ends. Returns False (and
        says why in the status line) when nothing was started.
        """
        with self._run_lock:
            if self.running:
                return False
            text = self.prompt.value.strip()
            names = list(self.model_select.value)
            if not text:
                self._set_status("Type a prompt first.", error=True)
                return False
            if not names:
                self._set_status("Select at least one model.", error=True)
                return False
            chat = self.mode.value == "chat"
            if chat and self.conversation is not None:
                names = list(self.conversation_models)
            try:
                images = self.images()
            except ImageError as e:  # before any model runs, one line
                self._set_status(str(e), error=True)
                return False
            if images and chat:
                self._set_status("An image goes with a single prompt, not a chat.", error=True)
                return False
            self._run_images = images
            self._cancel_idle_timer()
            self.last_error = None
            self._cancel = threading.Event()
            old = list(self.columns.values())
            turn = self.turns + 1 if chat else None
            self.columns = {
                n: ModelColumn(
                    n,
                    self.max_redraws_per_s,
                    mode=self._modes.get(n),
                    turn=turn,
                    history=self._shown_history(n, text) if chat else (),
                )
                for n in names
            }
            self.columns_box.children = tuple(c.box for c in self.columns.values())
            for col in old:
                close_tree(col.box)
            self._active = True
            self.run_button.disabled = True
            self.stop_button.disabled = False
            self.new_chat_button.disabled = True
            self.mode.disabled = True
            config = self.generation_config()
            if chat:
                self.turns += 1
                self.conversation_models = tuple(names)
                self.model_select.disabled = self.system_prompt.disabled = True
                self.prompt.value = ""  # the prompt now shows in each column's history
                what = f"Chat turn {self.turns}: {len(names)} model(s), one after another…"
            else:
                what = f"Running {len(names)} model(s), one after another…"
            self._set_status(what)
            self._thread = threading.Thread(
                target=self._work,
                args=(text, names, config, self._cancel, chat),
                name="workbench-compare",
                daemon=True,
            )
            self._thread.start()
            unknown = {n: c for n, c in self.columns.items() if n not in self._modes}
            if unknown:  # read the GGUF headers (seconds for a large vocabulary) aside
                self._label_thread = threading.Thread(
                    target=self._label_modes, args=(unknown,), name="workbench-modes", daemon=True
                )
                self._label_thread.start()
            return True

    def _label_modes(self, columns: Mapping[str, ModelColumn]) -> None:
        for name, col in columns.items():
            mode = self.prompt_mode(name)
            if col.row is None:  # once the model ran, its row says how it was prompted
                col.set_mode(mode)

    def _shown_history(self, name: str, text: str) -> tuple[Message, ...]:
        """What ``name`` is sent this turn: its conversation so far, then ``text``."""
        earlier = self.conversation.history(name) if self.conversation is not None else ()
        return (*earlier, Message("user", text))

    def new_chat(self) -> bool:
        """Forget the chat in progress: the next prompt starts a new conversation (what
        the New chat button does). False while a run is in progress."""
        with self._run_lock:
            if self.running or self._active:
                return False
            self._reset_chat()
            if self.mode.value == "chat":
                self._set_status("New chat: the next prompt starts a conversation.")
            return True

    def _reset_chat(self) -> None:
        self.conversation = None
        self.turns = 0
        self.conversation_models = ()
        self.model_select.disabled = self.system_prompt.disabled = False
        self.new_chat_button.disabled = True
        for col in self.columns.values():
            close_tree(col.box)
        self.columns = {}
        self.columns_box.children = ()

    def stop(self) -> None:
        """Cancel the run: the response in progress is stored as ``cancelled``, models not
        yet started are skipped."""
        with self._run_lock:  # not after _finish_run has said "Done"
            self._cancel.set()
            self.stop_button.disabled = True
            if self._active:
                self._set_status("Stopping…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run (if any) ends; True when nothing is running."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        if self._label_thread is not None and not self.running:
            self._label_thread.join(timeout)
        return not self.running

    def close(self) -> None:
        """Stop any run, release the loaded models and close the widgets."""
        self.stop()
        self.wait(30)
        with self._run_lock:
            self._cancel_idle_timer()
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        for col in self.columns.values():
            close_tree(col.box)
        for child in self.children:
            close_tree(child)
        super().close()

    def _on_run(self, _button: Any = None) -> None:
        self.run()

    def _on_stop(self, _button: Any = None) -> None:
        self.stop()

    def _on_new_chat(self, _button: Any = None) -> None:
        self.new_chat()

    def _on_mode(self, _change: Any = None) -> None:
        self.new_chat()

    def _set_status(self, message: str, *, error: bool = False) -> None:
        color = "var(--jp-error-color1,#c0392b)" if error else "var(--jp-ui-font-color2,#555)"
        self.status.value = (
            f"<span style='color:{color};margin-left:8px'>{html.escape(message)}</span>"
        )

    def _get_runner(self, config: GenerationConfig) -> Runner:
        if self._runner is None:
            self._runner = Runner(list(self.refs.values()), config, store=self.store)
        # Sampling settings change per run; load settings come from base_config and do
        # not, so models loaded by an earlier run stay loaded.
        self._runner.config = config
        self._runner.run_id = uuid.uuid4().hex[:12]
        return self._runner

    def _events(
        self, runner: Runner, text: str, names: list[str], config: GenerationConfig,
        cancel: threading.Event, chat: bool,
    ) -> Iterator[RunEvent]:  # fmt: skip
        if not chat:
            prompt = Prompt(text, images=self._run_images)
            return runner.stream([prompt], cancel=cancel, models=names)
        conv = self.conversation
        if conv is None:  # the chat's first turn: the runner's config has its system prompt
            conv = self.conversation = runner.conversation()
        else:  # this turn's sampling settings; the system prompt stays the chat's
            conv.config = replace(config, system_prompt=conv.system_prompt)
        return conv.stream(text, cancel=cancel, models=names)

    def _work(
        self,
        text: str,
        names: list[str],
        config: GenerationConfig,
        cancel: threading.Event,
        chat: bool = False,
    ) -> None:
        t0 = time.perf_counter()
        try:
            runner = self._get_runner(config)
            for ev in self._events(runner, text, names, config, cancel, chat):
                col = self.columns[ev.model]
                if isinstance(ev, TokenChunk):
                    col.add(ev.text, reasoning=ev.reasoning, moved=ev.moved)
                elif isinstance(ev, ResponseStarted):
                    col.start(cold=not runner.is_loaded(ev.model))
                elif isinstance(ev, ResponseFinished):
                    col.finish(ev)
                    self.rows.append(ev.row)
        except Exception as e:  # the run as a whole failed: say so, keep the kernel alive
            self.last_error = f"{type(e).__name__}: {e}"
        finally:
            for col in self.columns.values():
                if col.row is not None:
                    continue
                if col.state == "waiting":
                    col.skip()
                else:  # started, then the run broke off
                    col.fail(self.last_error or "the run ended without a result")
            self._finish_run(time.perf_counter() - t0, cancel.is_set())

    def _finish_run(self, elapsed: float, cancelled: bool) -> None:
        try:
            self.refresh_figures()
        except Exception as e:  # a figure must never hide the answers
            self.last_error = self.last_error or f"figures: {type(e).__name__}: {e}"
        failed = [c.name for c in self.columns.values() if c.state == "error"]
        with self._run_lock:
            self._report(elapsed, cancelled, failed)
            self._active = False
            if self.turns and self.conversation is None:  # the first turn never started
                self.turns = 0
                self.model_select.disabled = self.system_prompt.disabled = False
            self.mode.disabled = False
            self.new_chat_button.disabled = self.turns == 0
            self._start_idle_timer()

    # ------------------------------------------------------------------ idle models

    @property
    def models_loaded(self) -> list[str]:
        """Models this panel keeps loaded (warm) right now."""
        runner = self._runner
        return [] if runner is None else [n for n in runner.model_names if runner.is_loaded(n)]

    def release_models(self) -> bool:
        """Close the loaded models now (the next run loads them again); False while a run
        is in progress or when none is loaded."""
        with self._run_lock:
            return self._release_locked()

    def _release_locked(self) -> bool:
        if self._active or self.running or not self.models_loaded:
            return False
        assert self._runner is not None
        self._runner.close()
        self.released += 1
        return True

    def _on_idle(self, timer: threading.Timer) -> None:
        with self._run_lock:
            if timer is not self._idle_timer:  # a run started (or the panel closed) since
                return
            self._idle_timer = None
            if self._release_locked():
                minutes = (self.release_after_s or 0) / 60
                self._set_status(
                    f"Idle for {minutes:g} min: models released to free memory"
                    " (the next run loads them again)."
                )

    def _start_idle_timer(self) -> None:
        self._cancel_idle_timer()
        if not self.release_after_s or self.release_after_s <= 0:
            return
        timer = threading.Timer(self.release_after_s, lambda: self._on_idle(timer))
        timer.daemon = True
        timer.name = "workbench-idle"
        self._idle_timer = timer
        timer.start()

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _report(self, elapsed: float, cancelled: bool, failed: list[str]) -> None:
        if self.last_error:
            self._set_status(f"Run failed: {self.last_error}", error=True)
        else:
            msg = f"{'Stopped' if cancelled else 'Done'} in {elapsed:.1f} s"
            if failed:
                msg += f"; failed: {', '.join(failed)}"
            self._set_status(msg + ". Responses stored.", error=bool(failed))
        self.run_button.disabled = False
        self.stop_button.disabled = True

    # ------------------------------------------------------------------ figures

    @property
    def frame(self) -> pl.DataFrame:
        """This panel's responses as a runs frame."""
        return rows_to_frame(self.rows)

    def refresh_figures(self) -> None:
        """Redraw the Plotly figures from this panel's responses."""
        from workbench.plots.runs import run_figures

        self.figures = run_figures(self.frame, languages=False)
        for key, out in self.figure_outputs.items():
            out.outputs = (figure_bundle(self.figures[key]),)
