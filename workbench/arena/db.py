"""The two database engines of a study's votes store: SQLite (one file, the default) and
PostgreSQL (a server that several arena processes share).

The store (:mod:`workbench.arena.votes`) writes its SQL once, with ``?`` placeholders and
SQL that both engines run as it is (``CREATE TABLE IF NOT EXISTS``, ``ON CONFLICT``); an
engine only opens connections, runs transactions, renders the few words that differ
(:attr:`Engine.serial`, :attr:`Engine.for_update`) and turns a driver's failure into one
line naming the database and the cause (:class:`DatabaseFailure`).

- SQLite: one connection and one lock per process, WAL with ``synchronous=FULL``; a write
  transaction is ``BEGIN IMMEDIATE``, which also serialises writers of other processes.
- PostgreSQL: psycopg 3 with a ``psycopg_pool`` pool; a transaction that must not run
  beside another of the same study (planning a battle, a migration) takes a transaction
  advisory lock keyed by the study. A commit returns once the server has flushed its
  write-ahead log (the default ``synchronous_commit = on``). The password comes from the
  environment variable the study names, never from the study file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from workbench.errors import ArenaError

__all__ = [
    "SERVER_SCHEMES",
    "DatabaseFailure",
    "Engine",
    "PostgresEngine",
    "SqliteEngine",
    "Tx",
    "describe_url",
    "is_server_url",
]

SERVER_SCHEMES = ("postgresql://", "postgres://")
"""How a study's ``votes_db`` names a PostgreSQL database instead of a SQLite file."""


def is_server_url(value: str | Path) -> bool:
    """True when ``value`` names a PostgreSQL database (``postgresql://...``)."""
    return isinstance(value, str) and value.lower().startswith(SERVER_SCHEMES)


def describe_url(url: str) -> str:
    """``url`` without a password, as ``user@host:port/db`` for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{user}{host}{port}{parts.path or '/'}"


class DatabaseFailure(ArenaError):
    """The database could not do what was asked: one line with the database and cause."""


class IntegrityFailure(DatabaseFailure):
    """A constraint refused a write (the store turns it into its own message)."""


def cause(e: BaseException) -> str:
    """One line saying why ``e`` happened, without the driver's boilerplate."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    text = str(e).strip()
    first = next((line for line in text.splitlines() if line.strip()), "")
    # libpq: 'connection failed: connection to server at "h", port 1 failed: <why>'
    if "failed: " in first:
        first = first.rsplit("failed: ", 1)[1]
    first = first.removeprefix("FATAL:").strip()
    return " ".join(first.split()) or type(e).__name__


class Tx:
    """One transaction (or, outside one, one statement at a time) on a connection."""

    def __init__(self, engine: Engine, conn: Any) -> None:
        self._engine = engine
        self._conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The result rows as dicts."""
        return self._engine._rows(self._conn, sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        return self._engine._run(self._conn, sql, params)

    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per parameter row."""
        self._engine._many(self._conn, sql, params)


