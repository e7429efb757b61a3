"""The Gradio app through its two named API endpoints, and the admin leaderboard frames."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from workbench.arena.app import build_app, leaderboard_view
from workbench.arena.battles import Arena
from workbench.arena.study import StudyError, load_study

from .helpers import BUNDLED, fake_runs, free_port, need_models, write_study


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
        "/vote",
    }
    battle = client.predict("alice-secret-1", api_name="/new_battle")
    assert set(battle) >= {"battle_id", "prompt", "answer_a", "answer_b"}
    assert not any(name in str(battle) for name in BUNDLED)
    out = client.predict("alice-secret-1", battle["battle_id"], "bothbad", "meh", api_name="/vote")
    assert out["status"] == "recorded" and {out["model_a"], out["model_b"]} == set(BUNDLED)
    assert out["winner"] == "tie (bothbad)"
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

    app, url = _serve(tmp_path, launched, app_kw={"max_token_failures": 3, "lockout_s": 2.0})
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
    time.sleep(2.1)
    battle = client.predict("alice-secret-1", api_name="/new_battle")
    assert battle["battle_id"]


def test_throttle_counts_failures_in_a_sliding_window() -> None:
    from workbench.arena.app import _Throttle
    from workbench.arena.battles import ArenaError

    now = [0.0]
    t = _Throttle(3, window_s=60, lockout_s=30, clock=lambda: now[0])
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
