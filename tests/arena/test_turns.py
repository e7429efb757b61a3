"""The arena with thinking models and follow-up turns: the thinking hidden or shown
collapsed (never when it names a model), each model continuing its own conversation, the
turns stored with the vote, and the "base model" label only after the vote.

Two models served by a scripted OpenAI-compatible server on 127.0.0.1 answer as the model
the request names, so a test can read what each model was sent: ``north`` streams its
thinking as ``reasoning_content`` deltas (llama-server's reasoning format), ``south``
inline in ``<think>`` tags (a server without a reasoning parser).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.helpers.sse_server import ScriptedServer, chunk, sse, sse_headers
from workbench.arena.battles import NAMED, AnswerPool, Arena, ArenaError
from workbench.arena.study import load_study
from workbench.arena.votes import VoteRejected
from workbench.store import load_runs

from .helpers import GEN, write_study

STYLE = {"north": "calm", "south": "brisk"}


def _last_user(body: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


class Models:
    """The server's script: ``Answer <n>, <style>.`` where n counts the user messages.
    A follow-up asking "who are you" makes north name itself (every time; with "once" in
    it, only the first time); "secret" makes north's thinking name itself."""

    def __init__(self) -> None:
        self.asked: dict[str, int] = {}

    def __call__(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model, last = body["model"], _last_user(body)
        n = sum(m["role"] == "user" for m in body["messages"])
        key = f"{model}|{last}"
        self.asked[key] = self.asked.get(key, 0) + 1
        answer = f"Answer {n}, {STYLE[model]}."
        named = "who are you" in last and ("once" not in last or self.asked[key] == 1)
        if model == "north" and named:
            answer = "I am Qwen, made by Alibaba."
        sse_headers(h)
        if model == "north":
            thought = "I am Qwen, thinking." if "secret" in last else f"Consider turn {n}."
            # markup and a zero-width space: cleaned like an answer before a rater sees it
            for piece in ("<b>", thought[:5], "</b>", thought[5:] + "\u200b"):
                sse(h, chunk(delta={"reasoning_content": piece}))
            sse(h, chunk(answer))
        else:
            sse(h, chunk("<think>"))
            sse(h, chunk(f"Weigh turn {n}."))
            sse(h, chunk(f"</think>\n\n{answer}"))
        sse(h, chunk(finish="stop"))
        sse(h, "[DONE]")


@pytest.fixture()
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    s.script = Models()
    yield s
    s.close()


def _arena(tmp_path: Path, server: ScriptedServer, top: str = "") -> Arena:
    models = [f"{server.base_url}#north", f"{server.base_url}#south"]
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "runs"
    study = load_study(
        write_study(tmp_path, models=models, free_prompts=True, runs_root=root, extra_top=top)
    )
    return Arena(study, seed=0)


def _side(arena: Arena, battle_id: str, model: str) -> str:
    record = arena.store.get_battle(battle_id)
    assert record is not None
    return "a" if record.model_a.startswith(f"{model}@") else "b"


def _sent(server: ScriptedServer, model: str) -> list[list[dict[str, str]]]:
    return [body["messages"] for _, body in server.requests if body["model"] == model]


def test_thinking_is_hidden_by_default_and_kept(tmp_path: Path, server: ScriptedServer) -> None:
    arena = _arena(tmp_path, server)
    alice = arena.authenticate("alice-secret-1")
    view = arena.new_battle(alice)
    assert (view.reasoning_a, view.reasoning_b) == ("", "")
    assert view.as_dict()["reasoning_a"] == "" and "turn" not in view.answer_a
    record = arena.store.get_battle(view.battle_id)
    assert record is not None and (record.reasoning_a, record.reasoning_b) == ("", "")
    raw = {record.raw_reasoning_a, record.raw_reasoning_b}
    assert raw == {"<b>Consider turn 1.\u200b</b>", "Weigh turn 1."} or raw == {
        "<b>Consi</b>der turn 1.\u200b",
        "Weigh turn 1.",
    }
    assert {record.answer_a, record.answer_b} == {"Answer 1, calm.", "Answer 1, brisk."}
    arena.close()


def test_thinking_shown_collapsed_is_cleaned_and_withheld_when_it_names_a_model(
    tmp_path: Path, server: ScriptedServer
) -> None:
    arena = _arena(tmp_path, server, 'show_thinking = "collapsed"\nmax_turns = 2')
    alice = arena.authenticate("alice-secret-1")
    view = arena.new_battle(alice, "Pick a number.")
    north = _side(arena, view.battle_id, "north")
    shown = {"a": view.reasoning_a, "b": view.reasoning_b}
    assert shown[north] == "Consider turn 1."  # tags and the zero-width space removed
    assert shown["b" if north == "a" else "a"] == "Weigh turn 1."
    # A follow-up whose thinking names a model: no thinking is shown on either side (one
    # block missing would point at the side that named itself), but it is kept.
    after = arena.follow_up(alice, view.battle_id, "Tell me a secret.")
    assert (after.reasoning_a, after.reasoning_b) == ("", "") and after.turn == 2
    record = arena.store.get_battle(view.battle_id)
    assert record is not None and record.reasoning_a == view.reasoning_a
    turn = record.follow_ups[0]
    raw = turn.raw_reasoning_a if north == "a" else turn.raw_reasoning_b
    assert "Qwen" in raw and "Qwen" not in turn.reasoning_a + turn.reasoning_b
    # A first answer whose thinking names a model is withheld the same way.
    secret = arena.new_battle(alice, "A secret, please.")
    assert (secret.reasoning_a, secret.reasoning_b) == ("", "")
    record = arena.store.get_battle(secret.battle_id)
    assert record is not None and "Qwen" in f"{record.raw_reasoning_a}{record.raw_reasoning_b}"
    arena.close()


def test_follow_ups_continue_each_models_own_conversation(
    tmp_path: Path, server: ScriptedServer
) -> None:
    arena = _arena(tmp_path, server, "max_turns = 3")
    alice = arena.authenticate("alice-secret-1")
    view = arena.new_battle(alice, "Name a colour.")
    assert (view.turn, view.max_turns, view.earlier) == (1, 3, ())
    second = arena.follow_up(alice, view.battle_id, "  And a fruit?  ")
    assert (second.turn, second.prompt, second.battle_id) == (2, "And a fruit?", view.battle_id)
    assert [t.as_dict() for t in second.earlier] == [
        {"prompt": "Name a colour.", "answer_a": view.answer_a, "answer_b": view.answer_b}
    ]
    third = arena.follow_up(alice, view.battle_id, "And a tree?")
    assert third.turn == 3 and len(third.earlier) == 2
    for model, style in STYLE.items():
        side = _side(arena, view.battle_id, model)
        assert getattr(third, f"answer_{side}") == f"Answer 3, {style}."
        assert _sent(server, model)[-1] == [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": f"Answer 1, {style}."},  # its own answers only
            {"role": "user", "content": "And a fruit?"},
            {"role": "assistant", "content": f"Answer 2, {style}."},
            {"role": "user", "content": "And a tree?"},
        ]
    with pytest.raises(ArenaError, match="had its 3 turns"):
        arena.follow_up(alice, view.battle_id, "One more?")
    out = arena.vote(alice, view.battle_id, "A", "")
    assert arena.votes()["turns"].to_list() == [3] and not out.flagged
    record = arena.store.get_battle(view.battle_id)
    assert record is not None and [t.turn for t in record.follow_ups] == [2, 3]
    assert record.follow_ups[1].answer_a == third.answer_a
    with pytest.raises(VoteRejected, match="already has your vote"):
        arena.follow_up(alice, view.battle_id, "After the vote?")
    # The follow-up rows are stored as a conversation, and never pooled for a new battle.
    runs = load_runs(tmp_path / "runs")
    later = runs.filter(pl.col("turn") > 1)
    assert later.height == 4 and set(later["conversation_id"]) == {view.battle_id}
    pool = AnswerPool.from_runs(runs, arena.study.generation, arena.study.model_names)
    assert len(pool) == 2 and pool.has("Name a colour.", arena.study.model_names)
    assert arena.generating == 0
    arena.close()


def test_a_follow_up_answer_naming_a_model_is_regenerated_once_then_refused(
    tmp_path: Path, server: ScriptedServer
) -> None:
    arena = _arena(tmp_path, server, "max_turns = 4")
    alice = arena.authenticate("alice-secret-1")
    view = arena.new_battle(alice, "Say hi.")
    with pytest.raises(ArenaError) as e:
        arena.follow_up(alice, view.battle_id, "Now, who are you?")
    assert str(e.value) == NAMED
    assert not any(m in str(e.value) for m in ("Qwen", "north", "south"))
    script = server.script
    assert isinstance(script, Models) and script.asked["north|Now, who are you?"] == 2
    record = arena.store.get_battle(view.battle_id)
    assert record is not None and record.turns == 1  # nothing shown, nothing stored
    # Named the first time only: the second answer is shown, the first never.
    after = arena.follow_up(alice, view.battle_id, "who are you (once)?")
    assert script.asked["north|who are you (once)?"] == 2
    assert after.turn == 2 and "Qwen" not in after.answer_a + after.answer_b
    assert arena.generating == 0
    arena.close()


def test_follow_up_refusals_are_one_line(tmp_path: Path, server: ScriptedServer) -> None:
    single = _arena(tmp_path / "one", server)
    alice = single.authenticate("alice-secret-1")
    view = single.new_battle(alice)
    with pytest.raises(ArenaError, match="takes no follow-up turns"):
        single.follow_up(alice, view.battle_id, "More?")
    single.close()

    arena = _arena(tmp_path / "two", server, "max_turns = 2")
    alice, bob = arena.authenticate("alice-secret-1"), arena.authenticate("bob-secret-22")
    view = arena.new_battle(alice)
    requests = len(server.requests)
    for who, bid, text, message in (
        (alice, view.battle_id, "   ", "empty"),
        (alice, view.battle_id, None, "empty"),
        (alice, view.battle_id, "x" * 2001, "too long"),
        (alice, view.battle_id, "bad \ud800", "not text"),
        (alice, "no-such-battle", "More?", "unknown battle"),
        (alice, "bad \ud800", "More?", "unknown battle"),
        (bob, view.battle_id, "More?", "unknown battle"),
    ):
        with pytest.raises(ArenaError, match=message) as e:
            arena.follow_up(who, bid, text)
        assert "\n" not in str(e.value)
    assert len(server.requests) == requests and arena.generating == 0
    arena.skip(alice, view.battle_id)
    with pytest.raises(VoteRejected, match="skipped"):
        arena.follow_up(alice, view.battle_id, "More?")
    arena.close()


def test_pool_keeps_the_thinking_beside_the_answer() -> None:
    from .helpers import fake_runs

    runs = fake_runs(per=1).with_columns(reasoning=pl.lit("<i>Step</i> one."))
    pool = AnswerPool.from_runs(runs, GEN, runs["model"].unique().to_list())
    answer = pool.answers(runs["prompt"][0], runs["model"][0])[0]
    assert (answer.reasoning, answer.raw_reasoning) == ("Step one.", "<i>Step</i> one.")
    # Answers made with another thinking setting than the study's are not pooled.
    off = runs.with_columns(thinking=pl.lit("off"))
    assert len(AnswerPool.from_runs(off, GEN, off["model"].unique().to_list())) == 0
    on = replace(GEN, thinking="on")
    assert len(AnswerPool.from_runs(off, on, off["model"].unique().to_list())) == 0
    assert len(AnswerPool.from_runs(runs, on, runs["model"].unique().to_list())) == 0
    assert len(AnswerPool.from_runs(off, replace(GEN, thinking="off"), list(set(off["model"])))) > 0


@pytest.mark.slow  # starts a Gradio server
def test_follow_up_through_the_api(
    tmp_path: Path, server: ScriptedServer, launched: list[object]
) -> None:
    from gradio_client import Client

    from workbench.arena.app import build_app

    from .helpers import free_port

    arena = _arena(tmp_path, server, 'max_turns = 2\nshow_thinking = "collapsed"')
    app = build_app(arena.study, arena=arena)
    launched.append(app)
    port = free_port()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    first = client.predict("alice-secret-1", "Name a colour.", api_name="/new_battle")
    assert first["turn"] == 1 and first["max_turns"] == 2
    assert {first["reasoning_a"], first["reasoning_b"]} == {"Consider turn 1.", "Weigh turn 1."}
    bid = first["battle_id"]
    second = client.predict("alice-secret-1", bid, "And a fruit?", api_name="/follow_up")
    assert (second["turn"], second["prompt"], second["battle_id"]) == (2, "And a fruit?", bid)
    assert second["earlier"] == [
        {"prompt": "Name a colour.", "answer_a": first["answer_a"], "answer_b": first["answer_b"]}
    ]
    assert not any(n in str(second) for n in ("north", "south", "base model"))
    out = client.predict("alice-secret-1", bid, "tie", "", api_name="/vote")
    assert (out["label_a"], out["label_b"]) == (out["model_a"], out["model_b"])  # both chat
    assert arena.votes()["turns"].to_list() == [2]
