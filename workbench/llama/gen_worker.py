"""The generation worker: one child process, one loaded model (child side of
:class:`workbench.backends.llama_cpp.LlamaCppBackend`).

Started as ``python -m workbench.llama.gen_worker FD`` (see :mod:`workbench.llama.process`).
Messages are plain tuples:

- on start -> ``("ready", info)`` once llama_cpp is imported;
- ``("load", path, params)`` -> ``("loaded", info)`` | ``("error", message)``;
- ``("generate", request)`` -> ``("token", text)``* then ``("done", figures)`` |
  ``("error", message, figures)``; the first ``token`` goes out the moment the first token
  is produced (its text may be whitespace, or empty while a UTF-8 character is
  incomplete), so the parent times it;
- ``("cancel",)`` during a generation stops it (one arriving later is ignored);
- ``("close",)`` -> the process exits.
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

_SEND_INTERVAL_S = 0.015
"""Batch streamed text to at most one message per 15 ms (well above any UI's redraw rate)."""


def _piece_fn(lc: Any, vocab: Any) -> Callable[[int], bytes]:
    """token id -> bytes of its text. llama-cpp-python's LlamaModel.token_to_piece returns
    its whole 32-byte buffer (NUL padding included) and truncates longer pieces; this
    uses the length llama.cpp returns and grows the buffer when asked to. Cached per id."""
    cache: dict[int, bytes] = {}
    buf = ctypes.create_string_buffer(64)

    def piece(tok: int) -> bytes:
        nonlocal buf
        got = cache.get(tok)
        if got is not None:
            return got
        n = lc.llama_token_to_piece(vocab, tok, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(vocab, tok, buf, len(buf), 0, False)
        out = buf.raw[: max(n, 0)]
        cache[tok] = out
        return out

    return piece


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
        if template:
            model = self.llm._model
            eos_id, bos_id = model.token_eos(), model.token_bos()
            eos = model.token_get_text(eos_id) if eos_id >= 0 else ""
            bos = model.token_get_text(bos_id) if bos_id >= 0 else ""
            self.formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        self.vocab = lc.llama_model_get_vocab(self.llm._model.model)
        self.piece = _piece_fn(lc, self.vocab)
        # llama.cpp may round the context up (to 256); llama-cpp-python's token buffer
        # keeps the requested size, so the smaller of the two is the real limit.
        self.n_ctx = min(self.llm.n_ctx(), len(self.llm.input_ids))
        self.n_threads = self.llm.n_threads
        self.memory = lc.llama_get_memory(self.llm.ctx)

    def info(self) -> dict[str, Any]:
        return {
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "chat": self.formatter is not None,
            "peak_rss_bytes": _peak_rss(),
        }

    def prompt_tokens(self, req: dict[str, Any]) -> list[int]:
        system, text = req.get("system_prompt"), req["prompt"]
        if self.formatter is not None:
            messages: list[Any] = []
            if system:
                messages.append({"role": "system", "content": system})
            messages.append({"role": "user", "content": text})
            try:
                result = self.formatter(messages=messages)
            except Exception:
                if not system:
                    raise
                # Templates without a system role (Gemma's): fold it into the user turn.
                messages = [{"role": "user", "content": f"{system}\n\n{text}"}]
                result = self.formatter(messages=messages)
            return self.llm.tokenize(
                result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
            )
        # Base model: plain completion of the text.
        full = f"{system}\n\n{text}" if system else text
        return self.llm.tokenize(full.encode("utf-8"), add_bos=True, special=False)

    def generate(self, req: dict[str, Any], conn: Connection, inbox: _Inbox) -> None:
        lc, llm = self.lc, self.llm
        figures: dict[str, Any] = {"n_ctx": self.n_ctx, "n_threads": self.n_threads}
        tokens = self.prompt_tokens(req)
        figures["prompt_tokens"] = len(tokens)
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
        llm.set_seed(int(req["seed"]))
        # Every request starts from an empty cache, so the prompt figures measure the
        # whole prompt and a seed reproduces the same text. Only the cells are cleared
        # (data=False, as llama-bench does): zeroing the buffers costs ~0.1 s per GiB of
        # cache, counted in ttft_s, and llm.reset() zeroes them for hybrid models.
        llm.n_tokens = 0
        if self.memory is not None:
            lc.llama_memory_clear(self.memory, False)
        lc.llama_perf_context_reset(llm.ctx)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending: list[str] = []
        last_send = 0.0
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
        ):
            produced += 1
            if is_eog(vocab, tok):
                finish = "stop"
                break
            n_gen += 1
            piece = decoder.decode(piece_of(tok))
            if piece:
                pending.append(piece)
            now = time.perf_counter()
            # The first token goes out at once (the parent times it); after that pieces
            # are batched so that each token does not wake the parent (and stall
            # llama.cpp's threads).
            if n_gen == 1 or (pending and now - last_send >= _SEND_INTERVAL_S):
                conn.send(("token", "".join(pending)))
                pending.clear()
                last_send = now
            if inbox.stop_requested():
                finish = "cancelled"
                break
            if n_gen >= max_tokens:
                break
        pending.append(decoder.decode(b"", final=True))
        if "".join(pending):
            conn.send(("token", "".join(pending)))
        perf = lc.llama_perf_context(llm.ctx)
        figures.update(
            finish_reason=finish,
            completion_tokens=n_gen,
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
