"""The child side of :mod:`workbench.backends.llama_cpp`: one process, one loaded model.

Runs in a process started with the ``spawn`` method. It receives requests on a pipe and
answers with plain tuples:

- ``("load", path, params)`` -> ``("loaded", info)`` | ``("error", message)``
- ``("generate", request)`` -> ``("token", text)``* then ``("done", figures)`` |
  ``("error", message, figures)``
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


def _piece_fn(lc: Any, vocab: Any) -> Any:
    """token id -> bytes of its text. llama-cpp-python's LlamaModel.token_to_piece returns
    its whole 32-byte buffer (NUL padding included) and truncates longer pieces; this
    uses the length llama.cpp returns and grows the buffer when asked to. Cached per id."""
    import ctypes

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
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self.llm._model
            eos_id, bos_id = model.token_eos(), model.token_bos()
            eos = model.token_get_text(eos_id) if eos_id >= 0 else ""
            bos = model.token_get_text(bos_id) if bos_id >= 0 else ""
            self.formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        self.piece = _piece_fn(llama_cpp, self.vocab)
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

    def generate(self, req: dict[str, Any], conn: Connection, cancel: MpEvent) -> None:
        lc = self.llama_cpp
        llm = self.llm
        figures: dict[str, Any] = {
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "flash_attn": self.flash_attn,
            "kv_cache_bytes": self.kv_bytes,
        }
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
        seed = req.get("seed")
        llm.set_seed(int(seed) if seed is not None else lc.LLAMA_DEFAULT_SEED)
        # Every request starts from an empty cache, so the prompt figures always measure
        # the whole prompt and a fixed seed reproduces the same text.
        llm.reset()
        mem = lc.llama_get_memory(llm.ctx)
        if mem is not None:
            lc.llama_memory_clear(mem, True)
        lc.llama_perf_context_reset(llm.ctx)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending: list[str] = []
        visible_sent = False
        last_send = 0.0
        n_gen = 0
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
        ):
            if lc.llama_vocab_is_eog(vocab, tok):
                finish = "stop"
                break
            n_gen += 1
            piece = decoder.decode(piece_of(tok))
            if piece:
                pending.append(piece)
                now = time.perf_counter()
                # Until visible text has gone out, every piece goes at once (the parent
                # times the first token); after that, pieces are batched so that each
                # token does not wake the parent (and stall llama.cpp's threads).
                if not visible_sent or now - last_send >= _SEND_INTERVAL_S:
                    text = "".join(pending)
                    pending.clear()
                    conn.send(("token", text))
                    last_send = now
                    visible_sent = visible_sent or bool(text.strip())
            if cancel.is_set():
                finish = "cancelled"
                break
            if n_gen >= max_tokens:
                finish = "length"
                break
        pending.append(decoder.decode(b"", final=True))
        if "".join(pending):
            conn.send(("token", "".join(pending)))
        perf = lc.llama_perf_context(llm.ctx)
        figures.update(
            finish_reason=finish,
            completion_tokens=n_gen,
            n_p_eval=perf.n_p_eval,
            t_p_eval_ms=perf.t_p_eval_ms,
            n_eval=perf.n_eval,
            t_eval_ms=perf.t_eval_ms,
            seed=int(seed) if seed is not None else None,
            peak_rss_bytes=_peak_rss(),
        )
        conn.send(("done", figures))


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
