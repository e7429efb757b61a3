"""The SQLite votes store: durable, exactly-once, rejections change nothing."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from workbench.arena.votes import (
    BattleRecord,
    FollowUp,
    PlanState,
    Reservation,
    VoteRejected,
    VoteStore,
)
from workbench.ratings import leaderboard, read_votes


def battle(
    bid: str, rater: str = "alice", flags: tuple[str, ...] = (), **kw: object
) -> BattleRecord:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "battle_id": bid,
        "study": "t",
        "rater": rater,
        "model_a": "m1",
        "model_b": "m2",
        "swapped": False,
        "prompt": "p?",
        "answer_a": "a",
        "answer_b": "b",
        "prompt_id": "p1",
        "category": "math",
        "language": "en",
        "response_a_id": f"{bid}-ra",
        "response_b_id": f"{bid}-rb",
        "flags": flags,
        "created_at": now,
        "expires_at": now + timedelta(hours=1),
    }
    fields.update(kw)
    return BattleRecord(**fields)  # type: ignore[arg-type]


def dump(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as c:
        return (
            c.execute("SELECT * FROM votes ORDER BY vote_id").fetchall()
            + c.execute("SELECT battle_id, status FROM battles ORDER BY battle_id").fetchall()
        )


def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = VoteStore(tmp_path / "v.sqlite")
    with sqlite3.connect(tmp_path / "v.sqlite") as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._engine._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_a_vote_row_holds_everything(tmp_path: Path) -> None:
    store = VoteStore(tmp_path / "v.sqlite", "t")
    store.add_battle(battle("b1", swapped=True))
    out = store.record_vote("b1", "alice", "B", "  clearer  ")
    assert (out.model_a, out.model_b, out.winner) == ("m1", "m2", "model_b")
    row = store.votes_frame().row(0, named=True)
    assert row["rater"] == "alice" and row["battle_id"] == "b1"
    assert row["position_a"] == "left" and row["position_b"] == "right" and row["swapped"]
    assert row["prompt_id"] == "p1" and row["category"] == "math" and row["language"] == "en"
    assert row["response_a_id"] == "b1-ra" and row["response_b_id"] == "b1-rb"
    assert row["choice"] == "B" and row["reason"] == "clearer" and not row["flagged"]
    assert row["voted_at"] >= row["battle_created_at"]
    assert row["turns"] == 1
    assert store.get_battle("b1").status == "voted"  # type: ignore[union-attr]
    store.close()


def _turn(n: int) -> FollowUp:
    return FollowUp(n, f"more {n}?", f"a{n}", f"b{n}", f"<b>a{n}</b>", f"b{n} ", "", "why b",
                    "", "why b", f"ra{n}", f"rb{n}")  # fmt: skip


def test_follow_up_turns_are_stored_with_the_battle_and_the_vote(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    store = VoteStore(path, "t")
    store.add_battle(battle("b1", reasoning_b="thought", raw_reasoning_b="thought "))
    first = store.add_follow_up("b1", "alice", _turn(2))
    assert first.turns == 2 and first.follow_ups[0].created_at
    store.add_follow_up("b1", "alice", _turn(3))
    before = dump(path)
    for bid, rater, turn, message in (
        ("b1", "alice", _turn(3), "moved on"),  # a racing second follow-up of the same turn
        ("b1", "bob", _turn(4), "unknown battle"),
        ("nope", "alice", _turn(2), "unknown battle"),
    ):
        with pytest.raises(VoteRejected, match=message):
            store.add_follow_up(bid, rater, turn)
    assert dump(path) == before
    store.record_vote("b1", "alice", "B")
    with pytest.raises(VoteRejected, match="already has your vote"):
        store.add_follow_up("b1", "alice", _turn(4))
    store.close()
    with VoteStore(path, "t") as again:
        b = again.get_battle("b1")
        assert b is not None and b.turns == 3 and b.reasoning_b == "thought"
        assert [t.prompt for t in b.follow_ups] == ["more 2?", "more 3?"]
        assert b.follow_ups[1].raw_a == "<b>a3</b>" and b.follow_ups[1].response_b_id == "rb3"
        assert again.votes_frame()["turns"].to_list() == [3]


@pytest.mark.parametrize(
    ("choice", "winner"),
    [("A", "model_a"), ("B", "model_b"), ("tie", "tie"), ("bothbad", "tie (bothbad)")],
)
def test_choices_map_to_the_ratings_convention(tmp_path: Path, choice: str, winner: str) -> None:
    with VoteStore(tmp_path / "v.sqlite") as store:
        store.add_battle(battle("b"))
        assert store.record_vote("b", "alice", choice).winner == winner


def test_rejections_write_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    store = VoteStore(path, "t")
    store.add_battle(battle("b1"))
    store.add_battle(battle("b2", rater="bob"))
    store.add_battle(battle("old", expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    store.record_vote("b1", "alice", "A")
    before = dump(path)
    cases = [
        (("b1", "alice", "A"), {}, "already has your vote"),  # duplicate
        (("b1", "alice", "B"), {}, "already has your vote"),  # changed mind: still once
        (("nope", "alice", "A"), {}, "unknown battle"),
        (("b2", "alice", "A"), {}, "unknown battle"),  # another rater's battle
        (("old", "alice", "A"), {}, "expired"),  # late
        (("b2", "bob", "C"), {}, "unknown choice"),
        (("b2", "bob", "A", "x" * 1001), {}, "too long"),
        (("b2", "bob", "A", "x" * 11), {"max_reason_chars": 10}, "too long"),
        (("", "bob", "A"), {}, "unknown battle"),
    ]
    for args, kw, message in cases:
        with pytest.raises(VoteRejected, match=message):
            store.record_vote(*args, **kw)  # type: ignore[arg-type]
    assert dump(path) == before
    assert store.count_votes() == 1
    store.close()


def test_racing_duplicates_count_once(tmp_path: Path) -> None:
    store = VoteStore(tmp_path / "v.sqlite")
    store.add_battle(battle("b"))
    ok, rejected = [], []
    barrier = threading.Barrier(16)

    def submit() -> None:
        barrier.wait()
        try:
            ok.append(store.record_vote("b", "alice", "A"))
        except VoteRejected:
            rejected.append(1)

    threads = [threading.Thread(target=submit) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(ok), len(rejected)) == (1, 15)
    assert store.count_votes() == 1
    store.close()


def test_votes_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    with VoteStore(path) as store:
        for i in range(5):
            store.add_battle(battle(f"b{i}"))
            store.record_vote(f"b{i}", "alice", "A")
    with VoteStore(path) as store:
        assert store.count_votes() == 5
        assert store.pair_counts() == {frozenset({"m1", "m2"}): 5}
        states: list[PlanState] = []

        def decide(state: PlanState) -> Reservation:
            states.append(state)
            raise VoteRejected("only looking")

        with pytest.raises(VoteRejected):
            store.reserve("alice", decide)
        assert states[0].seen >= {"b0-ra", "b4-rb"}  # what alice saw, read by the next plan


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_export_in_the_ratings_format(tmp_path: Path, suffix: str) -> None:
    with VoteStore(tmp_path / "v.sqlite") as store:
        for i, choice in enumerate(["A", "A", "B", "tie", "bothbad"]):
            store.add_battle(battle(f"b{i}"))
            store.record_vote(f"b{i}", "alice", choice)
        store.add_battle(battle("flag", flags=("answer A names Gemma",)))
        store.record_vote("flag", "alice", "B")
        out = store.export(tmp_path / f"votes{suffix}")
        everything = store.export(tmp_path / f"all{suffix}", include_flagged=True)
    votes = read_votes(out)
    assert votes.columns[:3] == ["model_a", "model_b", "winner"]
    assert votes.height == 5  # the flagged battle is left out by default
    assert read_votes(everything).height == 6
    assert sorted(votes["winner"].to_list()) == sorted(
        ["model_a", "model_a", "model_b", "tie", "tie (bothbad)"]
    )
    board = leaderboard(votes, bootstrap=0)
    assert board.filter(pl.col("model") == "m1")["wins"].item() == 2


def test_unknown_export_format(tmp_path: Path) -> None:
    with VoteStore(tmp_path / "v.sqlite") as store, pytest.raises(ValueError, match="format"):
        store.export(tmp_path / "votes.xlsx")


def test_pair_counts_are_votes_and_open_battles(tmp_path: Path) -> None:
    """Balancing counts what will become votes: a battle left without a vote stops
    counting once it expires, so raters who skip cannot starve a pair."""
    now = datetime.now(UTC)
    with VoteStore(tmp_path / "v.sqlite") as store:
        store.add_battle(battle("voted", created_at=now - timedelta(hours=2),
                                expires_at=now - timedelta(hours=1)))  # fmt: skip
        store.record_vote("voted", "alice", "A", now=now - timedelta(hours=1, minutes=30))
        store.add_battle(battle("open", model_a="m1", model_b="m3"))
        store.add_battle(battle("skipped", model_a="m3", model_b="m2",
                                created_at=now - timedelta(hours=2),
                                expires_at=now - timedelta(hours=1)))  # fmt: skip
        assert store.pair_counts() == {frozenset({"m1", "m2"}): 1, frozenset({"m1", "m3"}): 1}
        later = now + timedelta(hours=2)  # the open battle has expired unvoted by then
        assert store.pair_counts(later) == {frozenset({"m1", "m2"}): 1}


def test_schema_version_migrates_forward_and_refuses_newer(tmp_path: Path) -> None:
    from workbench.arena.db import SqliteEngine
    from workbench.arena.votes import _SCHEMA, SCHEMA_VERSION, VoteStoreError

    old = tmp_path / "old.sqlite"
    first_release = _SCHEMA.split("-- Battles being prepared")[0]  # battles and votes
    first_release = first_release.replace("{serial}", SqliteEngine.serial)
    for line in _SCHEMA.splitlines():  # no raw text, thinking or turns columns
        if line.split()[:1] in (["raw_a"], ["raw_b"], ["follow_ups"], ["turns"]) or (
            "reasoning" in line
        ):
            first_release = first_release.replace(line + "\n", "")
    with sqlite3.connect(old) as c:  # a first-release file: no raw columns, no version
        c.executescript(first_release)
        c.execute(
            "INSERT INTO battles (battle_id, study, rater, model_a, model_b, swapped, prompt,"
            " answer_a, answer_b, source_a, source_b, flags, created_at, expires_at, status)"
            " VALUES ('v0', 't', 'alice', 'm1', 'm2', 0, 'p', 'a', 'b', 'pool', 'pool', '[]',"
            " '2026-01-01T00:00:00+00:00', '2026-01-01T01:00:00+00:00', 'voted')"
        )
    with sqlite3.connect(old) as c:
        assert "raw_a" not in {r[1] for r in c.execute("PRAGMA table_info(battles)")}
        assert c.execute("PRAGMA user_version").fetchone()[0] == 0
    with VoteStore(old) as store:
        store.add_battle(battle("b", raw_a=" raw a", raw_b="raw b "))
        store.add_follow_up("b", "alice", _turn(2))
        store.record_vote("b", "alice", "A")
        assert store.get_battle("b").raw_a == " raw a"  # type: ignore[union-attr]
        old_battle = store.get_battle("v0")
        assert old_battle is not None and old_battle.turns == 1 and old_battle.reasoning_a == ""
        assert store.votes_frame()["turns"].to_list() == [2]
    with sqlite3.connect(old) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"reservations", "answers", "lockouts", "sessions"} <= tables  # version 4

    with sqlite3.connect(old) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for read_only in (False, True):
        with pytest.raises(VoteStoreError, match="newer workbench") as e:
            VoteStore(old, read_only=read_only)
        assert "\n" not in str(e.value) and str(old) in str(e.value)
