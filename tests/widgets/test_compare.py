"""ComparePanel without a screen: build it, set values, click, wait, read state and store.

The slow tests run the two bundled models for a handful of tokens (the machine running
them is small and shared).
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import polars as pl
import pytest

pytest.importorskip("ipywidgets")

from tests.helpers.sse_server import ScriptedServer, chunk, sse, sse_headers
from workbench.backends.base import Completion, GenerationConfig, Message
from workbench.models.registry import ModelRef, bundled_models, endpoint_ref
from workbench.runner import ResponseFinished
from workbench.store import RunStore
from workbench.widgets import ComparePanel
from workbench.widgets.compare import BASE_MODEL_LABEL, ModelColumn

MAX_TOKENS = 12
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def models() -> list[ModelRef]:
    refs = bundled_models(assemble=False)
    if len(refs) < 2:
        pytest.skip("bundled models missing: run `make models`")
    return refs


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "data")


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


def _config(**kw: object) -> GenerationConfig:
    base: dict[str, object] = {"max_tokens": MAX_TOKENS, "temperature": 0.0, "seed": 42}
    base.update(kw)
    return GenerationConfig(**base)  # type: ignore[arg-type]


def test_panel_offers_registry_models_and_reads_its_controls(
    models: list[ModelRef], store: RunStore
) -> None:
    panel = ComparePanel(store=store, config=GenerationConfig(n_ctx=1024))
    try:
        names = [m.name for m in models]
        assert set(names) <= set(panel.model_select.options)
        assert set(panel.model_select.value) == set(names)  # bundled ones preselected
        panel.temperature.value = 0.3
        panel.top_p.value = 0.8
        panel.max_tokens.value = 7
        panel.seed.value = -1
        panel.system_prompt.value = "  "
        cfg = panel.generation_config()
        assert (cfg.temperature, cfg.top_p, cfg.max_tokens) == (0.3, 0.8, 7)
        assert cfg.seed is None and cfg.system_prompt is None
        assert cfg.n_ctx == 1024  # load settings come from the base config
        panel.seed.value = 5
        panel.system_prompt.value = "Answer in French."
        cfg = panel.generation_config()
        assert cfg.seed == 5 and cfg.system_prompt == "Answer in French."
    finally:
        panel.close()


def test_run_without_prompt_or_models_starts_nothing(
    models: list[ModelRef], store: RunStore
) -> None:
    panel = ComparePanel(models=models, store=store, config=_config())
    try:
        panel.run_button.click()
        assert not panel.running
        assert "Type a prompt" in panel.status.value
        panel.prompt.value = "Hello"
        panel.model_select.value = ()
        panel.run_button.click()
        assert not panel.running
        assert "Select at least one model" in panel.status.value
        assert store.load().height == 0
    finally:
        panel.close()


def test_column_redraws_are_throttled() -> None:
    col = ModelColumn("m", max_redraws_per_s=20)
    col.start()
    t0 = time.perf_counter()
    for i in range(3000):
        col.add(f"t{i} ")
        if i % 300 == 0:
            time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    assert col.chunks == 3000
    # start() drew once; then at most one redraw per 50 ms (plus the first one).
    assert 2 <= col.redraws <= 2 + elapsed * 20
    shown_before_finish = col.body.value
    assert "t0 " in shown_before_finish
    completion = Completion(
        text=col.text, finish_reason="length", completion_tokens=3000, ttft_s=0.01, gen_tps=123.4
    )
    row = {
        "finish_reason": "length",
        "ttft_s": 0.01,
        "gen_tps": 123.4,
        "completion_tokens": 3000,
        "load_s": 0.0,
    }
    col.finish(ResponseFinished("m", "adhoc", 0, row, completion))
    assert "t2999 " in col.body.value  # the final redraw shows everything
    assert "123.4" in col.metrics.value and "3000" in col.metrics.value
    assert col.state == "length"


def _cell(col: ModelColumn, name: str) -> str:
    """The text of one figure cell (ttft, tps or tokens) of a column's metrics line."""
    m = re.search(rf"<span class='wb-{name}'>(.*?)</span>", col.metrics.value)
    assert m, col.metrics.value
    return html.unescape(m.group(1))