class Engine(ABC):
    """What the store needs of a database."""

    where: str
    """The database in messages: ``votes file PATH`` or ``votes database user@host/db``."""
    serial: str
    """The column type of an id the database counts up."""
    for_update: str
    """What locks the rows a SELECT read until the transaction ends ("" where the whole
    write transaction is exclusive already)."""

    @abstractmethod
    def tx(
        self, doing: str, *, write: bool = False, exclusive: bool = False
    ) -> AbstractContextManager[Tx]:
        """A transaction (``write``: one that writes; ``exclusive``: also one at a time
        for this study over every process), committed at the end of the block, rolled
        back on an exception. A database failure is a :class:`DatabaseFailure` saying
        ``doing``; a refused constraint an :class:`IntegrityFailure`."""

    @abstractmethod
    def tables(self, tx: Tx) -> set[str]:
        """The tables in the database."""

    @abstractmethod
    def columns(self, tx: Tx, table: str) -> set[str]:
        """The columns of ``table``."""

    @abstractmethod
    def schema_version(self, tx: Tx) -> int:
        """The schema version recorded in the database (0: none)."""

    @abstractmethod
    def set_schema_version(self, tx: Tx, version: int) -> None:
        """Record ``version`` as the database's schema version."""

    def script(self, tx: Tx, sql: str) -> None:
        """Run the ``;``-separated statements of ``sql`` in ``tx``."""
        for statement in sql.split(";"):
            if statement.strip():
                tx.run(statement.replace("{serial}", self.serial))

    @abstractmethod
    def _rows(self, conn: Any, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Run ``sql`` (``?`` placeholders) on ``conn``; the result rows as dicts."""

    @abstractmethod
    def _run(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        """Run ``sql`` on ``conn``; the number of rows it changed."""

    @abstractmethod
    def _many(self, conn: Any, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` on ``conn`` once per parameter row."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection or the pool."""


# --------------------------------------------------------------------------- SQLite


class SqliteEngine(Engine):
    """One SQLite file: one connection shared by the process's threads under a lock.

    Raises:
        DatabaseFailure: the file cannot be created, opened or read.
    """

    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    for_update = ""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.where = f"votes file {self.path}"
        self.read_only = read_only
        self._lock = threading.RLock()
        if self.path.is_dir():
            raise DatabaseFailure(f"{self.where}: is a directory")
        try:
            self._conn = self._open_read_only() if read_only else self._open()
        except (sqlite3.Error, OSError) as e:
            raise DatabaseFailure(f"{self.where}: cannot open it: {cause(e)}") from None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        try:
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL mode ({mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA user_version").fetchone()  # reads the file
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise FileNotFoundError(2, "No such file")
        uri = f"file:{quote(str(self.path.resolve()))}"
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("SELECT COUNT(*) FROM votes").fetchone()
        except sqlite3.OperationalError:
            # A WAL file needs its -shm index, which a read-only directory cannot hold.
            # Without a pending write-ahead log the file alone is complete: read it as
            # immutable. With one, reading the file alone would miss committed votes.
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
            conn.execute("SELECT COUNT(*) FROM votes").fetchone()
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def tx(self, doing: str, *, write: bool = False, exclusive: bool = False) -> Iterator[Tx]:
        with self._lock:
            conn = self._conn
            try:
                if write or exclusive:
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(self, conn)
                    if conn.in_transaction:
                        conn.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT may have rolled back already: rolling back again
                    # would raise "no transaction is active" and hide the real cause.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as e:
                raise IntegrityFailure(str(e)) from None
            except (sqlite3.Error, OSError) as e:
                raise DatabaseFailure(f"{self.where}: {doing}: {cause(e)}") from None

    def schema_version(self, tx: Tx) -> int:
        row = tx.one("PRAGMA user_version")
        return int(next(iter(row.values()))) if row else 0

    def set_schema_version(self, tx: Tx, version: int) -> None:
        tx.run(f"PRAGMA user_version = {int(version)}")

    def tables(self, tx: Tx) -> set[str]:
        return {r["name"] for r in tx.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, tx: Tx, table: str) -> set[str]:
        return {r["name"] for r in tx.rows(f"PRAGMA table_info({table})")}

    def _rows(self, conn: Any, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(sql, tuple(params)).fetchall()]

    def _run(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        return int(conn.execute(sql, tuple(params)).rowcount)

    def _many(self, conn: Any, sql: str, params: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, [tuple(p) for p in params])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --------------------------------------------------------------------------- PostgreSQL


def _psycopg() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise DatabaseFailure(
            "a PostgreSQL votes database needs psycopg: pip install 'workbench[postgres]'"
        ) from None
    return psycopg, psycopg_pool


class PostgresEngine(Engine):
    """A PostgreSQL database through a psycopg connection pool.

    Args:
        url: ``postgresql://user@host:port/db`` (no password in it).
        password_env: the environment variable holding the password (None: libpq's own
            ways, such as ``PGPASSWORD`` or ``~/.pgpass``, or none).
        lock_key: the study name; exclusive transactions of one study run one at a time.
        max_connections: the pool's size.

    Raises:
        DatabaseFailure: psycopg is missing, the password variable is unset, or the server
            cannot be reached or refuses the login (one line naming host and cause).
    """

    serial = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    for_update = " FOR UPDATE"

    def __init__(
        self,
        url: str,
        *,
        password_env: str | None = None,
        lock_key: str = "study",
        max_connections: int = 16,
        connect_timeout_s: int = 10,
    ) -> None:
        psycopg, psycopg_pool = _psycopg()
        self._psycopg = psycopg
        self._pool_timeout = psycopg_pool.PoolTimeout
        self.url = url
        self.where = f"votes database {describe_url(url)}"
        self.lock_key = lock_key
        if urlsplit(url).password:
            raise DatabaseFailure(
                f"{self.where}: the URL holds a password; put it in an environment variable "
                "and name it with votes_db_password_env"
            )
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": connect_timeout_s}
        if password_env:
            password = os.environ.get(password_env)
            if password is None:
                raise DatabaseFailure(
                    f"{self.where}: the password variable {password_env} is not set"
                )
            kwargs["password"] = password
        # One connection first: its failure names the cause (a pool only times out).
        try:
            psycopg.connect(url, **kwargs).close()
        except psycopg.Error as e:
            raise DatabaseFailure(f"{self.where}: cannot connect: {cause(e)}") from None
        self._pool = psycopg_pool.ConnectionPool(
            url,
            kwargs=kwargs,
            min_size=1,
            max_size=max_connections,
            open=False,
            check=psycopg_pool.ConnectionPool.check_connection,
            timeout=30.0,
            name=f"workbench-votes-{lock_key}",
        )
        try:
            self._pool.open(wait=True, timeout=30.0)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            self._pool.close()
            raise DatabaseFailure(f"{self.where}: cannot connect: {cause(e)}") from None

    @contextmanager
    def tx(self, doing: str, *, write: bool = False, exclusive: bool = False) -> Iterator[Tx]:
        errors = self._psycopg.errors
        try:
            with self._pool.connection() as conn, conn.transaction():
                if exclusive:
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.lock_key,))
                yield Tx(self, conn)
        except errors.IntegrityError as e:
            raise IntegrityFailure(cause(e)) from None
        except (self._psycopg.Error, self._pool_timeout) as e:
            raise DatabaseFailure(f"{self.where}: {doing}: {cause(e)}") from None

    def tables(self, tx: Tx) -> set[str]:
        rows = tx.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {r["table_name"] for r in rows}

    def columns(self, tx: Tx, table: str) -> set[str]:
        rows = tx.rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {r["column_name"] for r in rows}

    def schema_version(self, tx: Tx) -> int:
        # A version table (PostgreSQL has no user_version): one row, the version.
        if "schema_version" not in self.tables(tx):
            return 0
        row = tx.one("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"]) if row and row["v"] is not None else 0

    def set_schema_version(self, tx: Tx, version: int) -> None:
        tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        tx.run("DELETE FROM schema_version")
        tx.run("INSERT INTO schema_version (version) VALUES (?)", (int(version),))

    def reset_serial(self, tx: Tx, table: str, column: str) -> None:
        """Move ``table``'s id counter past the ids copied into it."""
        tx.rows(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
        )

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def _rows(self, conn: Any, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall()) if cur.description else []

    def _run(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        with conn.cursor() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return int(cur.rowcount)

    def _many(self, conn: Any, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(self._sql(sql), [tuple(p) for p in params])

    def close(self) -> None:
        self._pool.close()
