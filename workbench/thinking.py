"""Thinking (reasoning) text: the model families' markers, and a streaming splitter.

Chat models with a thinking mode write their reasoning before the answer, and engines
hand it over in one of three shapes:

- a separate field in each streamed delta: ``reasoning_content`` (llama-server with
  ``--reasoning-format deepseek``, the default ``auto``; SGLang's reasoning parsers; vLLM
  before 0.11) or ``reasoning`` (vLLM 0.11 and later, Ollama's OpenAI-compatible API);
  Ollama's native API names it ``message.thinking``;
- inline markers in the text itself: ``<think>...</think>`` (Qwen 3 / 3.5, GLM 4.5-4.7,
  Ollama and any server without a reasoning parser), or Gemma 4's thought channel
  ``<|channel>thought ... <channel|>``;
- nothing at all before a closing marker, when the chat template opened the thinking
  block itself at the end of the prompt (Qwen 3.5's larger models end the prompt with
  ``<think>\\n``; GLM 4.7 Flash with ``<think>``).

The markers and the template variable that switches thinking on or off are read from the
models' published chat templates (copies under ``tests/data/templates/``, see the README
there) and are written once, in :data:`FAMILIES`. :class:`ReasoningSplitter` turns a
stream of chunks into reasoning and answer pieces, holding back a marker split across
chunks, and timestamps the first token of any kind and the first answer token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from workbench.errors import InputError

Thinking = Literal["on", "off", "default"]
"""The thinking setting of a run: force on, force off, or leave the template's default."""

THINKING_SETTINGS: tuple[Thinking, ...] = ("on", "off", "default")
"""Every :data:`Thinking` value, for validating user input."""


def setting(thinking: str | None) -> Thinking:
    """The :data:`Thinking` setting of a config's ``thinking`` field (None: ``default``)."""
    if thinking is None:
        return "default"
    if thinking not in THINKING_SETTINGS:
        raise InputError(f"unknown thinking setting {thinking!r} (use on, off or default)")
    return thinking


PromptThinking = Literal["open", "closed", "free"]
"""How a rendered prompt leaves thinking: ``open`` (the prompt ends inside a thinking
block, so the output starts with reasoning and has no opening marker), ``closed`` (the
prompt ends with an empty, closed block: thinking is off), ``free`` (no block: the model
decides, and opens one itself)."""


@dataclass(frozen=True)
class ThinkingFormat:
    """How one family marks reasoning inline, and how its template switches it."""

    name: str
    """Short identifier, e.g. ``"think-tags"``."""
    open: str
    """The text that opens a reasoning block (whitespace after it is not reasoning)."""
    close: str
    """The text that closes a reasoning block (newlines after it are not answer)."""
    switch: str = "enable_thinking"
    """The chat-template variable that turns thinking on (true) or off (false)."""
    repeats: bool = False
    """Reasoning blocks may follow answer text (Gemma 4 interleaves thought and answer);
    when False only a block before any answer text counts, so an answer that quotes the
    marker is left alone."""


THINK_TAGS = ThinkingFormat("think-tags", "<think>", "</think>")
"""``<think>...</think>``: Qwen 3, Qwen 3.5, GLM 4.5/4.6/4.7 (and DeepSeek R1, QwQ)."""

GEMMA4_CHANNEL = ThinkingFormat("gemma4-channel", "<|channel>thought", "<channel|>", repeats=True)
"""Gemma 4's thought channel: ``<|channel>thought\\n...<channel|>``; the system turn's
``<|think|>`` (rendered when ``enable_thinking`` is true) turns it on, and with thinking
off the generation prompt ends with the empty channel ``<|channel>thought\\n<channel|>``.
llama.cpp's own Gemma 4 parser uses the same start and end tags."""

FORMATS: tuple[ThinkingFormat, ...] = (GEMMA4_CHANNEL, THINK_TAGS)
"""Every known inline format, most specific first (for sniffing a chat template)."""


@dataclass(frozen=True)
class FamilyThinking:
    """The thinking facts of one model family."""

    family: str
    """Family name as the workbench shows it, e.g. ``"qwen3.5"``."""
    archs: tuple[str, ...]
    """GGUF ``general.architecture`` values of the family."""
    format: ThinkingFormat
    """Its inline markers and on/off template variable."""
    name_hints: tuple[str, ...]
    """Lower-case fragments of served model names that identify the family."""
    source: str
    """Where the markers were read (a published chat template)."""


