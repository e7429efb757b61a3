"""Each streamed reasoning form, from a scripted OpenAI-compatible server on 127.0.0.1,
read over real HTTP and split by :class:`workbench.thinking.ReasoningSplitter`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.reasoning_streams import (
    REASONING_STREAMS,
    ReasoningStream,
    read_deltas,
    script_for,
)
from tests.helpers.sse_server import ScriptedServer
from workbench.thinking import (
    FORMATS,
    THINK_TAGS,
    ReasoningSplitter,
    delta_reasoning,
    request_fields,
)


@pytest.fixture()
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


@pytest.mark.parametrize("stream", REASONING_STREAMS, ids=lambda s: s.name)
def test_each_form_splits_into_thinking_and_answer(
    server: ScriptedServer, stream: ReasoningStream
) -> None:
    server.script = script_for(stream)
    body = {"model": "m", "messages": [{"role": "user", "content": "2 + 2?"}], "stream": True}
    received = read_deltas(server.base_url, body)
    assert len(received) == len(stream.deltas) + 2  # role chunk and finish chunk too
    fmt = next(f for f in FORMATS if f.name == stream.inline_format)
    sp = ReasoningSplitter(fmt, in_reasoning=stream.prompt_opened)
    for r in received:
        sp.feed(r.delta.get("content") or "", reasoning=delta_reasoning(r.delta), t=r.t)
    sp.finish()
    got = sp.result()
    assert (got.reasoning, got.answer) == (stream.reasoning, stream.answer)
    assert not got.unterminated
    assert got.t_first is not None and got.t_first_answer is not None
    # The thinking came first, so the first answer token is strictly later.
    assert got.t_first_answer > got.t_first
    assert got.reasoning_chunks >= 1 and got.answer_chunks >= 1


def test_the_split_streams_really_cut_the_markers() -> None:
    """The split-marker streams must cut inside the markers, or they test nothing."""
    by_name = {s.name: s for s in REASONING_STREAMS}
    pieces = [d["content"] for d in by_name["inline_think_split_markers"].deltas]
    assert not any("<think>" in p or "</think>" in p for p in pieces)
    assert any(p.endswith("<th") for p in pieces) and any(p.endswith("</") for p in pieces)
    gemma = [d["content"] for d in by_name["inline_gemma4_channel"].deltas]
    assert not any("<|channel>thought" in p or "<channel|>" in p for p in gemma)


def test_thinking_off_reaches_the_server_as_chat_template_kwargs(server: ScriptedServer) -> None:
    server.script = script_for(REASONING_STREAMS[0], gap_s=0)
    body = {"model": "m", "messages": [], "stream": True, **request_fields("off", THINK_TAGS)}
    read_deltas(server.base_url, body)
    _, sent = server.requests[-1]
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
