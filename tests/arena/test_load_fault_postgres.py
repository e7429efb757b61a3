"""Two arena processes on one PostgreSQL study: raters start battles on one process and
vote on the other, one process is killed with SIGKILL mid-load, every acknowledged vote
is in the export exactly once, and the survivor goes on serving (battles started on the
dead process included). The servers are the real ``workbench arena`` command; the raters
``gradio_client`` clients. Throughput is printed (run with -s), never asserted."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from workbench.cli import main

from .helpers import free_port, pg_study_top, write_study
from .test_load_fault import CHOICES, _call, _start, _wait

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

RATERS = [(f"p{i:02d}", f"pg-rater-token-{i:02d}", "rater") for i in range(16)]


class TwoSidedRaters:
    """Each rater starts a battle on one process and votes on it on the other."""

    def __init__(self, urls: list[str]) -> None:
        from gradio_client import Client

        self.clients = {
            name: [Client(u, verbose=False, httpx_kwargs={"timeout": 300}) for u in urls]
            for name, _, _ in RATERS
        }
        self.acked: set[tuple[str, str]] = set()
        self.attempted: set[tuple[str, str]] = set()
        self.unvoted: dict[str, str] = {}  # rater -> a battle started but not acknowledged
        self.duplicates_rejected = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def rater(self, k: int, n: int | None, stop: threading.Event) -> None:
        from gradio_client.exceptions import AppError

        name, token, _ = RATERS[k]
        rng = random.Random(name)
        first, second = self.clients[name][k % 2], self.clients[name][(k + 1) % 2]
        try:
            done = 0
            while (n is None or done < n) and not stop.is_set():
                battle = _call(first, stop, token, api_name="/new_battle")
                bid = battle["battle_id"]
                with self.lock:
                    self.attempted.add((bid, name))
                    self.unvoted[name] = bid
                choice = rng.choice(CHOICES)
                out = _call(second, stop, token, bid, choice, "", api_name="/vote")
                assert out["status"] == "recorded"
                with self.lock:
                    self.acked.add((bid, name))
                    self.unvoted.pop(name, None)
                done += 1
                if done % 4 == 0:  # a double click on the process that served the battle
                    try:
                        first.submit(token, bid, choice, "", api_name="/vote").result(timeout=300)
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
            threading.Thread(target=self.rater, args=(k, n, stop), daemon=True)
            for k in range(len(RATERS))
        ]
        for t in threads:
            t.start()
        return threads


def _export(study: Path, out: Path) -> pl.DataFrame:
    assert main(["arena", "--study", str(study), "--export", str(out)]) == 0
    return pl.read_parquet(out)


def test_two_processes_one_postgres_study_then_sigkill(
    tmp_path: Path, real_pool: Path, pg_url: str
) -> None:
    study = write_study(
        tmp_path, raters=RATERS, pool_only=True, runs_root=real_pool, extra_top=pg_study_top(pg_url)
    )
    log = tmp_path / "server.log"
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}/" for p in ports]
    procs = [_start(study, p, log) for p in ports]
    try:
        # ---- 16 raters x 8 cycles, each battle voted on the other process
        load = TwoSidedRaters(urls)
        t0 = time.perf_counter()
        for t in load.run(8, threading.Event()):
            t.join(timeout=600)
        elapsed = time.perf_counter() - t0
        assert load.errors == []
        assert len(load.acked) == 128 and load.duplicates_rejected == 32
        votes = _export(study, tmp_path / "load.parquet")
        pairs = list(zip(votes["battle_id"], votes["rater"], strict=True))
        assert len(pairs) == 128 and set(pairs) == load.acked
        print(f"\n2 processes: 128 votes in {elapsed:.1f} s = {128 / elapsed:.1f} votes/s")

        # ---- SIGKILL one process mid-load
        stop = threading.Event()
        fault = TwoSidedRaters(urls)
        threads = fault.run(None, stop)
        _wait(lambda: len(fault.acked) >= 40, timeout=300)
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        votes = _export(study, tmp_path / "kill.parquet")
        pairs = list(zip(votes["battle_id"], votes["rater"], strict=True))
        assert len(pairs) == len(set(pairs))  # exactly once
        assert load.acked | fault.acked <= set(pairs)  # every acknowledged vote
        assert set(pairs) <= load.attempted | fault.attempted  # nothing invented

        # ---- the survivor goes on: new battles, and the open ones the dead one served
        from gradio_client import Client

        client = Client(urls[0], verbose=False)
        token = dict((n, t) for n, t, _ in RATERS)
        revived = late = 0
        for name, bid in fault.unvoted.items():
            if (bid, name) in set(pairs):
                continue  # its vote landed before the kill, unacknowledged
            try:
                out: dict[str, Any] = client.predict(
                    token[name], bid, "A", "after the kill", api_name="/vote"
                )
            except Exception as e:  # the battle may never have been stored
                if "already" in str(e):  # the dead process's COMMIT landed after the export
                    late += 1
                    continue
                assert "unknown battle" in str(e), e
                continue
            assert out["status"] == "recorded"
            revived += 1
        for _, tok, _ in RATERS[:4]:
            battle: dict[str, Any] = client.predict(tok, api_name="/new_battle")
            out = client.predict(tok, battle["battle_id"], "B", "", api_name="/vote")
            assert out["status"] == "recorded"
        final = _export(study, tmp_path / "final.parquet")
        assert final.height == len(pairs) + revived + late + 4
        print(
            f"kill: {len(fault.acked)} acknowledged before SIGKILL, all "
            f"{len(load.acked) + len(fault.acked)} present once; the survivor took "
            f"{revived} votes on battles of the dead process and 4 new ones"
        )
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)
