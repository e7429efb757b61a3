"""Scripted streams of each reasoning form a real OpenAI-compatible engine sends.

Scripts for :class:`tests.helpers.sse_server.ScriptedServer` (reusing its SSE writers):

- ``reasoning_content`` deltas, then ``content`` (llama-server ``--reasoning-format
  deepseek``/``auto``, SGLang, vLLM before 0.11);
- ``reasoning`` deltas, then ``content`` (vLLM 0.11+, Ollama's ``/v1`` API);
- inline ``<think>...</think>`` in ``content`` (Ollama, any server without a parser), cut
  into chunks anywhere, markers included;
- the same with the opening marker missing (the prompt opened the block, the server does
  not parse), and Gemma 4's inline thought channel.

:func:`read_deltas` is a minimal SSE client that returns each chunk's ``delta`` with its
arrival time, so a test can feed a :class:`workbench.thinking.ReasoningSplitter` exactly as
a backend would.
"""

from __future__ import annotations

import http.client
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers.sse_server import Script, chunk, sse, sse_headers


@dataclass(frozen=True)
class ReasoningStream:
    """One scripted stream and what a correct client makes of it."""

    name: str
    """Short id (used as the pytest id)."""
    deltas: tuple[dict[str, str], ...]
    """The ``delta`` objects sent, in order."""
    reasoning: str
    """The thinking text a client should recover."""
    answer: str
    """The answer text a client should recover."""
    prompt_opened: bool = False
    """The prompt left a reasoning block open (no opening marker is streamed)."""
    inline_format: str = "think-tags"
    """Name of the inline format (:data:`workbench.thinking.FORMATS`) for this model."""


def cut(text: str, at: Sequence[int]) -> list[str]:
    """``text`` cut at the given offsets (empty pieces dropped)."""
    bounds = [0, *sorted(at), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if text[a:b]]


_THINK = "<think>\nThe user wants 2 + 2.\nThat is 4.\n</think>\n\nThe answer is 4."
_GEMMA = "<|channel>thought\nAdd the numbers.<channel|>The answer is 4."

REASONING_STREAMS: tuple[ReasoningStream, ...] = (
    ReasoningStream(
        "reasoning_content",
        (
            *({"reasoning_content": p} for p in ("The user wants", " 2 + 2.", "\nThat is 4.")),
            *({"content": p} for p in ("\n\n", "The answer", " is 4.")),
        ),
        "The user wants 2 + 2.\nThat is 4.",
        "The answer is 4.",
    ),
    ReasoningStream(
        "reasoning",
        (
            *({"reasoning": p} for p in ("The user wants", " 2 + 2.", "\nThat is 4.")),
            *({"content": p} for p in ("The answer", " is 4.")),
        ),
        "The user wants 2 + 2.\nThat is 4.",
        "The answer is 4.",
    ),
    ReasoningStream(
        "inline_think",
        tuple({"content": p} for p in ("<think>", "\nThe user wants 2 + 2.\nThat is 4.\n",
                                      "</think>", "\n\nThe answer is 4.")),
        "The user wants 2 + 2.\nThat is 4.",
        "The answer is 4.",
    ),
    ReasoningStream(
        # Both markers split mid-way, and the answer's first letter glued to the close.
        "inline_think_split_markers",
        tuple({"content": p} for p in cut(_THINK, (3, 9, 20, 41, 43, 47, 50, 52))),
        "The user wants 2 + 2.\nThat is 4.",
        "The answer is 4.",
    ),
    ReasoningStream(
        "inline_think_prompt_opened",
        tuple({"content": p} for p in cut(_THINK[len("<think>"):], (5, 33, 36))),
        "The user wants 2 + 2.\nThat is 4.",
        "The answer is 4.",
        prompt_opened=True,
    ),
    ReasoningStream(
        "inline_gemma4_channel",
        tuple({"content": p} for p in cut(_GEMMA, (4, 12, 17, 30, 35, 40))),
        "Add the numbers.",
        "The answer is 4.",
        inline_format="gemma4-channel",
    ),
)  # fmt: skip
"""Every form, each with the same thinking and answer."""


def script_for(stream: ReasoningStream, *, gap_s: float = 0.002) -> Script:
    """A server script that streams ``stream``'s deltas, ``gap_s`` apart, then usage."""

    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk(delta={"role": "assistant"}))
        for delta in stream.deltas:
            time.sleep(gap_s)
            sse(h, chunk(delta=dict(delta)))
        sse(h, chunk(finish="stop"))
        n = len(stream.deltas)
        sse(h, {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": n}})
        sse(h, "[DONE]")

    return script


@dataclass(frozen=True)
class Received:
    """One chunk's delta as a client read it."""

    delta: dict[str, Any]
    """The chunk's ``choices[0].delta``."""
    t: float
    """``time.perf_counter()`` when its line was read."""


def read_deltas(base_url: str, body: dict[str, Any], timeout_s: float = 10.0) -> list[Received]:
    """POST ``body`` to ``{base_url}/chat/completions`` and read the SSE stream's deltas."""
    host, _, rest = base_url.removeprefix("http://").partition("/")
    hostname, _, port = host.partition(":")
    conn = http.client.HTTPConnection(hostname, int(port), timeout=timeout_s)
    try:
        conn.request(
            "POST",
            f"/{rest}/chat/completions",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Accept": "text/event-stream"},
        )
        resp = conn.getresponse()
        out: list[Received] = []
        while raw := resp.readline():
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            doc = json.loads(line[5:])
            for choice in doc.get("choices") or []:
                out.append(Received(choice.get("delta") or {}, time.perf_counter()))
        return out
    finally:
        conn.close()
