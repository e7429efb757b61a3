"""Conversations side by side: the whole conversation reaches each model in order, and each
model continues its own history.

A scripted OpenAI-compatible server on 127.0.0.1 records every request and answers as the
model the request names, so a test can read exactly what each model was sent.
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

import workbench as wb
from tests.helpers.sse_server import ScriptedServer, chunk, json_error, sse, sse_headers
from workbench.backends.base import GenerationConfig
from workbench.errors import InputError
from workbench.runner import ResponseFinished, Runner

CONVERSATION = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "A colour?"},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "A fruit?"},
]


def _answers(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    """Answers as the model named in the request: ``<model> answer <n>``, where n counts
    the user messages it was sent; model "thinker" thinks first; "broken" fails."""
    if body["model"] == "broken":
        json_error(h, 500, "the model fell over")
        return
    n = sum(m["role"] == "user" for m in body["messages"])
    sse_headers(h)
    if body["model"] == "thinker":
        sse(h, chunk(f"<think>turn {n}</think>\n\n"))
    sse(h, chunk(f"{body['model']} answer {n}"))
    sse(h, chunk(finish="stop"))
    sse(h, "[DONE]")


@pytest.fixture()
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    s.script = _answers
    yield s
    s.close()


def _sent(server: ScriptedServer, model: str) -> list[list[dict[str, str]]]:
    """The messages of every request for ``model``, in the order they arrived."""
    return [body["messages"] for _, body in server.requests if body["model"] == model]


def test_compare_sends_the_whole_conversation_in_order(server: ScriptedServer) -> None:
    models = [f"{server.base_url}#alpha", f"{server.base_url}#beta"]
    frame = wb.compare(messages=CONVERSATION, models=models, store=False)
    assert _sent(server, "alpha") == [CONVERSATION] and _sent(server, "beta") == [CONVERSATION]
    rows = frame.to_dicts()
    assert [r["response"] for r in rows] == ["alpha answer 2", "beta answer 2"]
    assert len({r["conversation_id"] for r in rows}) == 1 and rows[0]["conversation_id"]
    for r in rows:
        assert r["turn"] == 2 and r["prompt"] == "A fruit?"
        assert r["system_prompt"] == "Answer in one word."
        assert json.loads(r["history"]) == CONVERSATION[1:3]
    # A follow-up after a conversation ending with an answer.
    wb.compare("A tree?", messages=CONVERSATION[:3], models=models[:1], store=False)
    assert _sent(server, "alpha")[-1] == [*CONVERSATION[:3], {"role": "user", "content": "A tree?"}]


def test_each_model_continues_its_own_history(server: ScriptedServer) -> None:
    models = [f"{server.base_url}#alpha", f"{server.base_url}#thinker", f"{server.base_url}#broken"]
    with Runner(models, GenerationConfig(system_prompt="Be brief.")) as runner:
        alpha, thinker, broken = runner.model_names
        chat = runner.conversation()
        first = chat.run("Hi")
        second = chat.run("And then?")
    assert first["turn"].to_list() == [1, 1, 1] and second["turn"].to_list() == [2, 2, 2]
    assert set(first["conversation_id"]) == set(second["conversation_id"]) == {chat.id}
    system = {"role": "system", "content": "Be brief."}
    hi, then = {"role": "user", "content": "Hi"}, {"role": "user", "content": "And then?"}
    assert _sent(server, "alpha")[1] == [
        system, hi, {"role": "assistant", "content": "alpha answer 1"}, then
    ]  # fmt: skip
    # The thinker's own answer, without its thinking (chat templates drop it from history).
    assert _sent(server, "thinker")[1] == [
        system, hi, {"role": "assistant", "content": "thinker answer 1"}, then
    ]  # fmt: skip
    assert second.filter(second["model"] == thinker)["reasoning"].to_list() == ["turn 2"]
    # A failed turn leaves no trace: the next one is sent without it.
    assert _sent(server, "broken")[1] == [system, then]
    assert chat.history(broken) == ()
    assert [m.content for m in chat.history(alpha)] == [
        "Hi", "alpha answer 1", "And then?", "alpha answer 2"
    ]  # fmt: skip


def test_conversation_input_is_refused_in_one_line(server: ScriptedServer) -> None:
    models = [f"{server.base_url}#alpha"]
    with pytest.raises(InputError, match="ends with the model's answer"):
        wb.compare(messages=CONVERSATION[:3], models=models, store=False)
    with pytest.raises(InputError, match="ends with a user message"):
        wb.compare("Another?", messages=CONVERSATION, models=models, store=False)
    with pytest.raises(InputError, match="system message and the settings another"):
        wb.compare(messages=CONVERSATION, models=models, store=False, system_prompt="Other.")
    with pytest.raises(InputError, match="reps=1"):
        wb.compare(messages=CONVERSATION, models=models, store=False, reps=2)
    with Runner(models) as runner:
        chat = runner.conversation(CONVERSATION)
        with pytest.raises(InputError, match="has no answer yet"):
            list(chat.stream("Too soon"))
        rows = chat.run()  # answers the pending message
        assert rows["turn"].to_list() == [2]
        with pytest.raises(InputError, match="prompt is empty"):
            list(chat.stream("  "))
    assert not [r for r in server.requests if "Too soon" in json.dumps(r[1])]


def _cli(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKBENCH_DATA": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "workbench", "compare", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_compare_cli_messages_thinking_and_system(server: ScriptedServer, tmp_path: Path) -> None:
    conv = tmp_path / "conv.json"
    conv.write_text(json.dumps(CONVERSATION[1:]))
    models = ["-m", f"{server.base_url}#alpha", "-m", f"{server.base_url}#thinker"]
    out = _cli("--messages", str(conv), *models, "--thinking", "off", "-s", "Sys.", "--json",
               data=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    expected = [{"role": "system", "content": "Sys."}, *CONVERSATION[1:]]
    for model in ("alpha", "thinker"):
        (body,) = [b for _, b in server.requests if b["model"] == model]
        assert body["messages"] == expected
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
    rows = json.loads(out.stdout)
    assert {r["thinking"] for r in rows} == {"off"} and {r["turn"] for r in rows} == {2}
    assert rows[1]["response"] == "thinker answer 2" and rows[1]["reasoning"] == "turn 2"
    # The table names the turn and the file.
    table = _cli("--messages", str(conv), *models, "--no-store", data=tmp_path)
    assert table.returncode == 0, table.stderr
    assert f"Turn 2 of {conv}: A fruit?" in table.stdout
    # A second system prompt, a conversation with nothing to answer: one line, exit 2.
    conv.write_text(json.dumps(CONVERSATION))
    clash = _cli("--messages", str(conv), *models, "-s", "Other.", data=tmp_path)
    assert clash.returncode == 2 and "system message" in clash.stderr
    assert len(clash.stderr.strip().splitlines()) == 1
    conv.write_text(json.dumps(CONVERSATION[:3]))
    done = _cli("--messages", str(conv), *models, data=tmp_path)
    assert done.returncode == 2 and "must end with a user message" in done.stderr
    bad = _cli("--messages", str(conv), *models, "--thinking", "maybe", data=tmp_path)
    assert bad.returncode == 2 and "invalid choice: 'maybe'" in bad.stderr


def test_conversation_rows_finish_events_in_model_order(server: ScriptedServer) -> None:
    with Runner([f"{server.base_url}#alpha", f"{server.base_url}#beta"]) as runner:
        events = [e for e in runner.conversation(CONVERSATION).stream()]
    finished = [e.model.split("@")[0] for e in events if isinstance(e, ResponseFinished)]
    assert finished == ["alpha", "beta"]