def test_a_column_says_queued_then_loading_and_shows_ttft_only_when_measured() -> None:
    col = ModelColumn("m", max_redraws_per_s=1e9)  # every token redraws
    assert "queued" in col.body.value and "queued" in col.metrics.value
    col.start(cold=True)
    assert _cell(col, "ttft") == "loading"
    assert "loading model" in col.body.value
    col.add("Hello")
    col.add(" world")
    assert _cell(col, "ttft") == "…"  # no figure that would include the model's load
    assert _cell(col, "tokens") == "2"
    row = {"finish_reason": "stop", "ttft_s": 0.05, "gen_tps": 80.0, "completion_tokens": 2}
    col.finish(ResponseFinished("m", "adhoc", 0, row, Completion(text="Hello world", ttft_s=0.05)))
    assert _cell(col, "ttft") == "0.05 s"
    assert _cell(col, "tps") == "80.0"

    warm = ModelColumn("w")
    warm.start(cold=False)
    assert _cell(warm, "ttft") == "waiting"
    assert "reading the prompt" in warm.body.value and "loading model" not in warm.body.value


@pytest.mark.slow
def test_run_streams_into_both_columns_and_stores_rows(
    models: list[ModelRef], store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_partial: dict[str, bool] = {m.name: False for m in models}
    ttft_while_loading: set[str] = set()
    draw = ModelColumn._draw

    def recorded(col: ModelColumn, now: float | None = None) -> None:
        # Every redraw is recorded as it happens (a poller could miss a short stream).
        draw(col, now)
        if col.state == "streaming" and col.text:
            seen_partial[col.name] = True  # text shown before the response ended
        if col.state in ("loading", "streaming"):
            ttft_while_loading.add(_cell(col, "ttft"))

    monkeypatch.setattr(ModelColumn, "_draw", recorded)
    panel = ComparePanel(models=models, store=store, config=_config())
    try:
        first, second = (m.name for m in models)
        seen_queued = False
        panel.prompt.value = "Name three colours."
        panel.run_button.click()
        assert panel.running
        assert panel.run_button.disabled and not panel.stop_button.disabled
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while panel.running and time.monotonic() < deadline:
            cols = panel.columns
            if cols[first].state != "waiting" and cols[second].state == "waiting":
                seen_queued = seen_queued or "queued" in cols[second].body.value
            time.sleep(0.01)
        assert seen_queued, "the second column never said it was queued"
        # Before the engine's figure arrives the TTFT cell holds a word, never a number.
        assert ttft_while_loading and ttft_while_loading <= {"loading", "waiting", "…"}
        assert panel.wait(5), "run did not finish"
        assert panel.last_error is None

        assert list(panel.columns) == [m.name for m in models]
        for col in panel.columns.values():
            assert col.text.strip(), f"{col.name}: no text"
            assert col.state in ("stop", "length")
            assert col.error is None
            assert _cell(col, "ttft").endswith(" s")  # the engine's figure filled in
        assert any(seen_partial.values())

        rows = store.load()
        assert sorted(rows["model"].to_list()) == sorted(m.name for m in models)
        assert set(rows["finish_reason"].to_list()) <= {"stop", "length"}
        assert rows["run_id"].n_unique() == 1
        assert rows["max_tokens"].to_list() == [MAX_TOKENS, MAX_TOKENS]
        by_model = dict(zip(rows["model"], rows["response"], strict=True))
        for name, col in panel.columns.items():
            assert by_model[name] == col.text

        assert set(panel.figures) == {"ttft", "speed", "length"}
        for key, fig in panel.figures.items():
            assert sorted(t.name for t in fig.data) == sorted(m.name for m in models), key
            (out,) = panel.figure_outputs[key].outputs
            assert out["data"]["application/vnd.plotly.v1+json"]["data"]
        assert "Done" in panel.status.value
        assert not panel.run_button.disabled and panel.stop_button.disabled

        # A second run reuses the loaded models and adds rows under a new run id.
        assert sorted(panel.models_loaded) == sorted(m.name for m in models)
        panel.prompt.value = "Say hi."
        panel.max_tokens.value = 4
        panel.run_button.click()
        assert panel.wait(RUN_TIMEOUT_S)
        assert not any(c.cold for c in panel.columns.values())  # both were still warm
        rows = store.load()
        assert rows.height == 4 and rows["run_id"].n_unique() == 2
        assert all(r["load_s"] == 0.0 for r in panel.rows[2:])
        for key, fig in panel.figures.items():
            # The latency figure has two points a response: first token and first answer.
            assert sum(len(t.y) for t in fig.data) == (8 if key == "ttft" else 4), key
    finally:
        panel.close()


@pytest.mark.slow
def test_stop_mid_generation_stores_a_cancelled_row(
    models: list[ModelRef], store: RunStore
) -> None:
    smollm = next(m for m in models if "smollm" in m.name)
    other = next(m for m in models if m is not smollm)
    # Long enough that the run cannot end before Stop; Stop ends it after a few tokens.
    panel = ComparePanel(
        models=[smollm, other], store=store, config=_config(max_tokens=400, temperature=0.8)
    )
    try:
        panel.prompt.value = "Write a very long story about a dragon who learns to bake bread."
        panel.run_button.click()
        first = panel.columns[smollm.name]
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while first.chunks < 2 and panel.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.chunks >= 2, "no tokens before the deadline"
        panel.stop_button.click()
        assert panel.wait(60), "Stop did not end the run"

        rows = store.load()
        assert rows["model"].to_list() == [smollm.name]  # the second model never started
        row = rows.row(0, named=True)
        assert row["finish_reason"] == "cancelled"
        assert row["response"] and row["response"] == first.text
        assert first.state == "cancelled"
        assert panel.columns[other.name].state == "skipped"
        assert "not run" in panel.columns[other.name].body.value
        assert "Stopped" in panel.status.value
        assert not panel.run_button.disabled
    finally:
        panel.close()


@pytest.mark.slow
def test_a_failing_model_shows_its_error_in_its_own_column(
    models: list[ModelRef], store: RunStore, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    smollm = next(m for m in models if "smollm" in m.name)
    bad = ModelRef("broken", str(broken), "path")
    panel = ComparePanel(models=[bad, smollm], store=store, config=_config(max_tokens=6))
    try:
        panel.prompt.value = "Hello"
        panel.run_button.click()
        assert panel.wait(RUN_TIMEOUT_S)
        assert panel.last_error is None  # one model failing does not fail the run
        bad_col, good_col = panel.columns["broken"], panel.columns[smollm.name]
        assert bad_col.state == "error" and bad_col.error
        assert "wb-error" in bad_col.body.value and "broken" in bad_col.body.value
        assert good_col.error is None and good_col.text.strip()
        assert "wb-error" not in good_col.body.value
        assert "failed: broken" in panel.status.value

        rows = store.load()
        errors = dict(zip(rows["model"], rows["error"], strict=True))
        assert errors[smollm.name] is None and errors["broken"]
    finally:
        panel.close()


@pytest.mark.slow
def test_idle_panel_releases_its_models_and_loads_them_again(
    models: list[ModelRef], store: RunStore
) -> None:
    smollm = next(m for m in models if "smollm" in m.name)
    panel = ComparePanel(
        models=[smollm], store=store, config=_config(max_tokens=4), release_after_s=1.0
    )
    try:
        assert panel.release_after_s == 1.0
        panel.prompt.value = "Hi"
        panel.run_button.click()
        assert not panel.release_models()  # never while a run is in progress
        assert panel.wait(RUN_TIMEOUT_S)
        assert panel.columns[smollm.name].cold
        deadline = time.monotonic() + 60
        # Wait for the release to complete (the status says so last): a worker that is
        # closing is already not loaded before the panel has counted the release.
        while "models released" not in panel.status.value and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "models released" in panel.status.value, "the idle models were not released"
        assert panel.released == 1
        assert panel.models_loaded == []
        panel.run_button.click()  # the next run loads the model again
        assert panel.wait(RUN_TIMEOUT_S)
        assert panel.columns[smollm.name].cold
        assert panel.columns[smollm.name].state in ("stop", "length")
        assert panel.rows[-1]["load_s"] > 0
    finally:
        panel.close()


def test_idle_release_follows_the_setting(
    models: list[ModelRef], store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_IDLE_MINUTES", "3")
    panel = ComparePanel(models=models, store=store)
    try:
        assert panel.release_after_s == 180
        assert not panel.release_models()  # nothing loaded yet
    finally:
        panel.close()
    kept = ComparePanel(models=models, store=store, release_after_s=0)
    try:
        kept._start_idle_timer()
        assert kept._idle_timer is None  # 0: models stay loaded until the panel closes
    finally:
        kept.close()


# --------------------------------------------------------------------------- thinking


def _wait_for(cond: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return False


THOUGHTS = ("The user wants", " 2 + 2.", "\nThat is 4.")
ANSWER = ("The answer", " is 4.")


def test_thinking_streams_into_a_collapsed_section_above_the_answer(
    scripted: ScriptedServer, store: RunStore
) -> None:
    """A served model streams reasoning_content deltas, then the answer; the server holds
    the answer back until the test has seen the thinking in the panel."""
    seen_thinking = threading.Event()

    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        if body["model"] == "thinker":
            for piece in THOUGHTS:
                time.sleep(0.05)
                sse(h, chunk(delta={"reasoning_content": piece}))
            seen_thinking.wait(30)
        for piece in ANSWER:
            sse(h, chunk(piece))
        sse(h, chunk(finish="stop"))
        sse(h, "[DONE]")

    scripted.script = script
    thinker = endpoint_ref(f"{scripted.base_url}#thinker")
    plain = endpoint_ref(f"{scripted.base_url}#plain")
    panel = ComparePanel(
        models=[thinker, plain], store=store, config=_config(), max_redraws_per_s=1e9
    )
    try:
        panel.prompt.value = "What is 2 + 2?"
        panel.run_button.click()
        col = panel.columns[thinker.name]
        assert col.thinking.layout.display == "none"  # nothing to show before it thinks
        thought = "".join(THOUGHTS)
        assert _wait_for(lambda: html.escape(thought) in col.thinking_body.value)
        # While the model thinks: the section is shown, closed, above an empty answer.
        assert col.thinking.layout.display != "none"
        assert col.thinking.selected_index is None
        assert col.text == "" and "thinking…" in col.body.value
        assert col.thinking.titles[0].startswith("thinking…")
        assert _cell(col, "ttfa") == "…"
        box = list(col.box.children)
        assert box.index(col.thinking) < box.index(col.body)
        seen_thinking.set()
        assert panel.wait(30) and panel.last_error is None

        row = col.row
        assert row is not None
        assert (row["reasoning"], row["response"]) == (thought, "".join(ANSWER))
        assert col.text == row["response"]
        assert "user wants" not in col.body.value  # the answer alone in the answer box
        assert html.escape(thought) in col.thinking_body.value
        assert col.thinking.selected_index is None  # still collapsed
        thinking_s = row["ttfa_s"] - row["ttft_s"]
        assert thinking_s > 0
        title = col.thinking.titles[0]
        assert title == f"thinking · {row['reasoning_tokens']} tokens · {thinking_s:.2f} s"
        assert row["reasoning_tokens"] >= 1
        assert _cell(col, "ttfa") == f"{row['ttfa_s']:.2f} s"

        other = panel.columns[plain.name]
        assert other.row is not None and other.row["reasoning"] == ""
        assert other.thinking.layout.display == "none"
        assert "wb-ttfa" not in other.metrics.value
        # The latency figure has each model's first answer next to its first token.
        ttft_fig = panel.figures["ttft"]
        assert {x for t in ttft_fig.data for x in t.x} == {"first token", "first answer"}
    finally:
        seen_thinking.set()
        panel.close()


def test_a_column_moves_what_looked_like_the_answer_into_the_thinking() -> None:
    col = ModelColumn("m", max_redraws_per_s=1e9)
    col.start(cold=False)
    col.add("Let me see")
    assert col.text == "Let me see" and col.thinking.layout.display == "none"
    col.add("Let me see, 2 + 2", reasoning=True, moved=True)  # a closing marker came
    assert col.text == "" and col.reasoning == "Let me see, 2 + 2"
    assert col.reasoning_chunks == 2
    assert col.thinking.layout.display != "none" and "thinking…" in col.body.value
    col.add("4")
    assert col.text == "4" and "thinking ·" in col.thinking.titles[0]


def test_thinking_cut_by_max_tokens_says_there_is_no_answer() -> None:
    col = ModelColumn("m", max_redraws_per_s=1e9)
    col.start()
    col.add("Hmm", reasoning=True)
    row = {
        "finish_reason": "length",
        "ttft_s": 0.1,
        "ttfa_s": None,
        "total_s": 1.6,
        "reasoning_tokens": 40,
        "completion_tokens": 40,
    }
    comp = Completion(text="", reasoning="Hmm, let me", finish_reason="length")
    col.finish(ResponseFinished("m", "adhoc", 0, row, comp))
    assert col.thinking.titles[0] == "thinking · 40 tokens · 1.50 s, no answer"
    assert "no answer" in col.body.value
    assert _cell(col, "ttfa") == "–"


# --------------------------------------------------------------------------- base models


def test_base_models_are_labelled_next_to_their_name(
    models: list[ModelRef], store: RunStore
) -> None:
    panel = ComparePanel(models=models, store=store, config=_config())
    try:
        modes = {m.name: panel.prompt_mode(m.name) for m in models}
        # The bundled Gemma 3 270M is the pretrained base model (no chat template).
        assert modes == {
            m.name: ("completion" if m.name.startswith("gemma") else "chat") for m in models
        }
    finally:
        panel.close()
    base = ModelColumn("gemma", mode="completion")
    chat = ModelColumn("smollm", mode="chat")
    assert BASE_MODEL_LABEL in base.header.value and "wb-base-model" in base.header.value
    assert BASE_MODEL_LABEL not in chat.header.value
    # The row's prompt_mode is what counts once the model ran.
    unknown = ModelColumn("x", mode=None)
    row = {"finish_reason": "stop", "ttft_s": 0.1, "completion_tokens": 1}
    comp = Completion(text="a", prompt_mode="completion")
    unknown.finish(ResponseFinished("x", "adhoc", 0, row, comp))
    assert BASE_MODEL_LABEL in unknown.header.value


# --------------------------------------------------------------------------- chat mode


def test_chat_mode_sends_each_model_its_own_history(
    scripted: ScriptedServer, store: RunStore
) -> None:
    """Two served models: each answers with its name and the turn; what each received
    (the request bodies, and the rows' history) holds its own earlier answers only."""

    def script(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        users = sum(m["role"] == "user" for m in body["messages"])
        sse_headers(h)
        if body["model"] == "alpha":  # alpha thinks; its thinking stays out of its history
            sse(h, chunk(delta={"reasoning_content": f"alpha ponders {users}"}))
        sse(h, chunk(f"{body['model']} says {users}"))
        sse(h, chunk(finish="stop"))
        sse(h, "[DONE]")

    scripted.script = script
    alpha = endpoint_ref(f"{scripted.base_url}#alpha")
    beta = endpoint_ref(f"{scripted.base_url}#beta")
    panel = ComparePanel(models=[alpha, beta], store=store, config=_config())
    try:
        assert panel.new_chat_button.disabled  # nothing to reset yet
        panel.mode.value = "chat"
        panel.system_prompt.value = "Be brief."
        panel.prompt.value = "First question"
        panel.run_button.click()
        assert panel.wait(30) and panel.last_error is None
        assert panel.prompt.value == ""  # ready for the follow-up
        assert panel.model_select.disabled and panel.system_prompt.disabled
        assert not panel.new_chat_button.disabled
        assert "turn 1" in panel.columns[alpha.name].header.value

        panel.prompt.value = "Second question"
        panel.temperature.value = 0.5  # sampling may change between turns
        panel.run_button.click()
        assert panel.wait(30) and panel.last_error is None

        sent = {(b["model"], sum(m["role"] == "user" for m in b["messages"])): b
                for _, b in scripted.requests}  # fmt: skip
        for model in ("alpha", "beta"):
            assert sent[(model, 2)]["messages"] == [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "First question"},
                {"role": "assistant", "content": f"{model} says 1"},
                {"role": "user", "content": "Second question"},
            ]
            assert sent[(model, 2)]["temperature"] == 0.5

        rows = store.load().sort("created_at")
        assert rows["conversation_id"].n_unique() == 1
        assert rows["conversation_id"][0] == panel.conversation.id  # type: ignore[union-attr]
        assert rows["turn"].to_list() == [1, 1, 2, 2]
        assert rows["system_prompt"].to_list() == ["Be brief."] * 4
        for r in rows.filter(pl.col("turn") == 2).iter_rows(named=True):
            own = r["model"].split("@")[0]
            assert json.loads(r["history"]) == [
                {"role": "user", "content": "First question"},
                {"role": "assistant", "content": f"{own} says 1"},
            ]
        assert rows.filter(pl.col("turn") == 1)["history"].to_list() == [None, None]

        # Each column shows its own model's conversation, ending with this turn's prompt.
        col = panel.columns[beta.name]
        assert "turn 2" in col.header.value
        assert "beta says 1" in col.history.value and "alpha says 1" not in col.history.value
        assert col.history.value.index("First question") < col.history.value.index(
            "Second question"
        )
        assert panel.conversation is not None
        assert panel.conversation.history(alpha.name)[-1] == Message("assistant", "alpha says 2")

        # New chat: unlocked controls, and the next prompt is turn 1 of another conversation.
        assert panel.new_chat()
        assert panel.conversation is None and panel.columns == {}
        assert not panel.model_select.disabled and not panel.system_prompt.disabled
        assert panel.new_chat_button.disabled
        panel.model_select.value = (beta.name,)
        panel.prompt.value = "A new topic"
        panel.run_button.click()
        assert panel.wait(30) and panel.last_error is None
        last = panel.rows[-1]
        assert last["model"] == beta.name and last["turn"] == 1 and last["history"] is None
        assert last["conversation_id"] not in rows["conversation_id"].to_list()
        assert sent_last_messages(scripted) == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "A new topic"},
        ]

        # Back to single prompts: no conversation, the prompt stays in its box.
        panel.mode.value = "prompt"
        panel.prompt.value = "Alone"
        panel.run_button.click()
        assert panel.wait(30)
        assert panel.rows[-1]["conversation_id"] is None and panel.rows[-1]["turn"] == 1
        assert panel.prompt.value == "Alone" and panel.conversation is None
    finally:
        panel.close()


def sent_last_messages(scripted: ScriptedServer) -> list[dict[str, str]]:
    return list(scripted.requests[-1][1]["messages"])


@pytest.mark.slow
def test_a_two_turn_chat_with_the_bundled_models_keeps_each_models_history(
    models: list[ModelRef], store: RunStore
) -> None:
    panel = ComparePanel(models=models, store=store, config=_config(max_tokens=8))
    try:
        panel.mode.value = "chat"
        panel.prompt.value = "Name a colour."
        panel.run_button.click()
        assert panel.wait(RUN_TIMEOUT_S) and panel.last_error is None
        first = {n: c.text for n, c in panel.columns.items()}
        assert all(t.strip() for t in first.values()), first
        panel.prompt.value = "Name another one."
        panel.run_button.click()
        assert panel.wait(RUN_TIMEOUT_S) and panel.last_error is None

        rows = store.load()
        assert rows.height == 4 and rows["conversation_id"].n_unique() == 1
        for r in rows.filter(pl.col("turn") == 2).iter_rows(named=True):
            assert json.loads(r["history"]) == [
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": first[r["model"]]},  # its own answer
            ]
        modes = dict(zip(rows["model"], rows["prompt_mode"], strict=False))
        for name, col in panel.columns.items():
            base = name.startswith("gemma")
            assert modes[name] == ("completion" if base else "chat")
            assert (BASE_MODEL_LABEL in col.header.value) is base
            assert html.escape(first[name].strip()) in col.history.value
    finally:
        panel.close()
