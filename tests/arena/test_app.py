"""The Gradio app through its two named API endpoints, and the admin leaderboard frames."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from workbench.arena.app import build_app
from workbench.arena.auth import Throttle
from workbench.arena.battles import Arena
from workbench.arena.leaderboard import leaderboard_view
from workbench.arena.study import StudyError, load_study
from workbench.arena.votes import VoteStore
from workbench.errors import ArenaError

from .helpers import BUNDLED, api_call, fake_runs, free_port, need_models, write_study


def _serve(
    tmp_path: Path, launched: list[object], app_kw: dict[str, Any] | None = None, **kw: object
) -> tuple[object, str]:
    need_models()
    study = load_study(write_study(tmp_path, pool_only=True, runs_root=tmp_path, **kw))  # type: ignore[arg-type]
    app = build_app(study, arena=Arena(study, runs=fake_runs(), seed=0), **(app_kw or {}))
    launched.append(app)
    port = free_port()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    return app, f"http://127.0.0.1:{port}/"


def _db(app: object) -> list[tuple[object, ...]]:
    path = app.arena.study.votes_db  # type: ignore[attr-defined]
    with sqlite3.connect(path) as c:
        return (
            c.execute("SELECT * FROM votes").fetchall()
            + c.execute("SELECT battle_id, status FROM battles ORDER BY battle_id").fetchall()
        )


@pytest.mark.slow
def test_api_battle_then_vote(tmp_path: Path, launched: list[object]) -> None:
    from gradio_client import Client

    app, url = _serve(tmp_path, launched)
    client = Client(url, verbose=False)
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/new_battle",
        "/follow_up",
        "/vote",
        "/skip",
    }
    battle = client.predict("alice-secret-1", api_name="/new_battle")
    assert set(battle) >= {"battle_id", "prompt", "answer_a", "answer_b", "turn", "max_turns"}
    assert not any(name in str(battle) for name in (*BUNDLED, "base model"))
    assert (battle["reasoning_a"], battle["reasoning_b"]) == ("", "")
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="takes no follow-up turns"):
        client.predict("alice-secret-1", battle["battle_id"], "More?", api_name="/follow_up")
    out = client.predict("alice-secret-1", battle["battle_id"], "bothbad", "meh", api_name="/vote")
    assert out["status"] == "recorded" and {out["model_a"], out["model_b"]} == set(BUNDLED)
    assert out["winner"] == "tie (bothbad)"
    # The pretrained base model (no chat template) is labelled, after the vote only.
    labels = {out["model_a"]: out["label_a"], out["model_b"]: out["label_b"]}
    assert labels == {BUNDLED[0]: f"{BUNDLED[0]} (base model)", BUNDLED[1]: BUNDLED[1]}
    votes = app.arena.votes()  # type: ignore[attr-defined]
    assert votes.height == 1 and votes["reason"][0] == "meh" and votes["rater"][0] == "alice"


@pytest.mark.slow
def test_bad_input_changes_nothing(
    tmp_path: Path, launched: list[object], capfd: pytest.CaptureFixture[str]
) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    app, url = _serve(tmp_path, launched)
    client = Client(url, verbose=False)
    done = client.predict("alice-secret-1", api_name="/new_battle")["battle_id"]
    client.predict("alice-secret-1", done, "A", "", api_name="/vote")
    open_id = client.predict("alice-secret-1", api_name="/new_battle")["battle_id"]
    before = _db(app)
    cases = [
        (("wrong-token-123",), "/new_battle", "unknown token"),
        (("wrong-token-123", open_id, "A", ""), "/vote", "unknown token"),
        (("alice-secret-1", "no-such-battle", "A", ""), "/vote", "unknown battle"),
        (("alice-secret-1", done, "B", ""), "/vote", "already has your vote"),
        (("bob-secret-22", open_id, "A", ""), "/vote", "unknown battle"),
        (("alice-secret-1", open_id, "A", "x" * 201), "/vote", "too long"),
        (("alice-secret-1", open_id, "maybe", ""), "/vote", "unknown choice"),
    ]
    for args, endpoint, message in cases:
        with pytest.raises(AppError, match=message):
            client.predict(*args, api_name=endpoint)
    assert _db(app) == before
    # a refused call is the rater's mistake, not the server's: no traceback in the log
    assert "Traceback" not in capfd.readouterr().err
    # the open battle still takes its one vote
    client.predict("alice-secret-1", open_id, "A", "", api_name="/vote")
    assert app.arena.store.count_votes() == 2  # type: ignore[attr-defined]


@pytest.mark.slow
def test_token_guessing_locks_the_address_out(tmp_path: Path, launched: list[object]) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    app, url = _serve(tmp_path, launched, app_kw={"max_token_failures": 3, "lockout_s": 8.0})
    client = Client(url, verbose=False)
    for guess in ("guess-0001", "guess-0002", "guess-0003"):
        with pytest.raises(AppError, match="unknown token"):
            client.predict(guess, api_name="/new_battle")
    # locked out: even the right token is refused, on both endpoints
    with pytest.raises(AppError, match="too many unknown tokens"):
        client.predict("alice-secret-1", api_name="/new_battle")
    with pytest.raises(AppError, match="too many unknown tokens"):
        client.predict("alice-secret-1", "x", "A", "", api_name="/vote")
    assert app.arena.store.count_battles() == 0  # type: ignore[attr-defined]
    time.sleep(8.1)
    battle = client.predict("alice-secret-1", api_name="/new_battle")
    assert battle["battle_id"]


def test_throttle_counts_failures_in_a_sliding_window(tmp_path: Path) -> None:
    now = [0.0]
    store = VoteStore(tmp_path / "votes.sqlite")
    t = Throttle(3, window_s=60, lockout_s=30, clock=lambda: now[0], store=store)
    t.failed("a")
    now[0] = 50
    t.failed("a")
    now[0] = 70  # the first failure has left the window
    t.failed("a")
    t.check("a")
    t.failed("b")  # other addresses are counted apart
    t.check("b")
    t.failed("a")  # three within the window now
    with pytest.raises(ArenaError, match="try again in 30 s"):
        t.check("a")
    now[0] = 101
    t.check("a")


@pytest.mark.slow
def test_demo_tokens_refuse_a_public_address(tmp_path: Path) -> None:
    need_models()
    path = write_study(tmp_path, raters=[("demo", "demo-token", "rater")])
    app = build_app(str(path))
    with pytest.raises(StudyError, match=r"refusing to listen on 0\.0\.0\.0"):
        app.launch(server_name="0.0.0.0", server_port=free_port(), prevent_thread_lock=True)
    assert not app.is_running
    app.arena.close()


def test_leaderboard_view_filters_and_flags(tmp_path: Path) -> None:
    votes = pl.DataFrame(
        {
            "model_a": ["m1", "m1", "m2", "m1", "m2"],
            "model_b": ["m2", "m2", "m1", "m2", "m1"],
            "winner": ["model_a", "model_a", "model_b", "tie", "model_a"],
            "category": ["math", "math", "code", "code", "math"],
            "language": ["en", "de", "en", "en", "en"],
            "flagged": [False, False, False, False, True],
        }
    )
    view = leaderboard_view(votes, bootstrap=10)
    assert view.votes == 4 and view.flagged == 1
    assert view.board["model"].to_list()[0] == "m1"
    assert view.board["battles"].sum() == 8
    assert view.categories == ["code", "math"] and view.languages == ["de", "en"]
    assert leaderboard_view(votes, include_flagged=True, bootstrap=10).votes == 5
    assert leaderboard_view(votes, category="math", bootstrap=10).votes == 2
    assert leaderboard_view(votes, category="math", language="de", bootstrap=10).votes == 1
    empty = leaderboard_view(votes, category="none", bootstrap=10)
    assert empty.votes == 0 and empty.board.height == 0
    assert set(view.elo["model"]) == {"m1", "m2"}
    assert view.matrix.columns[0] == "model"
    labelled = leaderboard_view(votes, bootstrap=10, labels={"m2": "m2 (base model)"})
    assert set(labelled.board["model"]) == set(labelled.elo["model"]) == {"m1", "m2 (base model)"}
    assert "m2 (base model)" in labelled.matrix.columns


@pytest.mark.slow  # starts a Gradio server
def test_bad_input_over_http_is_one_line(
    tmp_path: Path, launched: list[object], capfd: pytest.CaptureFixture[str]
) -> None:
    """A list or dict as the choice, a lone surrogate in the reason or prompt: a message,
    no server traceback, nothing written."""
    app, url = _serve(tmp_path, launched)
    kind, battle = api_call(url, "new_battle", "alice-secret-1", "")
    assert kind == "complete"
    bid = battle["battle_id"]  # type: ignore[index]
    before = _db(app)
    cases = [
        (("alice-secret-1", bid, ["A"], ""), "unknown choice of type list"),
        (("alice-secret-1", bid, {"A": 1}, ""), "unknown choice of type dict"),
        (("alice-secret-1", bid, "A", "bad \ud800 reason"), "not text"),
        (("alice-secret-1", bid, "A", {"r": 1}), "must be text"),
        (("alice-secret-1", [bid], "A", ""), "unknown battle"),
    ]
    for args, message in cases:
        kind, text = api_call(url, "vote", *args)
        assert kind == "error" and message in str(text), (args, text)
    kind, text = api_call(url, "new_battle", "alice-secret-1", "my \udfff prompt")
    assert kind == "error" and "not text" in str(text)
    assert _db(app) == before
    assert "Traceback" not in capfd.readouterr().err
    assert api_call(url, "vote", "alice-secret-1", bid, "A", "ok")[0] == "complete"


@pytest.mark.slow  # starts a Gradio server
def test_uploads_are_refused(tmp_path: Path, launched: list[object]) -> None:
    import httpx

    _, url = _serve(tmp_path, launched)
    files = {"files": ("big.bin", b"x" * (5 * 2**20), "application/octet-stream")}
    r = httpx.post(f"{url}gradio_api/upload", files=files, timeout=120)
    assert r.status_code == 413, r.text
    small = {"files": ("a.txt", b"a", "text/plain")}
    assert httpx.post(f"{url}gradio_api/upload", files=small, timeout=60).status_code == 413


@pytest.mark.slow  # starts a Gradio server
def test_forwarded_for_does_not_escape_the_lockout(tmp_path: Path, launched: list[object]) -> None:
    """Twelve wrong tokens from loopback, each claiming another address: still locked out."""
    _, url = _serve(tmp_path, launched)
    for i in range(12):
        kind, text = api_call(
            url, "new_battle", f"guess-{i:04d}", "", headers={"X-Forwarded-For": f"198.51.100.{i}"}
        )
        assert kind == "error"
    for headers in ({}, {"X-Forwarded-For": "203.0.113.77"}):
        kind, text = api_call(url, "new_battle", "alice-secret-1", "", headers=headers)
        assert kind == "error" and "too many unknown tokens" in str(text), (headers, text)


@pytest.mark.slow  # starts a Gradio server
def test_trusted_proxy_counts_clients_apart(tmp_path: Path, launched: list[object]) -> None:
    """Behind a proxy the study names, the lockout is per real client, and a demo token
    from a client elsewhere is refused."""
    _, url = _serve(
        tmp_path,
        launched,
        extra_top='trusted_proxies = ["127.0.0.1"]',
        raters=[("alice", "alice-secret-1", "rater"), ("demo", "demo-token", "rater")],
    )
    guesser = {"X-Forwarded-For": "198.51.100.9"}
    for i in range(10):
        assert api_call(url, "new_battle", f"guess-{i:04d}", "", headers=guesser)[0] == "error"
    kind, text = api_call(url, "new_battle", "alice-secret-1", "", headers=guesser)
    assert "too many unknown tokens" in str(text)
    other = {"X-Forwarded-For": "198.51.100.10"}
    assert api_call(url, "new_battle", "alice-secret-1", "", headers=other)[0] == "complete"
    kind, text = api_call(url, "new_battle", "demo-token", "", headers=other)
    assert kind == "error" and "demo tokens work only" in str(text)
    assert api_call(url, "new_battle", "demo-token", "")[0] == "complete"  # from loopback


@pytest.mark.slow  # starts a Gradio server
def test_demo_tokens_refused_through_an_untrusted_proxy(
    tmp_path: Path, launched: list[object]
) -> None:
    _, url = _serve(tmp_path, launched, raters=[("demo", "demo-token", "rater")])
    kind, text = api_call(
        url, "new_battle", "demo-token", "", headers={"X-Forwarded-For": "1.2.3.4"}
    )
    assert kind == "error" and "demo tokens work only" in str(text)
    assert api_call(url, "new_battle", "demo-token", "")[0] == "complete"


@pytest.mark.slow  # starts a Gradio server
def test_share_with_demo_tokens_is_refused(tmp_path: Path) -> None:
    need_models()
    app = build_app(str(write_study(tmp_path, raters=[("demo", "demo-token", "rater")])))
    with pytest.raises(StudyError, match="refusing to share"):
        app.launch(share=True, server_port=free_port(), prevent_thread_lock=True)
    assert not app.is_running
    app.arena.close()


@pytest.mark.slow  # starts a Gradio server
def test_a_vote_completes_while_generation_is_saturated(
    tmp_path: Path, launched: list[object]
) -> None:
    """Another rater fires 70 free-prompt battles at once (more than Gradio's 64 threads):
    alice's vote still completes while their answers are being generated."""
    import threading

    from workbench.backends.base import GenerationConfig

    need_models()
    gen = GenerationConfig(temperature=0.7, max_tokens=64, n_ctx=512)
    study = load_study(write_study(tmp_path, free_prompts=True, max_tokens=64))
    app = build_app(study, arena=Arena(study, runs=fake_runs(config=gen), seed=0))
    launched.append(app)
    port = free_port()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    arena: Arena = app.arena  # type: ignore[attr-defined]

    kind, battle = api_call(url, "new_battle", "alice-secret-1", "")  # pooled: at once
    assert kind == "complete"
    # Generation waits at a gate until the vote is back, so the vote is timed against
    # generation that is certainly in progress, on a fast machine too; then it runs.
    gate = threading.Event()
    generate = arena._generate

    def held(*args: Any, **kwargs: Any) -> Any:
        gate.wait(timeout=300)
        return generate(*args, **kwargs)

    arena._generate = held  # type: ignore[method-assign]
    results: list[tuple[str, object]] = []

    def flood(i: int) -> None:
        results.append(
            api_call(url, "new_battle", "bob-secret-22", f"Write a long story, number {i}.")
        )

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(70)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while arena.generating == 0:
        assert time.monotonic() < deadline, "generation never started"
        time.sleep(0.05)
    try:
        bid = battle["battle_id"]  # type: ignore[index]
        kind, out = api_call(url, "vote", "alice-secret-1", bid, "A", "", timeout=60)
        still_generating = arena.generating
    finally:
        gate.set()
    assert kind == "complete" and out["status"] == "recorded"  # type: ignore[index]
    assert still_generating > 0, "the vote waited until generation was over"
    for t in threads:
        t.join(timeout=600)
    refused = [str(text) for kind, text in results if kind == "error"]
    assert len(results) == 70 and len(refused) >= 68
    assert all("open battle" in e or "busy" in e for e in refused), set(refused)
