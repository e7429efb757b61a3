"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` in a temporary
directory, ``pg_ctl start`` on a free loopback port, password logins (SCRAM), and
``stop()`` removes it all. Run as root, the server runs as the ``postgres`` user (initdb
refuses root). Needs the PostgreSQL server binaries (Debian: ``apt-get install
postgresql``; ``make test`` installs them).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from workbench.errors import WorkbenchError

__all__ = ["PostgresMissing", "TempPostgres", "postgres_bindir"]


class PostgresMissing(WorkbenchError):
    """No PostgreSQL server binaries (initdb, pg_ctl) on this machine."""


def postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``.

    Raises:
        PostgresMissing: none found (``pg_config --bindir``, /usr/lib/postgresql/*/bin).
    """
    candidates: list[str] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(str(shutil.which("initdb"))).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    raise PostgresMissing(
        "PostgreSQL server binaries not found: apt-get install postgresql (make test does)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """A PostgreSQL cluster of its own, on 127.0.0.1.

    Args:
        user: the superuser to create (logs in with ``password``).
        password: its password.
    """

    def __init__(self, user: str = "workbench", password: str = "wb-test-password") -> None:
        self.user = user
        self.password = password
        self.port = 0
        self.dir: Path | None = None
        self._bindir = postgres_bindir()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def _as_server_user(self, cmd: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def start(self) -> TempPostgres:
        """initdb and start; returns self. Raises RuntimeError with the server's log."""
        self.dir = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        data, log = self.dir / "data", self.dir / "server.log"
        subprocess.run(
            self._as_server_user(
                [
                    str(self._bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.user,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.port = _free_port()
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        done = subprocess.run(
            self._as_server_user(
                [
                    str(self._bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            text = log.read_text() if log.exists() else done.stderr
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {text[-2000:]}")
        return self

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` (no password in it)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; its URL."""
        import psycopg

        with psycopg.connect(self.url(), password=self.password, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self.dir is None:
            return
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                self._as_server_user(
                    [str(self._bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
                ),
                capture_output=True,
            )
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
