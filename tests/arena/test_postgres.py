"""The votes store on a real PostgreSQL server (started by the ``postgres`` fixture):
the same guarantees as SQLite, and everything a vote needs shared between processes
(here two stores, each with its own connection pool, stand for two arena processes)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from workbench.arena.auth import Sessions, Throttle
from workbench.arena.battles import Arena, ArenaError
from workbench.arena.study import StudyError, load_study, parse_study
from workbench.arena.votes import (
    SCHEMA_VERSION,
    BattleRecord,
    VoteRejected,
    VoteStore,
    VoteStoreError,
)
from workbench.cli import main
from workbench.testing.postgres import TempPostgres

from .helpers import (
    PG_PASSWORD_ENV,
    fake_runs,
    free_port,
    need_models,
    pg_study_top,
    write_study,
)


def _battle(bid: str, rater: str = "alice", **kw: object) -> BattleRecord:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "battle_id": bid,
        "study": "test",
        "rater": rater,
        "model_a": "m1",
        "model_b": "m2",
        "swapped": False,
        "prompt": "p",
        "answer_a": "a",
        "answer_b": "b",
        "created_at": now,
        "expires_at": now + timedelta(hours=1),
    }
    values.update(kw)
    return BattleRecord(**values)  # type: ignore[arg-type]


def _store(url: str) -> VoteStore:
    return VoteStore(url, "test", password_env=PG_PASSWORD_ENV)


def test_votes_on_postgres_keep_the_guarantees(pg_url: str) -> None:
    with _store(pg_url) as one, _store(pg_url) as two:
        one.add_battle(_battle("b1"))
        one.add_battle(_battle("late", expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        one.add_battle(_battle("skipped"))
        # a battle stored by one process takes its vote in the other
        out = two.record_vote("b1", "alice", "B", "  clearer  ")
        assert (out.model_a, out.model_b, out.winner) == ("m1", "m2", "model_b")
        with pytest.raises(VoteRejected, match="already has your vote"):
            one.record_vote("b1", "alice", "A")
        with pytest.raises(VoteRejected, match="unknown battle"):  # another rater's
            two.record_vote("b1", "bob", "A")
        with pytest.raises(VoteRejected, match="expired"):
            one.record_vote("late", "alice", "A")
        assert two.skip_battle("skipped", "alice") and not one.skip_battle("skipped", "alice")
        with pytest.raises(VoteRejected, match="skipped"):
            one.record_vote("skipped", "alice", "A")
        assert one.count_votes() == two.count_votes() == 1
        frame = two.votes_frame()
        assert frame.select("battle_id", "winner", "reason").row(0) == ("b1", "model_b", "clearer")

        # the database refuses a second vote for the same battle and rater on its own
        with psycopg.connect(pg_url, password=_password()) as conn:
            cur = conn.execute("SELECT * FROM votes")
            cols = [d.name for d in cur.description or []]
            values = dict(zip(cols, cur.fetchone() or (), strict=True))
            values.pop("vote_id")
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(
                    f"INSERT INTO votes ({', '.join(values)}) "
                    f"VALUES ({', '.join(['%s'] * len(values))})",
                    list(values.values()),
                )


def _password() -> str:
    import os

    return os.environ[PG_PASSWORD_ENV]


def test_racing_votes_from_two_processes_count_once(pg_url: str) -> None:
    stores = [_store(pg_url), _store(pg_url)]
    try:
        for i in range(10):
            stores[0].add_battle(_battle(f"r{i}"))
        barrier = threading.Barrier(8)
        recorded: list[str] = []
        refused: list[str] = []
        lock = threading.Lock()

        def voter(k: int) -> None:
            store = stores[k % 2]
            barrier.wait()
            for i in range(10):
                try:
                    store.record_vote(f"r{i}", "alice", "A")
                    with lock:
                        recorded.append(f"r{i}")
                except VoteRejected as e:
                    assert "already" in str(e)
                    with lock:
                        refused.append(f"r{i}")

        threads = [threading.Thread(target=voter, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(recorded) == sorted(f"r{i}" for i in range(10))
        assert len(refused) == 70
        assert stores[1].count_votes() == 10
    finally:
        for s in stores:
            s.close()


def test_two_arenas_share_battles_reservations_and_answers(tmp_path: Path, pg_url: str) -> None:
    need_models()
    path = write_study(
        tmp_path, pool_only=True, runs_root=tmp_path, max_open=6, extra_top=pg_study_top(pg_url)
    )
    study = load_study(path)
    runs = fake_runs(per=1)
    arenas = [Arena(study, runs=runs, seed=s) for s in (1, 2)]
    try:
        rater = arenas[0].authenticate("alice-secret-1")
        barrier = threading.Barrier(6)
        views: list[str] = []
        refused: list[str] = []
        lock = threading.Lock()

        def start(k: int) -> None:
            barrier.wait()
            try:
                view = arenas[k % 2].new_battle(rater)
                with lock:
                    views.append(view.battle_id)
            except ArenaError as e:
                with lock:
                    refused.append(str(e))

        threads = [threading.Thread(target=start, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # 3 prompts x 1 answer per model: three battles at once, never one answer twice,
        # though the six requests went to two processes
        assert len(views) == 3 and all("no answer is free" in e for e in refused)
        records = [arenas[0].store.get_battle(b) for b in views]
        shown = [(r.prompt, r.response_a_id) for r in records if r]
        shown += [(r.prompt, r.response_b_id) for r in records if r]
        assert len(shown) == len(set(shown)) == 6
        for i, bid in enumerate(views):  # started on either, voted on the other
            out = arenas[(i + 1) % 2].vote(rater, bid, "A", None)
            assert out.battle_id == bid
        assert arenas[1].store.count_votes() == 3

        # an answer one process generated joins the other's pool
        arenas[0].store.add_answer("Sag Hallo.", study.model_names[0], "gen-1", "Hallo!")
        arenas[1]._sync_pool()
        ids = [a.response_id for a in arenas[1].pool.answers("Sag Hallo.", study.model_names[0])]
        assert "gen-1" in ids

        # sessions and lockouts are the study's, not a process's
        sid = Sessions(arenas[0].store, study.raters).open(rater)
        assert Sessions(arenas[1].store, study.raters).rater(sid) == rater
        throttles = [Throttle(3, lockout_s=30, store=a.store) for a in arenas]
        for k in range(3):
            throttles[k % 2].failed("10.0.0.9")
        with pytest.raises(ArenaError, match="too many unknown tokens"):
            throttles[1].check("10.0.0.9")
        throttles[0].check("10.0.0.10")
    finally:
        for a in arenas:
            a.close()


def test_schema_version_table_refuses_a_newer_database(pg_url: str) -> None:
    with _store(pg_url):
        pass
    with psycopg.connect(pg_url, password=_password(), autocommit=True) as conn:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        assert row == (SCHEMA_VERSION,)
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    for read_only in (False, True):
        with pytest.raises(VoteStoreError, match="newer workbench") as e:
            VoteStore(pg_url, "test", password_env=PG_PASSWORD_ENV, read_only=read_only)
        assert "\n" not in str(e.value) and "127.0.0.1" in str(e.value)


def test_a_bad_database_url_is_one_line_at_start(
    tmp_path: Path,
    postgres: TempPostgres,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = f"postgresql://{postgres.user}@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(
        VoteStoreError, match=r"127\.0\.0\.1:\d+/nothing: cannot connect: .*refused"
    ):
        VoteStore(dead, password_env=PG_PASSWORD_ENV)
    monkeypatch.setenv("WB_WRONG_PASSWORD", "not-the-password")
    with pytest.raises(VoteStoreError, match="password authentication failed") as e:
        VoteStore(pg_url, password_env="WB_WRONG_PASSWORD")
    assert "\n" not in str(e.value) and f"127.0.0.1:{postgres.port}" in str(e.value)
    with pytest.raises(VoteStoreError, match="WB_UNSET_VARIABLE is not set"):
        VoteStore(pg_url, password_env="WB_UNSET_VARIABLE")
    missing = pg_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(VoteStoreError, match='database "no_such_db" does not exist'):
        VoteStore(missing, password_env=PG_PASSWORD_ENV)

    # the command says it in one line and exits before serving anything
    path = write_study(tmp_path, extra_top=pg_study_top(dead))
    assert main(["arena", "--study", str(path), "--port", str(free_port())]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "127.0.0.1" in err and "refused" in err


def test_the_study_file_never_holds_the_password(tmp_path: Path) -> None:
    base = 'name = "t"\nmodels = ["a", "b"]\nfree_prompts = true\n'
    raters = '[[raters]]\nname = "x"\ntoken = "secret-token-1"\n'
    with pytest.raises(StudyError, match="holds a password"):
        parse_study(base + 'votes_db = "postgresql://u:pw@h/db"\n' + raters, resolve_models=False)
    with pytest.raises(StudyError, match="name the database"):
        parse_study(base + 'votes_db = "postgresql://u@h"\n' + raters, resolve_models=False)
    with pytest.raises(StudyError, match="for a PostgreSQL votes_db"):
        parse_study(
            base + 'votes_db = "v.sqlite"\nvotes_db_password_env = "X"\n' + raters,
            resolve_models=False,
        )
    study = parse_study(
        base + 'votes_db = "postgresql://u@h:5433/db"\nvotes_db_password_env = "PW"\n' + raters,
        resolve_models=False,
    )
    assert (study.votes_db, study.votes_db_password_env) == ("postgresql://u@h:5433/db", "PW")


def test_a_sqlite_study_migrates_with_equal_counts_and_ratings(
    tmp_path: Path,
    postgres: TempPostgres,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workbench import ratings

    need_models()
    path = write_study(tmp_path, pool_only=True, runs_root=tmp_path, max_open=6)
    study = load_study(path)
    arena = Arena(study, runs=fake_runs(per=3), seed=7)
    choices = ("A", "B", "tie", "bothbad", "A")
    for k in range(24):
        rater = arena.authenticate(("alice-secret-1", "bob-secret-22")[k % 2])
        view = arena.new_battle(rater)
        if k % 6 == 5:
            arena.skip(rater, view.battle_id)  # battles without a vote move too
        else:
            arena.vote(rater, view.battle_id, choices[k % 5], f"reason {k}")
    arena.store.add_answer("Sag Hallo.", study.model_names[0], "gen-7", "Hallo!")
    before = arena.votes(include_flagged=True)
    battles = arena.store.count_battles()
    arena.close()

    monkeypatch.setenv("PGPASSWORD", postgres.password)  # libpq's own variable
    assert main(["arena", "--study", str(path), "--migrate-to", pg_url]) == 0
    line = capsys.readouterr().err.strip()
    assert len(line.splitlines()) == 1
    assert f"copied {battles} battles, {before.height} votes and 1 generated answers" in line
    assert "counts match" in line

    with VoteStore(pg_url, study.name) as moved:
        after = moved.votes_frame(include_flagged=True)
        assert moved.count_battles() == battles
        assert moved.get_battle(after["battle_id"][0]) is not None
        assert [x[3] for x in moved.answers_since(0)] == ["gen-7"]
        # new votes number on after the copied ones
        moved.add_battle(_battle("after-move"))
        moved.record_vote("after-move", "alice", "A")
        ids = moved.votes_frame(include_flagged=True)["vote_id"].to_list()
        assert ids[-1] > max(ids[:-1])
    assert after.equals(before)
    board = ratings.leaderboard(before, bootstrap=50, seed=0)
    assert ratings.leaderboard(after, bootstrap=50, seed=0).equals(board)

    # a second copy into the same database is refused, and nothing is doubled
    assert main(["arena", "--study", str(path), "--migrate-to", pg_url]) == 1
    assert "already holds" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_start_on_consecutive_ports_and_stop_together(
    tmp_path: Path, real_pool: Path, pg_url: str
) -> None:
    import signal
    import socket
    import subprocess

    from gradio_client import Client

    from .helpers import wait_port, workbench_exe

    study = write_study(
        tmp_path, pool_only=True, runs_root=real_pool, extra_top=pg_study_top(pg_url)
    )
    port = free_port()
    while True:  # two free ports in a row
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            break
        except OSError:
            port = free_port()
    log = (tmp_path / "workers.log").open("wb")
    parent = subprocess.Popen(
        [*workbench_exe(), "arena", "--study", str(study), "--workers", "2", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        for p in (port, port + 1):
            wait_port(p, parent)
        first = Client(f"http://127.0.0.1:{port}/", verbose=False)
        second = Client(f"http://127.0.0.1:{port + 1}/", verbose=False)
        battle = first.predict("alice-secret-1", api_name="/new_battle")
        out = second.predict("alice-secret-1", battle["battle_id"], "tie", "", api_name="/vote")
        assert out["status"] == "recorded"
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        for p in (port, port + 1):  # both children are gone with it
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", p)) != 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        log.close()
    text = (tmp_path / "workers.log").read_text()
    assert f"2 processes on ports {port}-{port + 1}" in text


def test_one_follow_up_per_battle_over_every_process(pg_url: str) -> None:
    from workbench.arena.votes import PlanState, Reservation

    def follow_up(state: PlanState) -> Reservation:
        if "b1" in state.following:
            raise ArenaError("your last follow-up to this battle is still being answered")
        return Reservation(
            f"r-{state.generating}", "alice", "m1", "m2", None, None, True, later, "b1"
        )

    later = datetime.now(UTC) + timedelta(minutes=5)
    with _store(pg_url) as one, _store(pg_url) as two:
        one.add_battle(_battle("b1"))
        first = one.reserve("alice", follow_up)
        with pytest.raises(ArenaError, match="still being answered"):
            two.reserve("alice", follow_up)
        # a follow-up is generating but holds no battle open and no pair
        seen: list[PlanState] = []

        def look(state: PlanState) -> Reservation:
            seen.append(state)
            raise ArenaError("only looking")

        with pytest.raises(ArenaError, match="only looking"):
            two.reserve("alice", look)
        assert (seen[0].held, seen[0].generating, seen[0].generating_by_rater) == (1, 1, 1)
        assert seen[0].counts == {frozenset({"m1", "m2"}): 1}  # the open battle only
        one.release(first.reservation_id)
        assert two.reserve("alice", follow_up).battle_id == "b1"
