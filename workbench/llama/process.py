"""llama.cpp in a child process: spawn, pipe, log file, death and its one-line message.

llama.cpp aborts the whole process on some malformed files (a GGML_ASSERT, not a Python
exception). Every llama.cpp call of workbench therefore runs in a child started here, so
that an abort ends one model's work with a message naming the cause, and the caller (a
notebook kernel, the arena server, the other models of a comparison) lives on.

A child is ``python -P -m MODULE FD LOG``: its own module entry point, never a re-import of
the caller's ``__main__`` (which is what multiprocessing's spawn does, and why a plain
script without an ``if __name__ == "__main__":`` guard used to die). It talks over a
socket pair wrapped in :class:`multiprocessing.connection.Connection` (pickled tuples),
first saying ``("ready", info)`` once llama.cpp is imported, so that the time to start a
worker is measured apart from the time to load a model. Its stdout and stderr (llama.cpp's
log, a Python traceback) go to a log file that outlives it, so that the parent can still
say why it died.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from workbench.errors import BackendError
from workbench.llama.log import exit_description, failure_cause, python_failure

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
"""The directory holding the ``workbench`` package the parent runs, so that the child
imports the same code (a checkout that is not installed, an edited tree)."""
_POLL_S = 0.05


def _reap(proc: subprocess.Popen[bytes], log_path: str) -> None:
    """End a child whose :class:`Worker` was dropped without :meth:`Worker.close` (or is
    still open at interpreter exit) and delete its log: nobody can read either any more."""
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    Path(log_path).unlink(missing_ok=True)


class Worker:
    """One child process running ``python -m module`` (parent side).

    Args:
        module: the child's entry point (``workbench.llama.gen_worker``, ...).
        name: what messages call it ("worker", "bench process").
    """

    def __init__(self, module: str, *, name: str = "worker") -> None:
        self.module = module
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.log_path: str | None = None
        self.ready: dict[str, Any] = {}
        self.returncode: int | None = None
        """The last child's exit status once it ended (negative: the signal)."""
        self._reaper: weakref.finalize[Any, Any] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> float:
        """Start the child and wait until it has imported llama.cpp; returns the seconds
        that took (``spawn_s``).

        Raises:
            BackendError: the child could not start; the message says why in one line.
        """
        self.kill()
        if self._reaper is not None:  # a restarted worker starts a fresh log
            self._reaper()
        if self.log_path:
            Path(self.log_path).unlink(missing_ok=True)
        self.returncode = None
        fd, self.log_path = tempfile.mkstemp(prefix="workbench-llama-", suffix=".log")
        parent_sock, child_sock = socket.socketpair()
        env = {
            **os.environ,
            # On an abort ggml attaches gdb to print a backtrace: slow, useless to users.
            "GGML_NO_BACKTRACE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
            ),
        }
        t0 = time.perf_counter()
        try:
            # -P: the caller's working directory does not shadow installed modules.
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", self.module, str(child_sock.fileno()), self.log_path],
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                pass_fds=(child_sock.fileno(),),
                env=env,
                close_fds=True,
            )
        except OSError as e:
            parent_sock.close()
            raise BackendError(f"cannot start the {self.name}: {e}") from None
        finally:
            os.close(fd)
            child_sock.close()
        self._reaper = weakref.finalize(self, _reap, self.proc, self.log_path)
        self.conn = Connection(parent_sock.detach())
        msg = self.recv()
        if msg is None or msg[0] != "ready":
            raise BackendError(self.death_message(0, "starting"))
        self.ready = dict(msg[1])
        return time.perf_counter() - t0

    def send(self, msg: tuple[Any, ...]) -> bool:
        """Send a message; False when the child is gone."""
        if self.conn is None:
            return False
        try:
            self.conn.send(msg)
            return True
        except OSError:
            return False

    def recv(self, timeout: float | None = None) -> tuple[Any, ...] | None:
        """The next message, or None when the child died (or closed its end).

        Raises:
            TimeoutError: nothing came within ``timeout`` seconds.
        """
        conn, proc = self.conn, self.proc
        if conn is None or proc is None:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            try:
                if conn.poll(max(wait, 0)):
                    return conn.recv()
            except (EOFError, OSError):
                return None
            if proc.poll() is not None:
                try:  # what it said just before it went
                    return conn.recv() if conn.poll(0) else None
                except (EOFError, OSError):
                    return None
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError

    # ------------------------------------------------------------------ the log

    def log_size(self) -> int:
        """Bytes in the log so far (an offset for :meth:`log_since`)."""
        try:
            return os.path.getsize(self.log_path) if self.log_path else 0
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        """The log from ``offset`` on."""
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def death_message(self, offset: int, doing: str) -> str:
        """One line saying why the child died while ``doing`` ("loading the model"),
        from its exit status and its log since ``offset``. llama.cpp is named only when
        its log says what went wrong; a Python traceback is workbench's own failure."""
        code = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            code = self.proc.returncode
        status = exit_description(code)
        log = self.log_since(offset)
        ours = python_failure(log)
        cause = failure_cause(log)
        if ours is None and code is not None and code > 0 and cause is None:
            # Python itself refused to run the child ("No module named ..."): its last line
            ours = next((ln.strip() for ln in reversed(log.splitlines()) if ln.strip()), None)
        if ours is not None and (code is None or code >= 0):
            return f"workbench's {self.name} failed ({status}) while {doing}: {ours}"
        if cause is not None:
            return f"llama.cpp stopped the {self.name} ({status}) while {doing}: {cause}"
        hint = " (out of memory, or killed from outside)" if status == "SIGKILL" else ""
        return f"the {self.name} process ended ({status}) while {doing}{hint}"

    # ------------------------------------------------------------------ ending

    def kill(self) -> None:
        """End the child at once (it may be stuck inside llama.cpp); keeps the log."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            self.returncode = self.proc.returncode
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def finish(self, grace_s: float = 5.0) -> int | None:
        """Ask the child to exit, kill it after ``grace_s``; returns its exit status.
        The log stays until :meth:`close`."""
        if self.proc is not None and self.alive:
            self.send(("close",))  # fails when the child is already on its way out
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace_s)
        self.kill()
        return self.returncode

    def close(self, grace_s: float = 5.0) -> None:
        """Ask the child to exit, kill it after ``grace_s``, delete the log."""
        self.finish(grace_s)
        if self._reaper is not None:
            self._reaper.detach()
            self._reaper = None
        if self.log_path:
            Path(self.log_path).unlink(missing_ok=True)
            self.log_path = None


# --------------------------------------------------------------------------- child side


def child_connection(argv: list[str] | None = None) -> Connection:
    """The child's end of the pipe, from the fd its command line names."""
    args = sys.argv if argv is None else argv
    return Connection(int(args[1]))


class ChildLog:
    """A child's own log (the file its stdout and stderr write to), for the parts of
    llama.cpp's log the child needs while it runs (why a load failed, what "auto"
    chose)."""

    def __init__(self, argv: list[str] | None = None) -> None:
        args = sys.argv if argv is None else argv
        self.path = args[2]

    def size(self) -> int:
        sys.stderr.flush()
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def since(self, offset: int) -> str:
        sys.stderr.flush()
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""
