"""The child-process layer: start, death detection, and whose fault a death was."""

from __future__ import annotations

import os
import signal

import pytest

from workbench.errors import BackendError
from workbench.llama.process import Worker


def test_a_worker_says_ready_and_ends_on_close() -> None:
    w = Worker("workbench.llama.gen_worker")
    try:
        spawn_s = w.start()
        assert spawn_s > 0 and w.alive
        assert w.ready["pid"] == w.pid
        log = w.log_path
        assert log and os.path.exists(log)
    finally:
        w.close()
    assert not w.alive and not os.path.exists(log)


def test_a_worker_dropped_without_close_ends_and_deletes_its_log() -> None:
    """A backend a notebook forgets to close must not leave a child or a log file behind."""
    import gc

    w = Worker("workbench.llama.gen_worker")
    w.start()
    proc, log = w.proc, w.log_path
    assert proc is not None and log and os.path.exists(log)
    del w
    gc.collect()
    assert proc.poll() is not None
    assert not os.path.exists(log)


def test_our_own_failure_is_not_blamed_on_llama_cpp() -> None:
    """A child whose Python code fails (here: an entry point that does not exist) is
    workbench's failure, reported with the exception line."""
    w = Worker("workbench.llama.no_such_worker")
    with pytest.raises(BackendError) as e:
        w.start()
    msg = str(e.value)
    assert "llama.cpp" not in msg and "\n" not in msg
    assert msg.startswith("workbench's worker failed (exit status 1) while starting")
    assert "No module named workbench.llama.no_such_worker" in msg.replace("'", "")
    w.close()


def test_a_killed_worker_is_noticed_and_named_neutrally() -> None:
    w = Worker("workbench.llama.gen_worker")
    try:
        w.start()
        assert w.pid is not None
        os.kill(w.pid, signal.SIGKILL)
        assert w.recv(timeout=30) is None  # death, not a timeout
        msg = w.death_message(0, "generating")
        assert msg.startswith("the worker process ended (SIGKILL) while generating")
        assert "llama.cpp" not in msg
    finally:
        w.close()
