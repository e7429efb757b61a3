"""The generation worker: one child process, one loaded model (child side of
:class:`workbench.backends.llama_cpp.LlamaCppBackend`).

Started as ``python -m workbench.llama.gen_worker FD`` (see :mod:`workbench.llama.process`).
Messages are plain tuples:

- on start -> ``("ready", info)`` once llama_cpp is imported;
- ``("load", path, params)`` -> ``("loaded", info)`` | ``("error", message)``;
- ``("generate", request)`` -> ``("token", text, kind, moved)``* then
  ``("done", figures)`` | ``("error", message, figures)``; the first ``token`` goes out the
  moment the first token is produced (its text may be whitespace, or empty while a UTF-8
  character is incomplete or a marker may be starting), so the parent times it, and so
  does the first piece of the answer. ``kind`` is ``"reasoning"`` or ``"answer"`` (empty
  for an empty text); ``moved`` marks a piece that turns the answer so far into thinking
  (see :class:`workbench.thinking.Piece`);
- ``("cancel",)`` during a generation stops it (one arriving later is ignored);
- ``("close",)`` -> the process exits.

A request carries the conversation as ``messages`` (rendered with the GGUF's chat template
by llama-cpp-python's Jinja formatter, with the thinking setting's template variables) and
as ``text`` (what a base model without a template continues). The output is split into
thinking and answer here, token by token, with the model family's markers, so that the
count of thinking tokens is exact.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import os
import resource
import select
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from workbench.errors import one_line
from workbench.llama.params import flash_attn_arg, llama_kwargs
from workbench.llama.process import child_connection
from workbench.llama.vision import Vision, VisionError, text_only_refusal
from workbench.thinking import (
    Piece,
    ReasoningSplitter,
    ThinkingFormat,
    format_for,
    prompt_thinking,
    template_kwargs,
)

_SEND_INTERVAL_S = 0.015
"""Batch streamed text to at most one message per 15 ms (well above any UI's redraw rate)."""


def _piece_fn(
    lc: Any, vocab: Any, preserved: frozenset[int] = frozenset()
) -> Callable[[int], bytes]:
    """token id -> bytes of its text. llama-cpp-python's LlamaModel.token_to_piece returns
    its whole 32-byte buffer (NUL padding included) and truncates longer pieces; this
    uses the length llama.cpp returns and grows the buffer when asked to. Cached per id.

    Control tokens render as nothing, except those in ``preserved`` (a family's thinking
    markers, such as Gemma 4's ``<|channel>``), which render as their text, as
    llama-server's preserved tokens do."""
    cache: dict[int, bytes] = {}
    buf = ctypes.create_string_buffer(64)

    def piece(tok: int) -> bytes:
        nonlocal buf
        got = cache.get(tok)
        if got is not None:
            return got
        special = tok in preserved
        n = lc.llama_token_to_piece(vocab, tok, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(vocab, tok, buf, len(buf), 0, special)
        out = buf.raw[: max(n, 0)]
        cache[tok] = out
        return out

    return piece


def marker_tokens(lc: Any, llm: Any, fmt: ThinkingFormat | None) -> frozenset[int]:
    """The control tokens a family's thinking markers are made of (rendered as nothing
    unless preserved, which would merge the thinking into the answer)."""
    if fmt is None:
        return frozenset()
    vocab = lc.llama_model_get_vocab(llm._model.model)
    out = set()
    for marker in (fmt.open, fmt.close):
        for tok in llm.tokenize(marker.encode("utf-8"), add_bos=False, special=True):
            if lc.llama_vocab_is_control(vocab, tok):
                out.add(tok)
    return frozenset(out)


class _Sender:
    """Sends pieces to the parent: the first token's and the first answer piece at once
    (the parent times them), later ones batched so that each token does not wake the
    parent (and stall llama.cpp's threads); a change of kind, or a moved piece, starts
    a new message."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.kind = ""
        self.parts: list[str] = []
        self.moved = False
        self.last = 0.0
        self.sent_any = False
        self.answered = False  # the first answer piece went out

    def send(self, pieces: list[Piece]) -> None:
        for p in pieces:
            if p.kind != self.kind or p.moved:
                self._flush()
                self.kind, self.moved = p.kind, p.moved
            self.parts.append(p.text)
        if (
            not self.sent_any
            or (self.kind == "answer" and self.parts and not self.answered)
            or (self.parts and time.perf_counter() - self.last >= _SEND_INTERVAL_S)
        ):
            self._flush(always=not self.sent_any)

    def _flush(self, always: bool = False) -> None:
        if not self.parts and not always:
            return
        text = "".join(self.parts)
        self.conn.send(("token", text, self.kind if text else "", self.moved))
        self.sent_any = True
        self.answered = self.answered or (self.kind == "answer" and bool(text))
        self.parts, self.moved, self.last = [], False, time.perf_counter()

    def close(self) -> None:
        self._flush()


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class _Inbox:
    """Messages that arrive while a generation runs (Stop, close), checked per token
    with one non-blocking poll of the pipe."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fd = conn.fileno()
        # poll(2) costs ~3 us here, Connection.poll ~45 us: per token, that counts.
        self.poller = select.poll() if hasattr(select, "poll") else None
        if self.poller is not None:
            self.poller.register(self.fd, select.POLLIN)
        self.closing = False

    def _pending(self) -> bool:
        if self.poller is not None:
            return bool(self.poller.poll(0))
        return bool(select.select([self.fd], [], [], 0)[0])

    def stop_requested(self) -> bool:
        if not self._pending():
            return False
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            self.closing = True
            return True
        if msg[0] == "close":
            self.closing = True
        return msg[0] in ("cancel", "close")


class _Model:
    def __init__(self, lc: Any, path: str, params: dict[str, Any]) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.lc = lc
        with flash_attn_arg(lc, params["flash_attn"]) as flash:
            self.llm = Llama(
                model_path=path, flash_attn=flash, verbose=True, **llama_kwargs(params)
            )
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.formatter = None
        # Thinking markers are read from the template (a base model has neither).
        self.thinking_format = format_for(chat_template=template) if template else None
        if template:
            model = self.llm._model
            eos_id, bos_id = model.token_eos(), model.token_bos()
            eos = model.token_get_text(eos_id) if eos_id >= 0 else ""
            bos = model.token_get_text(bos_id) if bos_id >= 0 else ""
            self.formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        self.vocab = lc.llama_model_get_vocab(self.llm._model.model)
        self.piece = _piece_fn(lc, self.vocab, marker_tokens(lc, self.llm, self.thinking_format))
        # llama.cpp may round the context up (to 256); llama-cpp-python's token buffer
        # keeps the requested size, so the smaller of the two is the real limit.
        self.n_ctx = min(self.llm.n_ctx(), len(self.llm.input_ids))
        self.n_threads = self.llm.n_threads
        self.memory = lc.llama_get_memory(self.llm.ctx)
        self.vision: Vision | None = None
        if params.get("mmproj"):
            self.vision = Vision(
                self.llm,
                params["mmproj"],
                n_threads=self.n_threads,
                use_gpu=params["n_gpu_layers"] != 0,
                image_tokens=params.get("image_tokens"),
            )

    def info(self) -> dict[str, Any]:
        return {
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "chat": self.formatter is not None,
            "vision": self.vision is not None,
            "peak_rss_bytes": _peak_rss(),
        }

    def render(self, req: dict[str, Any]) -> tuple[str, list[int]]:
        """The prompt text and its tokens: the conversation through the chat template
        (with the thinking setting's variables), or a base model's plain text."""
        text, add_special = self.render_text(req)
        special = self.formatter is not None
        return text, self.llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=special)

    def render_text(self, req: dict[str, Any]) -> tuple[str, bool]:
        """The prompt text, and whether the tokenizer adds BOS (the template did not).
        With images, each image is the media marker (see :mod:`workbench.llama.vision`)."""
        images = req.get("images") or ()
        if self.formatter is None:  # a base model: plain completion of the text
            text = req["text"]
            if images and self.vision is not None:  # the images first, then the text
                text = "\n".join([self.vision.marker] * len(images) + [text])
            return text, True
        messages: list[Any] = req["messages"]
        if self.vision is not None:
            messages = self.vision.marked(messages)
        extra = template_kwargs(req["thinking"], self.thinking_format)
        try:
            result = self.formatter(messages=messages, **extra)
        except Exception:
            if messages[0]["role"] != "system":
                raise
            # Templates without a system role: fold it into the first user turn.
            system, first, *rest = messages
            content = f"{system['content']}\n\n{first['content']}"
            folded: Any = {"role": "user", "content": content}
            result = self.formatter(messages=[folded, *rest], **extra)
        return result.prompt, not result.added_special

    def generate(self, req: dict[str, Any], conn: Connection, inbox: _Inbox) -> None:
        lc, llm = self.lc, self.llm
        figures: dict[str, Any] = {"n_ctx": self.n_ctx, "n_threads": self.n_threads}
        images: list[dict[str, Any]] = list(req.get("images") or ())
        if images and self.vision is None:
            conn.send(("error", text_only_refusal(len(images)), figures))
            return
        if images:
            prompt, add_special = self.render_text(req)
            tokens: list[int] = []
        else:
            prompt, tokens = self.render(req)
        fmt = self.thinking_format
        state = prompt_thinking(prompt, fmt)
        figures["prompt_tokens"] = len(tokens)
        figures["prompt_thinking"] = state
        if len(tokens) >= self.n_ctx:
            figures["peak_rss_bytes"] = _peak_rss()
            conn.send(
                (
                    "error",
                    f"prompt is {len(tokens)} tokens, longer than the context "
                    f"({self.n_ctx}); raise n_ctx or shorten the prompt",
                    figures,
                )
            )
            return
        llm.set_seed(int(req["seed"]))
        # Every request starts from an empty cache, so the prompt figures measure the
        # whole prompt and a seed reproduces the same text. Only the cells are cleared
        # (data=False, as llama-bench does): zeroing the buffers costs ~0.1 s per GiB of
        # cache, counted in ttft_s, and llm.reset() zeroes them for hybrid models.
        llm.n_tokens = 0
        if self.memory is not None:
            lc.llama_memory_clear(self.memory, False)
        lc.llama_perf_context_reset(llm.ctx)
        n_prompt = len(tokens)
        if images:
            assert self.vision is not None
            try:  # every chunk but the last text one goes into the context here
                done = self.vision.evaluate(prompt, images, add_special=add_special)
            except VisionError as e:
                figures["peak_rss_bytes"] = _peak_rss()
                conn.send(("error", str(e), figures))
                return
            tokens, n_prompt = done.last, done.n_tokens
            figures.update(
                prompt_tokens=n_prompt,
                image_tokens=done.image_tokens,
                image_tokens_each=done.per_image,
                image_encode_s=done.encode_s,
            )
        max_tokens = min(int(req["max_tokens"]), self.n_ctx - n_prompt)
        grammar = None
        if req.get("grammar"):
            grammar = lc.LlamaGrammar.from_string(req["grammar"], verbose=False)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        splitter = ReasoningSplitter(fmt, in_reasoning=state == "open")
        out = _Sender(conn)
        n_reasoning = 0
        produced = 0  # tokens sampled, the end-of-generation one included
        n_gen = 0
        finish = "length"
        vocab, piece_of, is_eog = self.vocab, self.piece, lc.llama_vocab_is_eog
        for tok in llm.generate(
            tokens,
            top_k=int(req["top_k"]),
            top_p=float(req["top_p"]),
            min_p=float(req["min_p"]),
            temp=float(req["temperature"]),
            repeat_penalty=float(req["repeat_penalty"]),
            reset=False,  # reset=True would call llm.reset() (see above)
            grammar=grammar,
        ):
            produced += 1
            if is_eog(vocab, tok):
                finish = "stop"
                break
            n_gen += 1
            was_inside = splitter.in_block
            text = decoder.decode(piece_of(tok))
            out.send(splitter.feed(text) if text else [])
            # A token of thinking: inside a block, or the one that closes it.
            n_reasoning += was_inside or splitter.in_block
            if inbox.stop_requested():
                finish = "cancelled"
                break
            if n_gen >= max_tokens:
                break
        tail = decoder.decode(b"", final=True)
        out.send([*(splitter.feed(tail) if tail else []), *splitter.finish()])
        out.close()
        perf = lc.llama_perf_context(llm.ctx)
        figures.update(
            finish_reason=finish,
            completion_tokens=n_gen,
            reasoning_tokens=n_reasoning,
            reasoning_unterminated=splitter.result().unterminated,
            # decode steps after the first token: the window the parent's wall-clock
            # rate divides (the end-of-generation token took one step too)
            gen_steps=max(produced - 1, 0),
            n_p_eval=perf.n_p_eval,
            t_p_eval_ms=perf.t_p_eval_ms,
            n_eval=perf.n_eval,
            t_eval_ms=perf.t_eval_ms,
            peak_rss_bytes=_peak_rss(),
        )
        conn.send(("done", figures))


def main(argv: list[str] | None = None) -> None:
    """Worker entry point: serve requests until told to close or the parent is gone."""
    conn = child_connection(argv)
    import llama_cpp

    llama_cpp.llama_backend_init()
    conn.send(("ready", {"pid": os.getpid()}))
    inbox = _Inbox(conn)
    model: _Model | None = None
    while not inbox.closing:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        kind = msg[0]
        if kind == "close":
            return
        try:
            if kind == "load":
                model = None  # free the previous model before loading the next
                model = _Model(llama_cpp, msg[1], dict(msg[2]))
                sys.stderr.flush()
                conn.send(("loaded", model.info()))
            elif kind == "generate":
                if model is None:
                    conn.send(("error", "no model loaded", {}))
                else:
                    model.generate(msg[1], conn, inbox)
            # a "cancel" that arrives after its generation ended is dropped here
        except Exception as e:  # one line back to the parent; the worker lives on
            sys.stderr.flush()
            with contextlib.suppress(OSError):
                conn.send(("error", one_line(e), {}))


if __name__ == "__main__":
    main()
