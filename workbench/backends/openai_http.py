"""OpenAI-compatible servers: llama-server, llama-cpp-python's server, vLLM, SGLang, Ollama.

:class:`OpenAIBackend` streams ``POST {base_url}/chat/completions`` (server-sent events)
with the standard library's ``http.client``, so it needs no extra package. It measures
what the client sees (time to first token, total time, tokens per second of wall time)
and records what the server reports when it does: llama-server's ``timings`` block,
Ollama's ``*_duration`` counters, the ``usage`` block (asked for with
``stream_options.include_usage``).

The server's load settings are its own, not the client's: a row's ``n_ctx`` is what the
server reports (llama-server's ``GET /props``, vLLM's ``max_model_len`` in
``GET /v1/models``) or empty, and ``extra["server_settings"]["source"]`` says where it
came from (None: the server reports nothing, as llama-cpp-python's server). Threads, GPU
layers and flash attention are never known for a served model and stay empty.

Every failure becomes one :class:`~workbench.backends.base.Failed` with a one-line
message (connection refused, timed out, HTTP 4xx/5xx with the server's own message, a
stream that broke mid-answer), so a comparison goes on with its other models. A stream
that stops before the server said why it finished (``[DONE]`` without a
``finish_reason``, as llama-cpp-python's server does to a request a newer one
interrupts, or a connection a proxy dropped) ends with ``finish_reason="interrupted"``
and an error: its text is partial. The API key is read from
an environment variable at request time (``api_key_env``, default ``WORKBENCH_API_KEY``)
and is never stored in a result row.

Thinking is split from the answer by :class:`workbench.thinking.ReasoningSplitter`,
whichever form the server sends it in: a ``reasoning_content`` / ``reasoning`` field of
each delta (a server with a reasoning parser), or inline markers in the content (a server
without one). The markers are the served model's family's (:func:`format_for` on its
name), ``<think>...</think>`` when the name says nothing. A thinking setting goes to the
server as ``chat_template_kwargs`` (``enable_thinking``); reasoning token counts come from
``usage.completion_tokens_details.reasoning_tokens`` when the server sends it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from workbench.backends.base import (
    BackendError,
    Completion,
    Done,
    Event,
    Failed,
    FinishReason,
    GenerationConfig,
    Prompt,
    Token,
    resolve_sampling,
)
from workbench.chat import request_messages
from workbench.thinking import (
    THINK_TAGS,
    Piece,
    ReasoningSplitter,
    ThinkingFormat,
    delta_reasoning,
    format_for,
    request_fields,
    setting,
)

DEFAULT_API_KEY_ENV = "WORKBENCH_API_KEY"
_FINISH: dict[str, FinishReason] = {"stop": "stop", "eos": "stop", "length": "length"}


class _StreamBroke(BackendError):
    """The server ended the stream early (internal: becomes the row's error)."""

    finish: FinishReason = "error"


class _StreamCut(_StreamBroke):
    """The stream stopped before the server said why the answer finished."""

    finish: FinishReason = "interrupted"


@dataclass(frozen=True)
class ServerReport:
    """What a server says about itself, before any prompt is sent."""

    base_url: str
    """The API root that was asked."""
    error: str | None = None
    """One line when the server could not be reached at all; None when it answered."""
    models: tuple[str, ...] | None = None
    """Model ids from ``GET {base_url}/models``; None when that list could not be read."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Load settings the server reported (``n_ctx``, ``total_slots``, ``build_info``...)."""
    source: str | None = None
    """Where ``settings`` came from (``GET /props``, ``GET /v1/models``); None: nowhere."""

    @property
    def reachable(self) -> bool:
        return self.error is None


class OpenAIBackend:
    """A model served by an OpenAI-compatible HTTP server.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8080/v1``.
        served_model: the model name the server expects in requests.
        name: display name (defaults to ``served_model``).
        api_key_env: environment variable holding the API key (default
            ``WORKBENCH_API_KEY``; no Authorization header when that is unset).
        connect_timeout_s: seconds to wait for the TCP connection.
        read_timeout_s: longest wait for the next piece of the stream (a server may load
            the model on the first request, so this is generous).
        sampling_extras: also send ``top_k``, ``min_p`` and ``repeat_penalty`` (accepted
            by llama.cpp's servers, vLLM, SGLang and Ollama; set False for a strict server).
            They match the in-process backend's sampler settings; see
            :meth:`request_body` for what that does not match.
    """

    kind = "openai-http"
    loaded = False
    """The model lives in the server's memory, never in this process's budget."""

    def __init__(
        self,
        base_url: str,
        served_model: str,
        name: str | None = None,
        api_key_env: str | None = None,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 300.0,
        sampling_extras: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.served_model = served_model
        self.name = name or served_model
        self.api_key_env = api_key_env
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.sampling_extras = sampling_extras
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._report: ServerReport | None = None
        # Inline thinking markers: the family's, else the most common form (Qwen, GLM,
        # DeepSeek, Ollama): a "<think>" counts only before any answer text, so an answer
        # that merely mentions it is left alone.
        self.thinking_format: ThinkingFormat = (
            format_for(name=served_model) or format_for(name=self.name) or THINK_TAGS
        )

    # ------------------------------------------------------------------ request

    def _api_key(self) -> str | None:
        """The key from the environment; raises when an explicitly named variable is unset."""
        var = self.api_key_env or DEFAULT_API_KEY_ENV
        key = os.environ.get(var)
        if not key and self.api_key_env:
            raise _StreamBroke(f"environment variable {var} (the API key) is not set")
        return key or None

    def request_body(self, prompt: Prompt, config: GenerationConfig) -> dict[str, Any]:
        """The JSON body sent for ``prompt``.

        Matched with the in-process backend: the messages, ``max_tokens``, the sampler
        settings (temperature, top_p, seed and, with ``sampling_extras``, top_k, min_p and
        repeat_penalty). Not matched, because they are the server's own: its context size,
        batch sizes, threads, KV-cache types, GPU offload, flash attention and how it
        applies the chat template. Any of these can change even a greedy answer, so a
        served model's text may differ from the same file run in-process.
        """
        messages = request_messages(prompt, config.system_prompt)
        sampling = resolve_sampling(config)  # a served model's file is not ours to read
        body: dict[str, Any] = {
            "model": self.served_model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": config.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if config.seed is not None:
            body["seed"] = config.seed
        if self.sampling_extras:
            # The in-process backend samples with these; servers have other defaults.
            body.update(
                top_k=sampling.top_k,
                min_p=sampling.min_p,
                repeat_penalty=sampling.repeat_penalty,
            )
        # Only when asked: a strict server may refuse a field it does not know.
        body.update(request_fields(setting(config.thinking), self.thinking_format))
        if config.grammar:
            body["grammar"] = config.grammar  # llama.cpp's servers: GBNF-constrained output
        return body

    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.connect_timeout_s)
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(self.read_timeout_s)
        return conn

    def _connect(self) -> http.client.HTTPConnection:
        """A connection, or _StreamBroke saying in one line why there is none."""
        where = f"{self._host}:{self._port}"
        try:
            return self._connection()
        except ConnectionRefusedError:
            raise _StreamBroke(
                f"cannot connect to {self.base_url}: connection refused (is the server running?)"
            ) from None
        except TimeoutError:
            raise _StreamBroke(
                f"cannot connect to {where}: timed out after {self.connect_timeout_s:g} s"
            ) from None
        except OSError as e:
            raise _StreamBroke(f"cannot connect to {where}: {e.strerror or e}") from None

    def _headers(self, **more: str) -> dict[str, str]:
        headers = dict(more)
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _open(
        self, body: dict[str, Any]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, socket.socket]:
        headers = self._headers(**{"Content-Type": "application/json",
                                   "Accept": "text/event-stream"})  # fmt: skip
        where = f"{self._host}:{self._port}"
        conn = self._connect()
        sock = conn.sock  # the response may outlive conn.sock (HTTP/1.0: conn closes early)
        assert sock is not None
        try:
            conn.request(
                "POST", f"{self._prefix}/chat/completions", json.dumps(body).encode(), headers
            )
            resp = conn.getresponse()
        except TimeoutError:
            conn.close()
            raise _StreamBroke(f"{where} sent no answer within {self.read_timeout_s:g} s") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _StreamBroke(f"{where} dropped the request: {type(e).__name__}") from None
        if resp.status >= 400:
            detail = _error_detail(resp)
            conn.close()
            raise _StreamBroke(f"{where} answered HTTP {resp.status} {resp.reason}: {detail}")
        return conn, resp, sock

    # ------------------------------------------------------------------ streaming

    def stream(
        self,
        prompt: Prompt,
        config: GenerationConfig,
        cancel: threading.Event | None = None,
    ) -> Iterator[Event]:
        """Stream one response. Never raises for server failures: they end in Failed."""
        comp = Completion(prompt_mode="chat")  # a chat API: the server applies the template
        comp.extra.update(base_url=self.base_url, served_model=self.served_model)
        t0 = time.perf_counter()
        state = _State(t0, ReasoningSplitter(self.thinking_format))
        try:
            body = self.request_body(prompt, config)
            conn, resp, sock = self._open(body)
        except _StreamBroke as e:
            comp.finish_reason, comp.error = "error", str(e)
            comp.total_s = time.perf_counter() - t0
            yield Failed(str(e), comp)
            return
        stop_watch = threading.Event()
        cancelled = threading.Event()
        if cancel is not None:
            threading.Thread(
                target=_watch_cancel, args=(cancel, stop_watch, cancelled, sock), daemon=True
            ).start()
        try:
            for piece in self._events(resp, state):
                yield _token(piece)
            if state.finish is None and state.done:
                raise _StreamCut(
                    f"the stream ended after {state.chunks} chunks without a finish_reason: "
                    "the answer was cut off (the server interrupted it)"
                )
            if state.finish is None:
                raise _StreamCut(
                    f"the stream broke after {state.chunks} chunks: the server closed the "
                    "connection mid-answer"
                )
        except _StreamBroke as e:
            if cancelled.is_set():
                self._fill(comp, state, time.perf_counter(), "cancelled")
                yield Done(comp)
                return
            self._fill(comp, state, time.perf_counter(), e.finish)
            comp.error = str(e)
            self._server_figures(comp)
            yield Failed(str(e), comp)
            return
        finally:
            stop_watch.set()
            resp.close()
            conn.close()
        for piece in state.splitter.finish():  # what was held back (a partial marker)
            yield _token(piece)
        finish = "cancelled" if cancelled.is_set() else _FINISH.get(state.finish or "", "stop")
        self._fill(comp, state, time.perf_counter(), finish)
        self._server_figures(comp)
        yield Done(comp)

    def _server_figures(self, comp: Completion) -> None:
        """The server's own load settings, asked once after its first answer (so a server
        that is down costs no extra connection and no request's timing includes it)."""
        if self._report is None:
            report = self.probe()
            if not report.reachable:
                return
            self._report = report
        comp.extra["server_settings"] = {"source": self._report.source, **self._report.settings}
        n_ctx = self._report.settings.get("n_ctx")
        comp.n_ctx = n_ctx if isinstance(n_ctx, int) else None

    def _events(self, resp: http.client.HTTPResponse, st: _State) -> Iterator[Piece]:
        """Thinking and answer pieces from the SSE stream; fills ``st`` as figures arrive."""
        ctype = resp.getheader("Content-Type", "")
        if "text/event-stream" not in ctype:
            # A server that ignored stream=true: one JSON document.
            doc = self._json(_read_all(resp))
            choice = (doc.get("choices") or [{}])[0]
            msg = choice.get("message") or {}
            st.absorb(doc)
            # A whole document is a whole answer, even without a finish_reason.
            st.finish = choice.get("finish_reason") or "stop"
            yield from st.feed(msg)
            st.done = True
            return
        while True:
            try:
                raw = resp.readline()
            except TimeoutError:
                raise _StreamBroke(
                    f"no data from the server for {self.read_timeout_s:g} s (timed out)"
                ) from None
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise _StreamCut(
                    f"the stream broke after {st.chunks} chunks: {type(e).__name__}"
                ) from None
            if not raw:
                return
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue  # event names, comments (keep-alive pings), blank separators
            data = line[5:].strip()
            if data == "[DONE]":
                st.done = True
                return
            doc = self._json(data)
            if "error" in doc:
                err = doc["error"]
                text = err.get("message", err) if isinstance(err, dict) else err
                raise _StreamBroke(f"the server reported an error mid-stream: {text}")
            st.chunks += 1
            st.absorb(doc)
            for choice in doc.get("choices") or []:
                yield from st.feed(choice.get("delta") or {})
                if choice.get("finish_reason"):
                    st.finish = choice["finish_reason"]

    @staticmethod
    def _json(data: str) -> dict[str, Any]:
        try:
            doc = json.loads(data)
        except ValueError:
            raise _StreamBroke(
                f"the server sent something that is not JSON: {data[:80]!r}"
            ) from None
        if not isinstance(doc, dict):
            raise _StreamBroke(f"the server sent unexpected JSON: {data[:80]!r}")
        return doc

    def _fill(self, comp: Completion, st: _State, t_end: float, finish: FinishReason) -> None:
        st.splitter.finish()
        split = st.splitter.result()
        comp.text, comp.reasoning = split.answer, split.reasoning
        comp.finish_reason = finish
        comp.total_s = t_end - st.t0
        t_first = split.t_first
        comp.ttft_s = t_first - st.t0 if t_first is not None else None
        if split.t_first_answer is not None:
            comp.ttfa_s = split.t_first_answer - st.t0
        if split.unterminated:
            comp.extra["reasoning_unterminated"] = True  # cut inside the thinking
        usage = st.usage
        timings = st.timings
        comp.prompt_tokens = usage.get("prompt_tokens")
        comp.completion_tokens = usage.get("completion_tokens")
        if comp.prompt_tokens is None and timings.get("prompt_n") is not None:
            comp.prompt_tokens = int(timings["prompt_n"]) + int(timings.get("cache_n") or 0)
        if comp.completion_tokens is None and timings.get("predicted_n") is not None:
            comp.completion_tokens = int(timings["predicted_n"])
        ollama = st.ollama
        if comp.prompt_tokens is None and "prompt_eval_count" in ollama:
            comp.prompt_tokens = int(ollama["prompt_eval_count"])
        if comp.completion_tokens is None and "eval_count" in ollama:
            comp.completion_tokens = int(ollama["eval_count"])
        if comp.completion_tokens is None and st.content_chunks and finish != "error":
            # Servers that report no counts stream one token per chunk.
            comp.completion_tokens = st.content_chunks
            comp.extra["completion_tokens_estimated"] = True
        details = usage.get("completion_tokens_details")
        reported = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if isinstance(reported, int):
            comp.reasoning_tokens = reported
        elif split.reasoning:
            # One token per chunk again (markers and the chunk that ends a block count too).
            comp.reasoning_tokens = split.reasoning_chunks
            comp.extra["reasoning_tokens_estimated"] = True
        else:
            comp.reasoning_tokens = 0
        # Server-side rates, from the server's own clocks.
        if timings.get("prompt_n") and timings.get("prompt_ms"):
            comp.prompt_tps = timings["prompt_n"] / (timings["prompt_ms"] / 1000)
        if timings.get("predicted_n") and timings.get("predicted_ms"):
            comp.gen_tps = timings["predicted_n"] / (timings["predicted_ms"] / 1000)
        if ollama.get("prompt_eval_count") and ollama.get("prompt_eval_duration"):
            comp.prompt_tps = ollama["prompt_eval_count"] / (ollama["prompt_eval_duration"] / 1e9)
        if ollama.get("eval_count") and ollama.get("eval_duration"):
            comp.gen_tps = ollama["eval_count"] / (ollama["eval_duration"] / 1e9)
        if ollama.get("load_duration") is not None:
            comp.load_s = ollama["load_duration"] / 1e9
        n = comp.completion_tokens or 0
        if t_first is not None and n > 1 and t_end > t_first:
            comp.gen_tps_wall = (n - 1) / (t_end - t_first)
        if timings:
            comp.extra["server_timings"] = timings
        if ollama:
            comp.extra["server_durations"] = ollama
        if usage:
            comp.extra["usage"] = usage
        if st.system_fingerprint:
            comp.extra["system_fingerprint"] = st.system_fingerprint

    def served_models(self) -> list[str]:
        """Model ids the server lists at ``GET {base_url}/models`` (empty on failure)."""
        return list(self.probe().models or ())

    def probe(self) -> ServerReport:
        """Ask the server what it serves and how it was loaded: ``GET {base_url}/models``
        (model ids; vLLM adds ``max_model_len``), then llama-server's ``GET /props`` at the
        server root (``default_generation_settings.n_ctx``, slots, build). Never raises.

        The probe is a request too: llama-cpp-python's server interrupts a stream it is
        serving to answer it, so this runs before the first prompt and after an answer,
        never during one."""
        try:
            status, doc = self._get(f"{self._prefix}/models")
        except _StreamBroke as e:
            return ServerReport(self.base_url, error=str(e))
        models: tuple[str, ...] | None = None
        settings: dict[str, Any] = {}
        source = None
        data = doc.get("data") if status == 200 and isinstance(doc, dict) else None
        if isinstance(data, list):
            entries = [m for m in data if isinstance(m, dict)]
            models = tuple(str(m.get("id")) for m in entries)
            mine = [m for m in entries if m.get("id") == self.served_model] or entries[:1]
            if mine and isinstance(mine[0].get("max_model_len"), int):
                settings["n_ctx"] = mine[0]["max_model_len"]
                source = "GET /v1/models"
        root = self._prefix.removesuffix("/v1")
        try:
            status, props = self._get(f"{root}/props")
        except _StreamBroke:
            status, props = 0, None
        if status == 200 and isinstance(props, dict):
            dgs = props.get("default_generation_settings")
            n_ctx = dgs.get("n_ctx") if isinstance(dgs, dict) else None
            if isinstance(n_ctx, int):
                settings["n_ctx"] = n_ctx
                source = "GET /props"
            for key in ("total_slots", "build_info", "model_path"):
                if isinstance(props.get(key), int | str):
                    settings[key] = props[key]
        return ServerReport(self.base_url, None, models, settings, source)

    def _get(self, path: str) -> tuple[int, Any]:
        """``GET path``: (HTTP status, the JSON body or None); status 0 when the answer
        broke off. Raises _StreamBroke when the server cannot be reached."""
        headers = self._headers()
        conn = self._connect()
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, None

    def estimated_bytes(self, config: GenerationConfig) -> int:
        """0: a served model takes none of this machine's memory budget."""
        return 0

    def close(self) -> None:
        """Nothing to release: each request opens and closes its own connection."""


class _State:
    """What one stream has produced so far."""

    def __init__(self, t0: float, splitter: ReasoningSplitter) -> None:
        self.t0 = t0
        self.splitter = splitter
        """Splits thinking from answer and times the first token of each."""
        self.chunks = 0
        self.content_chunks = 0
        self.finish: str | None = None
        self.done = False
        self.usage: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}
        self.ollama: dict[str, Any] = {}
        self.system_fingerprint: str | None = None

    def feed(self, delta: dict[str, Any]) -> list[Piece]:
        """One delta (or a whole message): its content and its reasoning field."""
        content = delta.get("content")
        content = content if isinstance(content, str) else ""
        reasoning = delta_reasoning(delta)
        if not (content or reasoning):
            return []
        self.content_chunks += 1
        return self.splitter.feed(content, reasoning=reasoning)

    def absorb(self, doc: dict[str, Any]) -> None:
        if isinstance(doc.get("usage"), dict):
            self.usage = doc["usage"]
        if isinstance(doc.get("timings"), dict):
            self.timings = doc["timings"]
        for k in ("prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration",
                  "load_duration", "total_duration"):  # fmt: skip
            if isinstance(doc.get(k), int | float):
                self.ollama[k] = doc[k]
        if doc.get("system_fingerprint"):
            self.system_fingerprint = str(doc["system_fingerprint"])


def _token(piece: Piece) -> Token:
    return Token(piece.text, reasoning=piece.kind == "reasoning", moved=piece.moved)


def _watch_cancel(
    cancel: threading.Event,
    stop: threading.Event,
    cancelled: threading.Event,
    sock: socket.socket,
) -> None:
    """Close the socket when ``cancel`` is set, so a blocked read returns at once."""
    while not stop.is_set():
        if cancel.wait(0.05):
            if stop.is_set():
                return
            cancelled.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            return


def _read_all(resp: http.client.HTTPResponse) -> str:
    try:
        return resp.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        raise _StreamBroke(f"the answer broke off: {type(e).__name__}") from None


def _error_detail(resp: http.client.HTTPResponse) -> str:
    """The server's own error message, on one line."""
    try:
        raw = resp.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return "(no body)"
    try:
        doc = json.loads(raw)
    except ValueError:
        return " ".join(raw.split())[:200] or "(no body)"
    err = doc.get("error", doc.get("detail", doc)) if isinstance(doc, dict) else doc
    if isinstance(err, dict):
        err = err.get("message", err)
    if isinstance(err, list):  # FastAPI validation errors
        err = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in err)
    return " ".join(str(err).split())[:200]