FAMILIES: tuple[FamilyThinking, ...] = (
    FamilyThinking(
        "gemma4",
        ("gemma4",),
        GEMMA4_CHANNEL,
        ("gemma-4", "gemma4"),
        "google/gemma-4-31B-it chat template (llama.cpp models/templates/"
        "google-gemma-4-31B-it.jinja)",
    ),
    FamilyThinking(
        "qwen3.5",
        ("qwen35", "qwen35moe"),
        THINK_TAGS,
        ("qwen3.5", "qwen3_5", "qwen35"),
        "Qwen/Qwen3.5-4B chat template (llama.cpp models/templates/Qwen3.5-4B.jinja)",
    ),
    FamilyThinking(
        "qwen3",
        ("qwen3", "qwen3moe", "qwen3next"),
        THINK_TAGS,
        ("qwen3", "qwq"),
        "Qwen/Qwen3-0.6B chat template (llama.cpp models/templates/Qwen-Qwen3-0.6B.jinja)",
    ),
    FamilyThinking(
        "glm4.5",
        ("glm4moe",),
        THINK_TAGS,
        ("glm-4.5", "glm-4.6", "glm-4.7", "glm4.5", "glm4.6", "glm4.7"),
        "zai-org GLM-4.6 and GLM-4.7-Flash chat templates (llama.cpp models/templates/"
        "GLM-4.6.jinja, GLM-4.7-Flash.jinja)",
    ),
)
"""Families with a thinking mode, one entry each."""

_REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")
_NEWLINES = "\r\n"  # stripped after a block, as the templates do (``.lstrip('\n')``)


def family_for(arch: str | None = None, name: str | None = None) -> FamilyThinking | None:
    """The family of a GGUF architecture, or failing that of a served model's name."""
    for fam in FAMILIES:
        if arch and arch in fam.archs:
            return fam
    low = (name or "").lower()
    if low:
        for fam in FAMILIES:
            if any(h in low for h in fam.name_hints):
                return fam
    return None


def format_for(
    *, chat_template: str | None = None, arch: str | None = None, name: str | None = None
) -> ThinkingFormat | None:
    """The inline format to parse a model's output with, or None for none.

    A chat template, when there is one, decides: it names its own markers (a Qwen 3
    Instruct-2507 template has none, a fine-tune in another architecture may have
    some). Without a template (a served model) the architecture or the name decides.
    """
    if chat_template is not None:
        for fmt in FORMATS:
            if fmt.close in chat_template:
                return fmt
        return None
    fam = family_for(arch, name)
    return fam.format if fam else None


def template_kwargs(thinking: Thinking, fmt: ThinkingFormat | None) -> dict[str, Any]:
    """Extra chat-template variables for a thinking setting (empty for ``default``).

    In process these go to the Jinja formatter; served models get them as
    ``chat_template_kwargs`` (see :func:`request_fields`).
    """
    if thinking == "default" or fmt is None:
        return {}
    return {fmt.switch: thinking == "on"}


def request_fields(thinking: Thinking, fmt: ThinkingFormat | None) -> dict[str, Any]:
    """Extra JSON fields of an OpenAI-style request for a thinking setting.

    llama-server, vLLM and SGLang pass ``chat_template_kwargs`` to the chat template
    (llama-server documents ``{"enable_thinking": false}``).
    """
    kwargs = template_kwargs(thinking, fmt)
    return {"chat_template_kwargs": kwargs} if kwargs else {}


def delta_reasoning(delta: Mapping[str, Any]) -> str:
    """The reasoning text of one streamed delta, whichever field the engine used."""
    for key in _REASONING_FIELDS:
        value = delta.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def prompt_thinking(prompt: str, fmt: ThinkingFormat | None) -> PromptThinking:
    """How a rendered prompt leaves thinking (see :data:`PromptThinking`).

    Only the end of the prompt matters: a block opened after the last close marker, with
    nothing but whitespace after it, is ``open``; a prompt ending in a close marker (an
    empty block, thinking off) is ``closed``.
    """
    if fmt is None:
        return "free"
    tail = prompt.rstrip()
    if tail.endswith(fmt.close):
        return "closed"
    o = tail.rfind(fmt.open)
    if o >= 0 and tail.find(fmt.close, o) < 0 and not tail[o + len(fmt.open) :].strip():
        return "open"
    return "free"


