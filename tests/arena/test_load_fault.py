"""Load and fault test on loopback: 50 concurrent raters, 500 votes, then SIGKILL.

The server is the real ``workbench arena`` command in a subprocess; the raters are
``gradio_client`` clients calling the two named endpoints. Answers come from a pool seeded
by a small real run of both bundled models, so the test measures the voting path, not
generation. Throughput is printed (run with -s), never asserted.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .helpers import free_port, wait_port, workbench_exe, write_study

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

RATERS = [(f"r{i:02d}", f"rater-token-{i:02d}", "rater") for i in range(50)]
LATE = ("late", "rater-token-late", "rater")
"""A rater who joins after the restart. (A rater of the killed run may still hold open
battles, up to the study's cap, and is rightly told to vote on or skip them first.)"""
CHOICES = ("A", "B", "tie", "bothbad")
VOTES = 10
"""Votes per rater under load (500 in all), with a refused double click after every fifth."""


def _start(study: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [*workbench_exe(), "arena", "--study", str(study), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    wait_port(port, proc)
    return proc


def _db_votes(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT battle_id, rater FROM votes").fetchall()


class Raters:
    """50 simulated raters, each a gradio_client Client in its own thread."""

    def __init__(self, url: str) -> None:
        from gradio_client import Client

        self.url = url
        # One gradio_client Client per rater, made one after another before the clock
        # starts (50 made at once time out on a loaded 2-core machine; one Client shared by
        # several threads races its own event stream and cancels jobs).
        self.clients = {
            name: Client(url, verbose=False, httpx_kwargs={"timeout": 300}) for name, _, _ in RATERS
        }
        self.acked: set[tuple[str, str]] = set()
        self.attempted: set[tuple[str, str]] = set()
        self.duplicates_rejected = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def rater(self, name: str, token: str, n: int | None, stop: threading.Event) -> None:
        from gradio_client.exceptions import AppError

        rng = random.Random(name)
        client = self.clients[name]
        try:
            done = 0
            while (n is None or done < n) and not stop.is_set():
                battle = _call(client, stop, token, api_name="/new_battle")
                bid = battle["battle_id"]
                with self.lock:
                    self.attempted.add((bid, name))
                choice = rng.choice(CHOICES)
                out = _call(client, stop, token, bid, choice, "", api_name="/vote")
                assert out["status"] == "recorded"
                with self.lock:
                    self.acked.add((bid, name))
                done += 1
                if done % 5 == 0:  # a double click: must be refused, never counted
                    try:
                        client.submit(token, bid, choice, "", api_name="/vote").result(timeout=300)
                        with self.lock:
                            self.errors.append(f"duplicate accepted: {bid}")
                    except AppError as e:
                        assert "already" in str(e)
                        with self.lock:
                            self.duplicates_rejected += 1
        except Exception as e:  # a killed server ends the rater; the test decides
            if not stop.is_set():
                with self.lock:
                    self.errors.append(f"{name}: {type(e).__name__}: {e}")

    def run(self, n: int | None, stop: threading.Event) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.rater, args=(name, token, n, stop), daemon=True)
            for name, token, _ in RATERS
        ]
        for t in threads:
            t.start()
        return threads


def _call(client: Any, stop: threading.Event, *args: Any, api_name: str) -> Any:
    """One call; a transport failure (not an AppError) is retried, as a browser would. A
    retried vote that had in fact been stored comes back "already has your vote", which
    is the server confirming it: it counts as acknowledged, once."""
    from gradio_client.exceptions import AppError

    for attempt in range(3):
        try:
            return client.submit(*args, api_name=api_name).result(timeout=300)
        except AppError as e:
            if attempt and api_name == "/vote" and "already" in str(e):
                return {"status": "recorded", "retried": True}
            raise
        except Exception:
            if stop.is_set() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _wait(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_votes_under_load_then_sigkill(tmp_path: Path, real_pool: Path) -> None:
    study = write_study(tmp_path, raters=[*RATERS, LATE], pool_only=True, runs_root=real_pool)
    db = tmp_path / "votes" / "test.sqlite"
    log = tmp_path / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = _start(study, port, log)
    try:
        # ---- 50 raters x VOTES votes
        load = Raters(url)
        t0 = time.perf_counter()
        for t in load.run(VOTES, threading.Event()):
            t.join(timeout=600)
        elapsed = time.perf_counter() - t0
        total = len(RATERS) * VOTES
        assert load.errors == []
        assert len(load.acked) == total
        assert load.duplicates_rejected == len(RATERS) * (VOTES // 5)
        rows = _db_votes(db)
        assert len(rows) == total and set(rows) == load.acked  # exactly the acknowledged
        print(
            f"\nload: {total} votes (+{total} battles, {load.duplicates_rejected} refused "
            f"duplicates) by {len(RATERS)} raters in {elapsed:.1f} s = "
            f"{total / elapsed:.1f} votes/s"
        )

        # ---- SIGKILL mid-run
        stop = threading.Event()
        fault = Raters(url)
        threads = fault.run(None, stop)
        _wait(lambda: len(fault.acked) >= 150, timeout=300)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        stop.set()
        acked_at_kill = set(fault.acked)
        for t in threads:
            t.join(timeout=120)
        proc = _start(study, port, log)
        rows = _db_votes(db)
        assert len(rows) == len(set(rows))  # never duplicated
        stored = set(rows)
        assert load.acked <= stored and fault.acked <= stored  # none lost
        assert stored <= load.attempted | fault.attempted  # nothing invented
        print(
            f"kill: {len(acked_at_kill)} acknowledged before SIGKILL, all "
            f"{len(load.acked) + len(fault.acked)} acknowledged votes present after restart "
            f"({len(stored)} rows)"
        )

        # ---- the study continues
        from gradio_client import Client

        client = Client(url, verbose=False)
        token = LATE[1]
        battle: dict[str, Any] = client.predict(token, api_name="/new_battle")
        out = client.predict(token, battle["battle_id"], "A", "after restart", api_name="/vote")
        assert out["status"] == "recorded"
        assert len(_db_votes(db)) == len(stored) + 1
    finally:
        proc.kill()
        proc.wait(timeout=30)
