"""The child side of :mod:`workbench.backends.llama_cpp`: one process, one loaded model.

Runs in a process started with the ``spawn`` method. It receives requests on a pipe and
answers with plain tuples:

- ``("load", path, params)`` -> ``("loaded", info)`` | ``("error", message)``
- ``("generate", request)`` -> ``("token", text, kind, moved)``* then
  ``("done", figures)`` | ``("error", message, figures)``; ``kind`` is ``"reasoning"`` or
  ``"answer"`` and ``moved`` marks a piece that turns the answer so far into thinking
  (see :class:`workbench.thinking.Piece`).

A request carries the conversation as ``messages`` (rendered with the GGUF's chat template
by llama-cpp-python's Jinja formatter, with the thinking setting's template variables) and
as ``text`` (what a base model without a template continues). The output is split into
thinking and answer here, token by token, with the model family's markers, so the token
counts are exact.
- ``("close",)`` -> the process exits.

llama.cpp's own log (and any GGML_ASSERT message) goes to a log file given by the
parent, so that when llama.cpp aborts the process the parent can still say why.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import resource
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

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
_KV_LINE = re.compile(r"(KV|RS) buffer size\s*=\s*([\d.]+) MiB")
_FA_LINE = re.compile(r"flash_attn\s*=\s*(\w+)")


def _redirect_stderr(log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)  # llama.cpp prints to stdout too; nothing may reach a notebook's cells
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    # On an abort ggml attaches gdb to print a backtrace: slow, and useless to users.
    os.environ["GGML_NO_BACKTRACE"] = "1"
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _log_tail(log_path: str, since: int) -> str:
    try:
        with open(log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _piece_fn(lc: Any, vocab: Any, preserved: frozenset[int] = frozenset()) -> Any:
    """token id -> bytes of its text. llama-cpp-python's LlamaModel.token_to_piece returns
    its whole 32-byte buffer (NUL padding included) and truncates longer pieces; this
    uses the length llama.cpp returns and grows the buffer when asked to. Cached per id.

    Control tokens render as nothing, except those in ``preserved`` (a family's thinking
    markers, such as Gemma 4's ``<|channel>``), which render as their text, as
    llama-server's preserved tokens do."""
    import ctypes

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


def marker_tokens(llm: Any, fmt: ThinkingFormat | None) -> frozenset[int]:
    """The control tokens a family's thinking markers are made of (rendered as nothing
    unless preserved, which would merge the thinking into the answer)."""
    import llama_cpp

    if fmt is None:
        return frozenset()
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    out = set()
    for marker in (fmt.open, fmt.close):
        for tok in llm.tokenize(marker.encode("utf-8"), add_bos=False, special=True):
            if llama_cpp.llama_vocab_is_control(vocab, tok):
                out.add(tok)
    return frozenset(out)


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class _Model:
    def __init__(self, path: str, params: dict[str, Any], log_path: str) -> None:
        import llama_cpp
        from llama_cpp import Llama

        self.llama_cpp = llama_cpp
        start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        flash = params.pop("flash_attn")
        # llama-cpp-python maps flash_attn to ENABLED/DISABLED only; llama.cpp's default
        # (and the brief's) is AUTO. This process holds one model, so swapping the
        # constant for the duration of the constructor is contained.
        saved = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        if flash is None:
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        t0 = time.perf_counter()
        try:
            self.llm = Llama(model_path=path, flash_attn=flash is not False, verbose=True, **params)
        finally:
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED = saved
        self.load_s = time.perf_counter() - t0
        sys.stderr.flush()
        log = _log_tail(log_path, start)
        self.kv_bytes = int(sum(float(m.group(2)) for m in _KV_LINE.finditer(log)) * 1024 * 1024)
        fa = _FA_LINE.findall(log)
        self.flash_attn: bool | None = None
        if fa:
            self.flash_attn = fa[-1].lower() in ("enabled", "1", "true", "on")
        meta = self.llm.metadata
        template = meta.get("tokenizer.chat_template")
        self.formatter = None
        # Thinking markers are read from the template (a base model has neither).
        self.thinking_format = format_for(chat_template=template) if template else None
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self.llm._model
            eos_id, bos_id = model.token_eos(), model.token_bos()
            eos = model.token_get_text(eos_id) if eos_id >= 0 else ""
            bos = model.token_get_text(bos_id) if bos_id >= 0 else ""
            self.formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        self.piece = _piece_fn(llama_cpp, self.vocab, marker_tokens(self.llm, self.thinking_format))
        # llama.cpp may round the context up (to 256); llama-cpp-python's token buffer
        # keeps the requested size, so the smaller of the two is the real limit.
        self.n_ctx = min(self.llm.n_ctx(), len(self.llm.input_ids))
        self.n_threads = self.llm.n_threads

    def info(self) -> dict[str, Any]:
        return {
            "load_s": self.load_s,
            "kv_cache_bytes": self.kv_bytes,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "flash_attn": self.flash_attn,
            "chat": self.formatter is not None,
            "peak_rss_bytes": _peak_rss(),
        }

    def render(self, req: dict[str, Any]) -> tuple[str, list[int]]:
        """The prompt text and its tokens: the conversation through the chat template
        (with the thinking setting's variables), or a base model's plain text."""
        if self.formatter is None:  # a base model: plain completion of the text
            text = req["text"]
            return text, self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        messages: list[Any] = req["messages"]
        extra = template_kwargs(req["thinking"], self.thinking_format)
        try:
            result = self.formatter(messages=messages, **extra)
        except Exception:
            if messages[0]["role"] != "system":
                raise
            # Templates without a system role: fold it into the first user turn.
            system, first, *rest = messages
            folded: Any = {"role": "user", "content": f"{system['content']}\n\n{first['content']}"}
            result = self.formatter(messages=[folded, *rest], **extra)
        tokens = self.llm.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        return result.prompt, tokens

    def generate(self, req: dict[str, Any], conn: Connection, cancel: MpEvent) -> None:
        lc = self.llama_cpp
        llm = self.llm
        figures: dict[str, Any] = {
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "flash_attn": self.flash_attn,
            "kv_cache_bytes": self.kv_bytes,
        }
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
        max_tokens = min(int(req["max_tokens"]), self.n_ctx - len(tokens))
        seed = req.get("seed")
        llm.set_seed(int(seed) if seed is not None else lc.LLAMA_DEFAULT_SEED)
        # Every request starts from an empty cache, so the prompt figures always measure
        # the whole prompt and a fixed seed reproduces the same text.
        llm.reset()
        mem = lc.llama_get_memory(llm.ctx)
        if mem is not None:
            lc.llama_memory_clear(mem, True)
        lc.llama_perf_context_reset(llm.ctx)
        grammar = None
        if req.get("grammar"):
            grammar = lc.LlamaGrammar.from_string(req["grammar"], verbose=False)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        splitter = ReasoningSplitter(fmt, in_reasoning=state == "open")
        out = _Sender(conn)
        n_gen = n_reasoning = 0
        finish = "length"
        vocab = self.vocab
        piece_of = self.piece
        for tok in llm.generate(
            tokens,
            top_k=int(req["top_k"]),
            top_p=float(req["top_p"]),
            min_p=0.05,
            temp=float(req["temperature"]),
            repeat_penalty=1.0,
            reset=True,
            grammar=grammar,
        ):
            if lc.llama_vocab_is_eog(vocab, tok):
                finish = "stop"
                break
            n_gen += 1
            was_inside = splitter.in_block
            text = decoder.decode(piece_of(tok))
            if text:
                out.send(splitter.feed(text))
            # A token of thinking: inside a block, or the one that closes it.
            n_reasoning += was_inside or splitter.in_block
            if cancel.is_set():
                finish = "cancelled"
                break
            if n_gen >= max_tokens:
                finish = "length"
                break
        tail = decoder.decode(b"", final=True)
        out.send([*(splitter.feed(tail) if tail else []), *splitter.finish()])
        out.flush()
        perf = lc.llama_perf_context(llm.ctx)
        figures.update(
            finish_reason=finish,
            completion_tokens=n_gen,
            reasoning_tokens=n_reasoning,
            reasoning_unterminated=splitter.result().unterminated,
            n_p_eval=perf.n_p_eval,
            t_p_eval_ms=perf.t_p_eval_ms,
            n_eval=perf.n_eval,
            t_eval_ms=perf.t_eval_ms,
            seed=int(seed) if seed is not None else None,
            peak_rss_bytes=_peak_rss(),
        )
        conn.send(("done", figures))


class _Sender:
    """Sends pieces to the parent: the first visible piece and the first answer piece go
    at once (the parent times them), later ones are batched so that each token does not
    wake the parent (and stall llama.cpp's threads); a change of kind, or a moved piece,
    starts a new message."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.kind = ""
        self.parts: list[str] = []
        self.moved = False
        self.last = 0.0
        self.timed: set[str] = set()  # kinds whose first visible piece went out

    def send(self, pieces: list[Piece]) -> None:
        for p in pieces:
            if p.kind != self.kind or p.moved:
                self.flush()
                self.kind, self.moved = p.kind, p.moved
            self.parts.append(p.text)
        now = time.perf_counter()
        visible = bool("".join(self.parts).strip())
        if self.parts and (
            (visible and self.kind not in self.timed) or now - self.last >= _SEND_INTERVAL_S
        ):
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        text = "".join(self.parts)
        self.conn.send(("token", text, self.kind, self.moved))
        if text.strip():
            self.timed.add(self.kind)
        self.parts, self.moved, self.last = [], False, time.perf_counter()


def main(conn: Connection, cancel: MpEvent, log_path: str) -> None:
    """Worker entry point (the target of the spawned process)."""
    _redirect_stderr(log_path)
    model: _Model | None = None
    while True:
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
                model = _Model(msg[1], dict(msg[2]), log_path)
                conn.send(("loaded", model.info()))
            elif kind == "generate":
                if model is None:
                    conn.send(("error", "no model loaded", {}))
                else:
                    model.generate(msg[1], conn, cancel)
        except Exception as e:  # one line back to the parent; the worker lives on
            sys.stderr.flush()
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            with contextlib.suppress(OSError):
                conn.send(("error", detail, {}))