def prompt_thinking_on(state: PromptThinking) -> bool | None:
    """Whether thinking is on for a prompt state (None: the model decides)."""
    return {"open": True, "closed": False, "free": None}[state]


# --------------------------------------------------------------------------- splitting


@dataclass(frozen=True)
class Piece:
    """A piece of streamed output, classified."""

    kind: Literal["reasoning", "answer"]
    """Which part of the output it belongs to."""
    text: str
    """The text (never empty)."""
    t: float
    """Clock time of the chunk that completed it."""
    moved: bool = False
    """The answer shown so far was reasoning (a close marker came with no opening one):
    drop it, and show this piece, which holds all of it, as reasoning."""


@dataclass(frozen=True)
class Split:
    """A whole output, split."""

    reasoning: str
    """The thinking text, empty when none; blocks joined by a blank line."""
    answer: str
    """The answer alone."""
    t_first: float | None
    """Clock time of the first chunk carrying anything (a marker, reasoning or answer)."""
    t_first_answer: float | None
    """Clock time of the first answer text (None when there is none)."""
    unterminated: bool
    """The output ended inside a reasoning block (e.g. cut by max_tokens)."""
    reasoning_chunks: int
    """Chunks that carried reasoning (servers that report no counts send one token per
    chunk)."""
    answer_chunks: int
    """Chunks that carried answer text."""


def split_text(text: str, fmt: ThinkingFormat | None, *, in_reasoning: bool = False) -> Split:
    """Split a complete output at once (the reference :class:`ReasoningSplitter` matches).

    Reasoning blocks are stripped and joined by a blank line; newlines after a closing
    marker are dropped (as the templates' ``.lstrip('\\n')`` does), and so is whitespace
    before the first block. A closing marker with no opening one (the prompt opened the
    block but ``in_reasoning`` was not given) makes everything before it reasoning, as
    the Qwen and GLM templates read their own history. The result has no times and no
    chunk counts (there was no stream).

    Args:
        text: the model's whole output.
        fmt: the inline format, or None (everything is answer).
        in_reasoning: the prompt left a reasoning block open (see :func:`prompt_thinking`).
    """
    blocks: list[str] = []
    answer = ""
    if fmt is None:
        return Split("", text, None, None, False, 0, 0)
    pos, mode = 0, "reasoning" if in_reasoning else "answer"
    seen = in_reasoning
    lstrip = False

    def add_answer(seg: str) -> None:
        nonlocal answer, lstrip
        if lstrip:
            seg = seg.lstrip(_NEWLINES)
            lstrip = not seg
        answer += seg

    while True:
        if mode == "reasoning":
            j = text.find(fmt.close, pos)
            block = (text[pos:] if j < 0 else text[pos:j]).strip()
            if block:
                blocks.append(block)
            if j < 0:
                return Split("\n\n".join(blocks), answer, None, None, True, 0, 0)
            pos, mode, lstrip = j + len(fmt.close), "answer", True
            continue
        o = text.find(fmt.open, pos)
        if o >= 0 and not fmt.repeats and (answer + text[pos:o]).strip():
            o = -1  # the answer has begun: a later "<think>" is answer text
        c = text.find(fmt.close, pos) if (not seen or fmt.repeats) else -1
        if o >= 0 and (c < 0 or o < c):
            add_answer(text[pos:o])
            if not answer.strip():
                answer = ""  # whitespace before the first block is not an answer
            pos, mode, seen = o + len(fmt.open), "reasoning", True
        elif c >= 0:
            seg = text[pos:c]
            if not seen:  # a close with no open: everything so far was reasoning
                moved = (answer + seg).strip()
                blocks = [moved] if moved else []
                answer, lstrip, seen = "", True, True
            else:  # a stray close (Gemma 4 may end with one): dropped
                add_answer(seg)
            pos = c + len(fmt.close)
        else:
            add_answer(text[pos:])
            return Split("\n\n".join(blocks), answer, None, None, False, 0, 0)


def _partial(buf: str, marker: str) -> int:
    """Length of the longest end of ``buf`` that begins ``marker`` (a split marker)."""
    for k in range(min(len(marker) - 1, len(buf)), 0, -1):
        if buf.endswith(marker[:k]):
            return k
    return 0


