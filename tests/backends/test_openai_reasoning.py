"""Served models that think: the answer alone in ``response``, the thinking in ``reasoning``.

Each streamed reasoning form comes from a scripted OpenAI-compatible server on 127.0.0.1
(no real local engine here streams them); the plain served path from llama-cpp-python's
real server serving the bundled SmolLM2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.reasoning_streams import REASONING_STREAMS, ReasoningStream, script_for
from tests.helpers.sse_server import ScriptedServer, chunk, sse, sse_headers
from workbench.backends.base import Done, GenerationConfig, Prompt, Token
from workbench.backends.openai_http import OpenAIBackend

PROMPT = Prompt("What is 2 + 2?")
# A served model name per inline form: the family's markers are picked from the name.
SERVED_NAME = {"think-tags": "qwen3.5-9b", "gemma4-channel": "gemma-4-e4b-it"}


@pytest.fixture()
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


def _shown(tokens: list[Token]) -> tuple[str, str]:
    """What a UI following the Token events shows: (thinking, answer)."""
    thinking = answer = ""
    for t in tokens:
        if t.moved:
            answer = ""
        if t.reasoning:
            thinking += t.text
        else:
            answer += t.text
    return thinking, answer


@pytest.mark.parametrize("stream", REASONING_STREAMS, ids=lambda s: s.name)
def test_each_reasoning_form_is_split_and_timed(
    scripted: ScriptedServer, stream: ReasoningStream
) -> None:
    scripted.script = script_for(stream)
    backend = OpenAIBackend(scripted.base_url, SERVED_NAME[stream.inline_format])
    events = list(backend.stream(PROMPT, GenerationConfig(max_tokens=32)))
    done = events[-1]
    assert isinstance(done, Done), done
    c = done.completion
    assert (c.reasoning, c.text) == (stream.reasoning, stream.answer)
    assert c.prompt_mode == "chat" and c.finish_reason == "stop"
    assert c.ttft_s is not None and c.ttfa_s is not None
    assert c.ttfa_s > c.ttft_s  # the thinking streamed first
    # The server sent no reasoning count: one token per chunk, and it says so.
    assert c.reasoning_tokens is not None and 1 <= c.reasoning_tokens < len(stream.deltas)
    assert c.extra["reasoning_tokens_estimated"] is True
    assert _shown([e for e in events if isinstance(e, Token)]) == (c.reasoning, c.text)
    _, body = scripted.requests[0]
    assert "chat_template_kwargs" not in body  # thinking left to the model


def test_reasoning_tokens_come_from_usage_and_thinking_reaches_the_template(
    scripted: ScriptedServer,
) -> None:
    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk(delta={"reasoning_content": "Add."}))
        sse(h, chunk("4"))
        sse(h, chunk(finish="stop"))
        usage = {"prompt_tokens": 5, "completion_tokens": 9,
                 "completion_tokens_details": {"reasoning_tokens": 6}}  # fmt: skip
        sse(h, {"choices": [], "usage": usage})
        sse(h, "[DONE]")

    scripted.script = script
    backend = OpenAIBackend(scripted.base_url, "some-model")
    c = list(backend.stream(PROMPT, GenerationConfig(thinking="off")))[-1].completion
    assert (c.reasoning, c.text, c.reasoning_tokens, c.completion_tokens) == ("Add.", "4", 6, 9)
    assert "reasoning_tokens_estimated" not in c.extra
    _, body = scripted.requests[0]
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    list(backend.stream(PROMPT, GenerationConfig(thinking="on")))
    assert scripted.requests[1][1]["chat_template_kwargs"] == {"enable_thinking": True}


def test_an_answer_without_thinking_counts_none(scripted: ScriptedServer) -> None:
    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        for piece in ("I use the ", "<think>", " tag in HTML? No."):
            sse(h, chunk(piece))
        sse(h, chunk(finish="stop"))
        sse(h, "[DONE]")

    scripted.script = script
    c = list(OpenAIBackend(scripted.base_url, "m").stream(PROMPT, GenerationConfig()))[-1]
    assert isinstance(c, Done)
    # A "<think>" after the answer began is answer text.
    assert c.completion.text == "I use the <think> tag in HTML? No."
    assert c.completion.reasoning == "" and c.completion.reasoning_tokens == 0
    assert c.completion.ttfa_s == c.completion.ttft_s


def test_thinking_cut_by_max_tokens_has_no_answer(scripted: ScriptedServer) -> None:
    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        for piece in ("<think>", "Let me", " see"):
            sse(h, chunk(piece))
        sse(h, chunk(finish="length"))
        sse(h, "[DONE]")

    scripted.script = script
    c = list(OpenAIBackend(scripted.base_url, "qwen3-8b").stream(PROMPT, GenerationConfig()))[-1]
    comp = c.completion
    assert (comp.reasoning, comp.text, comp.finish_reason) == ("Let me see", "", "length")
    assert comp.ttfa_s is None and comp.ttft_s is not None
    assert comp.extra["reasoning_unterminated"] is True


@pytest.mark.slow
def test_compare_json_rows_split_both_forms(scripted: ScriptedServer, tmp_path: Path) -> None:
    """The done-when of issue 13: ``workbench compare --json`` with a served model that
    streams reasoning_content deltas and one that streams inline <think> tags."""
    by_name = {s.name: s for s in REASONING_STREAMS}
    fields, inline = by_name["reasoning_content"], by_name["inline_think_split_markers"]
    scripts = {"deepseek-r1": script_for(fields), "qwen3.5-9b": script_for(inline)}

    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        scripts[body["model"]](h, body)

    scripted.script = script
    env = {**os.environ, "WORKBENCH_DATA": str(tmp_path)}
    cmd = [
        sys.executable, "-m", "workbench", "compare", "-p", PROMPT.text, "--json",
        "-m", f"{scripted.base_url}#deepseek-r1", "-m", f"{scripted.base_url}#qwen3.5-9b",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {r["model"].split("@")[0]: r for r in json.loads(out.stdout)}
    for name, stream in (("deepseek-r1", fields), ("qwen3.5-9b", inline)):
        r = rows[name]
        assert r["error"] is None, r["error"]
        assert (r["response"], r["reasoning"]) == (stream.answer, stream.reasoning)
        assert r["ttfa_s"] >= r["ttft_s"] > 0
        assert r["prompt_mode"] == "chat" and r["thinking"] == "default"
        assert r["reasoning_tokens"] >= 1


# --------------------------------------------------------------------------- llama_cpp.server


@pytest.mark.slow
def test_a_real_server_without_thinking_gives_the_answer_alone(served: str) -> None:
    from workbench.runner import Runner

    cfg = GenerationConfig(temperature=0, seed=3, max_tokens=16, thinking="off")
    with Runner([f"{served}#smollm"], cfg) as runner:
        row = runner.run(["Name a colour."]).row(0, named=True)
    assert row["error"] is None, row["error"]
    assert row["response"] and row["reasoning"] == "" and row["reasoning_tokens"] == 0
    assert row["ttfa_s"] == row["ttft_s"] and row["ttft_s"] > 0
    assert row["thinking"] == "off" and row["prompt_mode"] == "chat"
    # The real server takes chat_template_kwargs (SmolLM2's template ignores it).
    assert row["finish_reason"] in ("stop", "length")
