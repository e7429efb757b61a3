"""The OpenAI-compatible backend against real servers on 127.0.0.1.

Failure handling is checked against a scripted server that misbehaves on purpose; the
main behaviour against llama-cpp-python's own server (``llama_cpp.server``) serving the
bundled SmolLM2 model, compared with the in-process backend.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.helpers.servers import free_port, start_llama_server
from tests.helpers.sse_server import (
    ScriptedServer,
    chunk,
    drop,
    hang,
    json_error,
    sse,
    sse_headers,
)
from workbench.backends.base import Done, Event, Failed, GenerationConfig, Prompt, Token
from workbench.backends.openai_http import OpenAIBackend

PROMPT = Prompt("Write a haiku about the sea.")


def _run(backend: OpenAIBackend, config: GenerationConfig | None = None) -> list[Event]:
    return list(backend.stream(PROMPT, config or GenerationConfig(max_tokens=16)))


@pytest.fixture()
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


# --------------------------------------------------------------------------- scripted server


def test_streams_text_and_records_server_figures(scripted: ScriptedServer) -> None:
    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        h.wfile.write(b": keep-alive ping\r\n\r\n")
        sse(h, chunk(delta={"role": "assistant"}))
        for piece in ("Waves", " fold", " in."):
            sse(h, chunk(piece))
            time.sleep(0.01)
        timings = {"prompt_n": 12, "prompt_ms": 60.0, "predicted_n": 3, "predicted_ms": 30.0,
                   "cache_n": 0}  # fmt: skip
        sse(h, chunk(finish="stop", timings=timings))
        sse(h, {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}})
        sse(h, "[DONE]")

    scripted.script = script
    cfg = GenerationConfig(temperature=0, seed=7, max_tokens=16, top_k=20, top_p=0.9)
    events = _run(OpenAIBackend(scripted.base_url, "served-name", name="srv"), cfg)
    assert [e.text for e in events if isinstance(e, Token)] == ["Waves", " fold", " in."]
    done = events[-1]
    assert isinstance(done, Done)
    c = done.completion
    assert c.text == "Waves fold in." and c.finish_reason == "stop"
    assert (c.prompt_tokens, c.completion_tokens) == (12, 3)
    assert c.prompt_tps == pytest.approx(200.0) and c.gen_tps == pytest.approx(100.0)
    assert c.ttft_s is not None and c.total_s is not None and 0 < c.ttft_s <= c.total_s
    assert c.gen_tps_wall is not None and c.gen_tps_wall > 0
    assert c.extra["server_timings"]["predicted_n"] == 3
    _, body = scripted.requests[0]
    assert body["model"] == "served-name" and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": PROMPT.text}]
    assert (body["temperature"], body["seed"], body["top_k"], body["top_p"]) == (0, 7, 20, 0.9)
    assert (body["min_p"], body["repeat_penalty"], body["max_tokens"]) == (0.05, 1.0, 16)


def test_ollama_durations_and_reasoning(scripted: ScriptedServer) -> None:
    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk(delta={"reasoning_content": "Think."}))
        sse(h, chunk("Answer."))
        sse(h, chunk(finish="length", prompt_eval_count=10, prompt_eval_duration=50_000_000,
                     eval_count=4, eval_duration=200_000_000))  # fmt: skip
        sse(h, "[DONE]")

    scripted.script = script
    c = _run(OpenAIBackend(scripted.base_url, "m"))[-1].completion
    assert (c.reasoning, c.text, c.finish_reason) == ("Think.", "Answer.", "length")
    assert c.prompt_tps == pytest.approx(200.0) and c.gen_tps == pytest.approx(20.0)
    assert c.completion_tokens == 4 and c.ttfa_s is not None and c.ttft_s is not None


def test_api_key_comes_from_the_environment(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk("ok", finish="stop"))
        sse(h, "[DONE]")

    scripted.script = script
    monkeypatch.setenv("MY_SERVER_KEY", "sekrit")
    done = _run(OpenAIBackend(scripted.base_url, "m", api_key_env="MY_SERVER_KEY"))[-1]
    assert isinstance(done, Done)
    assert scripted.requests[-1][0]["Authorization"] == "Bearer sekrit"
    assert "sekrit" not in json.dumps(done.completion.extra)
    monkeypatch.delenv("MY_SERVER_KEY")
    err = _run(OpenAIBackend(scripted.base_url, "m", api_key_env="MY_SERVER_KEY"))[-1]
    assert isinstance(err, Failed) and "MY_SERVER_KEY" in err.message


@pytest.mark.parametrize(
    ("status", "message"), [(404, "model 'nope' not found"), (500, "out of memory")]
)
def test_http_errors_carry_the_servers_message(
    scripted: ScriptedServer, status: int, message: str
) -> None:
    scripted.script = lambda h, body: json_error(h, status, message)
    err = _run(OpenAIBackend(scripted.base_url, "nope"))[-1]
    assert isinstance(err, Failed)
    assert f"HTTP {status}" in err.message and message in err.message
    assert err.completion.finish_reason == "error" and err.completion.error == err.message


def test_a_stream_that_breaks_mid_answer_is_an_error(scripted: ScriptedServer) -> None:
    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk("Half"))
        sse(h, chunk(" an answer"))
        drop(h)

    scripted.script = script
    events = _run(OpenAIBackend(scripted.base_url, "m"))
    err = events[-1]
    assert isinstance(err, Failed) and "stream broke" in err.message
    assert err.completion.text == "Half an answer"  # what arrived is kept
    assert err.completion.finish_reason == "interrupted"


def test_done_without_a_finish_reason_is_an_interrupted_row(scripted: ScriptedServer) -> None:
    """llama-cpp-python's server ends a stream it interrupts with [DONE] and no
    finish_reason: the row says it was cut, and the arena never pools it."""
    from workbench.arena.battles import AnswerPool
    from workbench.runner import Runner

    def cut(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk("Half"))
        sse(h, chunk(" an answer"))
        sse(h, "[DONE]")

    def whole(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk("A whole answer.", finish="stop"))
        sse(h, "[DONE]")

    scripted.script = cut
    err = _run(OpenAIBackend(scripted.base_url, "m"))[-1]
    assert isinstance(err, Failed) and "without a finish_reason" in err.message
    assert err.completion.finish_reason == "interrupted"
    assert err.completion.text == "Half an answer"

    cfg = GenerationConfig(max_tokens=16)
    with Runner([f"{scripted.base_url}#m"], cfg) as runner:
        cut_row = runner.run([PROMPT]).to_dicts()[0]
        scripted.script = whole
        frame = runner.run([PROMPT])
    assert cut_row["finish_reason"] == "interrupted"
    assert cut_row["error"].startswith(cut_row["model"]) and "cut off" in cut_row["error"]
    assert cut_row["response"] == "Half an answer"
    runs = pl.concat([pl.DataFrame([cut_row], schema=frame.schema), frame])
    pool = AnswerPool.from_runs(runs, cfg, [cut_row["model"]])
    assert [a.text for a in pool.answers(PROMPT.text, cut_row["model"])] == ["A whole answer."]


def _answer(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    sse_headers(h)
    for piece in ("Waves", " fold", " in."):
        sse(h, chunk(piece))
    sse(h, chunk(finish="stop"))
    sse(h, "[DONE]")


@pytest.mark.parametrize(
    ("gets", "n_ctx", "source"),
    [
        (
            {"/props": {"default_generation_settings": {"n_ctx": 2048}, "total_slots": 2,
                        "build_info": "b6000-abc"}},
            2048,
            "GET /props",
        ),
        ({"/v1/models": {"data": [{"id": "m", "max_model_len": 8192}]}}, 8192, "GET /v1/models"),
        ({"/v1/models": {"data": [{"id": "m", "owned_by": "me"}]}}, None, None),
    ],
    ids=["llama-server", "vllm", "llama-cpp-python"],
)  # fmt: skip
def test_served_rows_record_the_servers_settings_or_nothing(
    scripted: ScriptedServer, gets: dict[str, object], n_ctx: int | None, source: str | None
) -> None:
    from workbench.runner import Runner

    scripted.script = _answer
    scripted.gets = gets
    cfg = GenerationConfig(max_tokens=16, n_ctx=4096, n_threads=3, flash_attn=True)
    with Runner([f"{scripted.base_url}#m"], cfg) as runner:
        rows = runner.run([PROMPT, PROMPT]).to_dicts()
    for row in rows:
        assert row["error"] is None and row["response"] == "Waves fold in."
        # Never the client's settings: the server's, or nothing.
        assert row["n_ctx"] == n_ctx
        assert (row["n_threads"], row["n_gpu_layers"], row["flash_attn"]) == (None, None, None)
        settings = json.loads(row["extra"])["server_settings"]
        assert settings["source"] == source
    if source == "GET /props":
        assert settings["total_slots"] == 2 and settings["build_info"] == "b6000-abc"


def test_check_models_warns_of_an_unlisted_name_and_skips_an_unreachable_server(
    scripted: ScriptedServer,
) -> None:
    from workbench.runner import check_models

    scripted.gets = {"/v1/models": {"object": "list", "data": [{"id": "real-model"}]}}
    dead = f"http://127.0.0.1:{free_port()}/v1#m"
    check = check_models([f"{scripted.base_url}#nope", f"{scripted.base_url}#real-model", dead])
    assert [r.served_model for r in check.ready] == ["nope", "real-model"]
    assert len(check.warnings) == 1
    assert "'nope'" in check.warnings[0] and "real-model" in check.warnings[0]
    assert len(check.skipped) == 1 and "connection refused" in check.skipped[0]


def test_timeouts_and_refused_connections(scripted: ScriptedServer) -> None:
    scripted.script = hang(3)
    err = _run(OpenAIBackend(scripted.base_url, "m", read_timeout_s=0.5))[-1]
    assert isinstance(err, Failed) and "0.5 s" in err.message
    refused = _run(OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", "m"))[-1]
    assert isinstance(refused, Failed) and "connection refused" in refused.message


STALL_S = 30


def test_cancel_stops_a_stalled_stream(scripted: ScriptedServer) -> None:
    import threading

    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk("first"))
        time.sleep(STALL_S)

    scripted.script = script
    cancel = threading.Event()
    b = OpenAIBackend(scripted.base_url, "m")
    events = []
    cancelled_at = None
    for ev in b.stream(PROMPT, GenerationConfig(), cancel):
        events.append(ev)
        if isinstance(ev, Token) and cancelled_at is None:
            cancel.set()
            cancelled_at = time.perf_counter()
    assert cancelled_at is not None
    # Far below the stall: the cancel interrupted the read instead of waiting it out.
    assert time.perf_counter() - cancelled_at < STALL_S / 3
    assert isinstance(events[-1], Done) and events[-1].completion.finish_reason == "cancelled"
    assert events[-1].completion.text == "first"


# --------------------------------------------------------------------------- llama_cpp.server


@pytest.mark.slow
def test_served_and_in_process_answers_are_identical(served: str, smollm: Path) -> None:
    from workbench.runner import Runner

    cfg = GenerationConfig(temperature=0, seed=42, max_tokens=40)
    with Runner([str(smollm), f"{served}#smollm"], cfg, budget_bytes=4 << 30) as runner:
        frame = runner.run([PROMPT])
    rows = {r["backend"]: r for r in frame.to_dicts()}
    local, remote = rows["llama-cpp"], rows["openai-http"]
    assert local["error"] is None and remote["error"] is None, (local["error"], remote["error"])
    assert len(local["response"]) > 20
    # Equal here because the server was started with the in-process load settings (see
    # start_llama_server): the request itself carries only the sampler's.
    assert remote["response"] == local["response"]
    # llama-cpp-python's server reports no load settings: the row records none.
    assert local["n_ctx"] == 4096 and remote["n_ctx"] is None and remote["n_threads"] is None
    assert json.loads(remote["extra"])["server_settings"]["source"] is None
    assert remote["model"].startswith("smollm@127.0.0.1:")
    assert remote["model_path"] == served and remote["arch"] is None
    assert remote["ttft_s"] > 0 and remote["total_s"] >= remote["ttft_s"]
    assert remote["completion_tokens"] == local["completion_tokens"]


@pytest.mark.slow
def test_compare_cli_mixes_a_local_file_and_a_served_model(served: str, smollm: Path) -> None:
    cmd = [
        sys.executable, "-m", "workbench.cli", "compare", "-p", PROMPT.text,
        "-m", str(smollm), "-m", f"{served}#smollm", "--max-tokens", "24",
        "--temperature", "0", "--seed", "42", "--no-store", "--json",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert sorted(r["backend"] for r in rows) == ["llama-cpp", "openai-http"]
    assert all(r["error"] is None for r in rows)
    assert rows[0]["response"] == rows[1]["response"]


@pytest.mark.slow
def test_killing_the_server_mid_stream_is_an_error_row(smollm: Path, tmp_path: Path) -> None:
    from workbench.runner import ResponseFinished, Runner, TokenChunk

    port = free_port()
    proc = start_llama_server(smollm, port, tmp_path / "server.log")
    cfg = GenerationConfig(temperature=0, max_tokens=2000)
    long_prompt = Prompt("Count from 1 to 500, one number per line.")
    finished: list[ResponseFinished] = []
    got_tokens = 0
    try:
        with Runner([f"http://127.0.0.1:{port}/v1#smollm"], cfg) as runner:
            for ev in runner.stream([long_prompt]):
                if isinstance(ev, TokenChunk):
                    got_tokens += 1
                    if got_tokens == 5:
                        proc.kill()
                elif isinstance(ev, ResponseFinished):
                    finished.append(ev)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert got_tokens >= 5
    row = finished[0].row
    assert row["finish_reason"] == "interrupted"
    assert "stream broke" in row["error"] and row["model"] in row["error"]
    assert row["response"]  # the text that arrived before the break is kept


@pytest.mark.slow
def test_a_request_the_real_server_interrupts_is_an_interrupted_row(served: str) -> None:
    """llama_cpp.server (interrupt_requests, its default) cuts a stream when a newer
    request arrives: [DONE] without a finish_reason."""
    from workbench.runner import ResponseFinished, Runner, TokenChunk

    cfg = GenerationConfig(temperature=0, max_tokens=400)
    long_prompt = Prompt("Count from 1 to 200, one number per line.")
    finished: list[ResponseFinished] = []
    got = 0
    with Runner([f"{served}#smollm"], cfg) as runner:
        for ev in runner.stream([long_prompt]):
            if isinstance(ev, TokenChunk):
                got += 1
                if got == 3:  # a newer request: the server interrupts this one
                    short = OpenAIBackend(served, "smollm")
                    assert isinstance(_run(short)[-1], Done)
            elif isinstance(ev, ResponseFinished):
                finished.append(ev)
    row = finished[0].row
    assert row["finish_reason"] == "interrupted", (row["finish_reason"], row["error"])
    assert "without a finish_reason" in row["error"]