class ReasoningSplitter:
    """Splits a streamed output into reasoning and answer pieces as chunks arrive.

    Feed it each chunk's text (and a delta's reasoning field, if any); it returns the
    pieces that are certain, holding back a marker that may be split across chunks,
    whitespace that ends a reasoning block, and whitespace before the first answer text.
    :meth:`finish` flushes the rest; :meth:`result` gives the totals and first-token
    times. Pieces joined in order (restarting the answer at a ``moved`` piece) give the
    same text as :func:`split_text` on the whole output, wherever the chunks were cut.

    Args:
        fmt: the inline format (None: text is all answer; reasoning fields still count).
        in_reasoning: the prompt left a reasoning block open (:func:`prompt_thinking`).
        clock: the time source for timestamps (``time.perf_counter`` by default).
    """

    def __init__(
        self,
        fmt: ThinkingFormat | None,
        *,
        in_reasoning: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.fmt = fmt
        self.in_reasoning = in_reasoning and fmt is not None
        self.clock = clock
        self._pieces: list[Piece] = []  # every piece so far (a move rewrites the answer)
        self._out: list[Piece] = []  # pieces of the current call
        self._buf = ""  # text not yet classified (may end in part of a marker)
        self._mode = "reasoning" if self.in_reasoning else "answer"
        self._seen = self.in_reasoning  # a reasoning block has opened
        self._started = False  # answer text other than whitespace has gone out
        self._held_ws = ""  # whitespace before the first answer text
        self._held_rws = ""  # whitespace that may end a reasoning block
        self._lstrip_answer = False
        self._lstrip_reasoning = self.in_reasoning
        self._new_block = True
        self._has_reasoning = False
        self._field_seen = False  # the engine sends reasoning in a delta field
        self._in_field = False
        self._content_seen = False
        self._ended_inside = False
        self._finished = False
        self._t_first: float | None = None
        self._chunks = {"reasoning": 0, "answer": 0}
        self._now = 0.0

    # ------------------------------------------------------------------ public

    def feed(self, text: str = "", *, reasoning: str = "", t: float | None = None) -> list[Piece]:
        """Take one chunk; return the pieces it completes.

        Args:
            text: the chunk's text (``delta.content``); may hold inline markers.
            reasoning: the chunk's reasoning field (see :func:`delta_reasoning`).
            t: the chunk's arrival time (default: ``clock()`` now).
        """
        if self._finished:
            raise RuntimeError("feed() after finish()")
        self._now = self.clock() if t is None else t
        self._out = []
        kinds_before = self._kinds_out()
        if (text.strip() or reasoning.strip()) and self._t_first is None:
            self._t_first = self._now
        if reasoning:
            if self.in_reasoning and not self._content_seen:
                self._mode = "answer"  # the server parsed the block the prompt opened
            self._field_seen = self._seen = True
            if not self._in_field:
                self._in_field, self._new_block, self._lstrip_reasoning = True, True, True
            self._emit_reasoning(reasoning, from_field=True)
        if text:
            self._content_seen = True
            self._buf += text
            self._parse()
        self._count(kinds_before)
        return self._out

    def finish(self, t: float | None = None) -> list[Piece]:
        """End the stream: flush what was held back; return the last pieces."""
        if self._finished:
            return []
        self._now = self.clock() if t is None else t
        self._out = []
        buf, self._buf = self._buf, ""
        if self._mode == "reasoning":
            self._emit_reasoning(buf)
            self._ended_inside = True
        else:
            self._emit_answer(buf)
            if self._held_ws:
                self._push("answer", self._held_ws)
                self._held_ws = ""
        self._end_block()
        self._finished = True
        return self._out

    @property
    def in_block(self) -> bool:
        """The text fed so far ends inside an inline reasoning block (for counting the
        tokens of thinking as they are generated)."""
        return self._mode == "reasoning"

    def result(self) -> Split:
        """The output so far (complete after :meth:`finish`)."""
        reasoning = "".join(p.text for p in self._pieces if p.kind == "reasoning")
        answer = "".join(p.text for p in self._pieces if p.kind == "answer")
        t_answer = next((p.t for p in self._pieces if p.kind == "answer"), None)
        return Split(
            reasoning,
            answer,
            self._t_first,
            t_answer,
            self._ended_inside,
            self._chunks["reasoning"],
            self._chunks["answer"],
        )

    # ------------------------------------------------------------------ internals

    def _kinds_out(self) -> tuple[int, int]:
        return (
            sum(p.kind == "reasoning" for p in self._pieces),
            sum(p.kind == "answer" for p in self._pieces),
        )

    def _count(self, before: tuple[int, int]) -> None:
        after = self._kinds_out()
        if after[0] > before[0] or any(p.moved for p in self._out):
            self._chunks["reasoning"] += 1
        if after[1] > before[1]:
            self._chunks["answer"] += 1

    def _push(self, kind: Literal["reasoning", "answer"], text: str, moved: bool = False) -> None:
        piece = Piece(kind, text, self._now, moved)
        self._pieces.append(piece)
        self._out.append(piece)

    def _emit_answer(self, text: str) -> None:
        if text and self._in_field:  # answer text ends the block sent in the field
            self._in_field, self._lstrip_answer = False, True
            self._end_block()
        if self._lstrip_answer:
            text = text.lstrip(_NEWLINES)
            self._lstrip_answer = not text
        if not text:
            return
        if not self._started:
            text, self._held_ws = self._held_ws + text, ""
            if not text.strip():
                self._held_ws = text  # maybe whitespace before a reasoning block
                return
            self._started = True
        self._push("answer", text)

    def _emit_reasoning(self, text: str, from_field: bool = False) -> None:
        if self._field_seen and not from_field:
            return  # the engine sends reasoning in a field and inline too (deepseek-legacy)
        if self._lstrip_reasoning:
            text = text.lstrip()
            self._lstrip_reasoning = not text
        if not text:
            return
        text, self._held_rws = self._held_rws + text, ""
        body = text.rstrip()
        self._held_rws = text[len(body) :]  # whitespace may end the block
        if not body:
            return
        if self._new_block and self._has_reasoning:
            body = "\n\n" + body
        self._new_block, self._has_reasoning = False, True
        self._push("reasoning", body)

    def _end_block(self) -> None:
        self._held_rws, self._new_block = "", True

    def _open_ok(self, before: str) -> bool:
        fmt = self.fmt
        assert fmt is not None
        return fmt.repeats or (not self._started and not before.strip())

    def _parse(self) -> None:
        fmt = self.fmt
        if fmt is None:
            buf, self._buf = self._buf, ""
            self._emit_answer(buf)
            return
        while True:
            buf = self._buf
            if self._mode == "reasoning":
                j = buf.find(fmt.close)
                if j >= 0:
                    self._emit_reasoning(buf[:j])
                    if not self._field_seen:  # else the field's block goes on
                        self._end_block()
                    self._buf = buf[j + len(fmt.close) :]
                    self._mode, self._lstrip_answer = "answer", True
                    continue
                keep = _partial(buf, fmt.close)
                self._emit_reasoning(buf[: len(buf) - keep])
                self._buf = buf[len(buf) - keep :]
                return
            o = buf.find(fmt.open)
            if o >= 0 and not self._open_ok(self._pending_answer(buf[:o])):
                o = -1
            close_ok = not self._seen or fmt.repeats
            c = buf.find(fmt.close) if close_ok else -1
            if o >= 0 and (c < 0 or o < c):
                self._emit_answer(buf[:o])
                if not self._started:
                    self._held_ws = ""  # whitespace before the first block is dropped
                self._buf = buf[o + len(fmt.open) :]
                self._mode, self._seen = "reasoning", True
                if not self._field_seen:
                    self._new_block, self._lstrip_reasoning = True, True
                continue
            if c >= 0:
                self._emit_answer(buf[:c])
                if not self._seen:
                    self._move_answer_to_reasoning()
                self._buf = buf[c + len(fmt.close) :]
                continue
            keep = _partial(buf, fmt.close) if close_ok else 0
            k_open = _partial(buf, fmt.open)
            if k_open > keep and self._open_ok(self._pending_answer(buf[: len(buf) - k_open])):
                keep = k_open
            self._emit_answer(buf[: len(buf) - keep])
            self._buf = buf[len(buf) - keep :]
            return

    def _pending_answer(self, before: str) -> str:
        """Answer text ahead of a marker, as the answer would see it."""
        return before.lstrip(_NEWLINES) if self._lstrip_answer else before

    def _move_answer_to_reasoning(self) -> None:
        moved = (
            "".join(p.text for p in self._pieces if p.kind == "answer") + self._held_ws
        ).strip()
        self._pieces[:] = [p for p in self._pieces if p.kind != "answer"]
        self._out[:] = [p for p in self._out if p.kind != "answer"]
        self._started, self._held_ws, self._seen = False, "", True
        self._lstrip_answer = True
        self._new_block = True
        if moved:
            self._has_reasoning = True
            self._push("reasoning", moved, moved=True)
