"""Battles and votes of a study, in SQLite (one file, the default) or PostgreSQL (a server
that several arena processes share): one row per battle, one row per vote, and everything
else a vote needs (battles being prepared, generated answers, token failures, sessions).

The two engines (:mod:`workbench.arena.db`) run the same SQL and the same schema
(:data:`_SCHEMA`, written once). Durability: SQLite runs in WAL mode with
``synchronous=FULL``, so every commit fsyncs the write-ahead log before ``record_vote``
returns; PostgreSQL commits once its write-ahead log is flushed. The rater is told
"recorded" only after that.

Exactly-once: a vote is checked and inserted inside one transaction that holds the
battle's row (``BEGIN IMMEDIATE`` in SQLite, ``SELECT ... FOR UPDATE`` in PostgreSQL), and
``UNIQUE(battle_id, rater)`` backs the check, so a duplicate or racing submission, from
this process or another, is rejected with a message and never counted twice. Every
rejection happens before any write.

Failures say what and where: a votes file that is not SQLite, truncated or corrupt, a
directory that cannot be written, a full disk, a COMMIT that failed, a database server
that cannot be reached or refuses the login, each raise :class:`VoteStoreError` with one
line naming the file or database and the cause, and a vote whose COMMIT failed is never
reported recorded. A read-only store (``read_only=True``) reads a votes file in a
directory or on a medium it cannot write to (``--export``).

Schema versions: SQLite keeps :data:`SCHEMA_VERSION` in ``PRAGMA user_version``,
PostgreSQL in a ``schema_version`` table; an older store migrates forward on open, a newer
one is refused in one line.

Battles keep the answer text a rater was shown (``answer_a``, ``answer_b``) and the raw
text the model wrote (``raw_a``, ``raw_b``); see :mod:`workbench.arena.shown`. The
thinking is kept the same way (``reasoning_a`` what the rater was shown of it, empty when
the study hides it or it named a model; ``raw_reasoning_a`` what the model wrote), and a
battle's follow-up turns (``follow_ups``, JSON) hold the same fields per turn. A vote
covers the whole conversation; its ``turns`` says how many user turns it had.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from workbench.arena.db import (
    DatabaseFailure,
    Engine,
    IntegrityFailure,
    PostgresEngine,
    SqliteEngine,
    Tx,
    is_server_url,
)
from workbench.errors import ArenaError, InputError
from workbench.schemas import VOTE_REQUIRED_COLUMNS, VOTE_SCHEMA

if TYPE_CHECKING:
    from workbench.arena.study import Study

__all__ = [
    "CHOICES",
    "SCHEMA_VERSION",
    "WINNERS",
    "BattleRecord",
    "FollowUp",
    "PlanState",
    "Reservation",
    "VoteOutcome",
    "VoteRejected",
    "VoteStore",
    "VoteStoreError",
    "defuse_formula",
    "migrate_store",
    "open_study_store",
]

Choice = Literal["A", "B", "tie", "bothbad"]
CHOICES: tuple[str, ...] = ("A", "B", "tie", "bothbad")
WINNERS: dict[str, str] = {
    "A": "model_a",
    "B": "model_b",
    "tie": "tie",
    "bothbad": "tie (bothbad)",
}
"""Button -> ``winner`` in the public arena convention that ``ratings`` reads."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS battles (
    battle_id      TEXT PRIMARY KEY,
    study          TEXT NOT NULL,
    rater          TEXT NOT NULL,
    model_a        TEXT NOT NULL,   -- shown as "A", on the left
    model_b        TEXT NOT NULL,   -- shown as "B", on the right
    swapped        INTEGER NOT NULL,-- 1: the sampled pair was flipped to put it left/right
    prompt_id      TEXT,
    prompt_set     TEXT,
    category       TEXT,
    language       TEXT,
    prompt         TEXT NOT NULL,
    response_a_id  TEXT,
    response_b_id  TEXT,
    answer_a       TEXT NOT NULL,   -- the text shown to the rater (shown_answer)
    answer_b       TEXT NOT NULL,
    raw_a          TEXT,            -- the text the model wrote
    raw_b          TEXT,
    reasoning_a    TEXT,            -- the thinking shown to the rater ('' hidden or none)
    reasoning_b    TEXT,
    raw_reasoning_a TEXT,           -- the thinking the model wrote
    raw_reasoning_b TEXT,
    follow_ups     TEXT,            -- JSON list of the follow-up turns (FollowUp)
    source_a       TEXT NOT NULL,   -- pool or generated
    source_b       TEXT NOT NULL,
    flags          TEXT NOT NULL,   -- JSON list of identity-guard reasons
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    status         TEXT NOT NULL    -- open, voted, skipped
);
CREATE INDEX IF NOT EXISTS battles_pair ON battles (model_a, model_b);
CREATE INDEX IF NOT EXISTS battles_rater ON battles (rater);
CREATE TABLE IF NOT EXISTS votes (
    vote_id        {serial},
    battle_id      TEXT NOT NULL REFERENCES battles (battle_id),
    study          TEXT NOT NULL,
    rater          TEXT NOT NULL,
    model_a        TEXT NOT NULL,
    model_b        TEXT NOT NULL,
    position_a     TEXT NOT NULL,   -- where model_a was shown: left
    position_b     TEXT NOT NULL,   -- where model_b was shown: right
    swapped        INTEGER NOT NULL,
    prompt_id      TEXT,
    prompt_set     TEXT,
    category       TEXT,
    language       TEXT,
    response_a_id  TEXT,
    response_b_id  TEXT,
    choice         TEXT NOT NULL,   -- A, B, tie, bothbad (the button)
    winner         TEXT NOT NULL,   -- model_a, model_b, tie, tie (bothbad)
    reason         TEXT,
    flagged        INTEGER NOT NULL,
    flags          TEXT NOT NULL,
    battle_created_at TEXT NOT NULL,
    voted_at       TEXT NOT NULL,
    turns          INTEGER NOT NULL DEFAULT 1, -- user turns of the conversation voted on
    UNIQUE (battle_id, rater)
);
-- Battles being prepared: their pair and pooled answers are taken, their answers not
-- yet all written. A process that dies leaves its reservations to expire.
CREATE TABLE IF NOT EXISTS reservations (
    reservation_id TEXT PRIMARY KEY,
    rater          TEXT NOT NULL,
    model_a        TEXT NOT NULL,
    model_b        TEXT NOT NULL,
    response_a_id  TEXT,            -- a pooled answer taken (NULL: to be generated)
    response_b_id  TEXT,
    battle_id      TEXT UNIQUE,     -- a follow-up turn of this battle (NULL: a new battle)
    generating     INTEGER NOT NULL,-- 1: waits for a generated answer
    expires_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_rater ON reservations (rater);
-- Answers generated on demand, shared by every process of the study (the answer pool).
CREATE TABLE IF NOT EXISTS answers (
    answer_seq     {serial},
    response_id    TEXT NOT NULL UNIQUE,
    prompt         TEXT NOT NULL,
    model          TEXT NOT NULL,
    raw            TEXT NOT NULL,
    raw_reasoning  TEXT,            -- the thinking written before the answer
    created_at     TEXT NOT NULL
);
-- Unknown tokens per client address, and the addresses locked out (see arena.auth).
CREATE TABLE IF NOT EXISTS token_failures (
    client         TEXT NOT NULL,
    failed_at      DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS token_failures_client ON token_failures (client);
CREATE TABLE IF NOT EXISTS lockouts (
    client         TEXT PRIMARY KEY,
    locked_until   DOUBLE PRECISION NOT NULL
);
-- Browser sessions of the page: any process knows whose session an id is.
CREATE TABLE IF NOT EXISTS sessions (
    session_id     TEXT PRIMARY KEY,
    rater          TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
"""
"""The one schema of both engines (``{serial}``: the engine's counting id column)."""

VOTE_COLUMNS = tuple(VOTE_SCHEMA)


class VoteRejected(ArenaError, ValueError):
    """A vote that was not recorded; the message is safe to show the rater."""


class VoteStoreError(DatabaseFailure):
    """The votes file or database cannot be opened, read or written: one line with the
    file or database and the cause. Nothing was recorded by the call that raised it."""


SCHEMA_VERSION = 4
"""The store's layout: 0 is the first release (no version recorded), 2 adds the raw
answer text, 3 the thinking and follow-up turns, 4 the state every process of a study
shares (reservations, generated answers, token failures, lockouts, sessions). Older
stores migrate forward on open; a newer one is refused in one line (this workbench would
misread it)."""

# Columns added after the first release: an older store gets them on open.
_ADDED_COLUMNS = (
    ("battles", "raw_a", "TEXT"),
    ("battles", "raw_b", "TEXT"),
    ("battles", "reasoning_a", "TEXT"),
    ("battles", "reasoning_b", "TEXT"),
    ("battles", "raw_reasoning_a", "TEXT"),
    ("battles", "raw_reasoning_b", "TEXT"),
    ("battles", "follow_ups", "TEXT"),
    ("votes", "turns", "INTEGER NOT NULL DEFAULT 1"),
)

MIGRATED_TABLES = ("battles", "votes", "answers")
"""What :func:`migrate_store` copies (the rest is short-lived state)."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse_formula(value: str | None) -> str | None:
    """``value`` made safe for a spreadsheet: text starting like a formula (``=``, ``+``,
    ``-``, ``@``, tab, carriage return) gets a leading apostrophe, so it stays text."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _text_ok(value: str) -> bool:
    """True when ``value`` can be stored as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class FollowUp:
    """One follow-up turn of a battle: the rater's message and both models' answers, as
    shown and as written (the same fields as the battle's first turn)."""

    turn: int
    """Which user turn this is (2 for the first follow-up)."""
    prompt: str
    answer_a: str
    answer_b: str
    raw_a: str
    raw_b: str
    reasoning_a: str = ""
    reasoning_b: str = ""
    raw_reasoning_a: str = ""
    raw_reasoning_b: str = ""
    response_a_id: str | None = None
    response_b_id: str | None = None
    created_at: str = ""
    """ISO time the turn was stored."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FollowUp:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class BattleRecord:
    """A battle as stored: both identities stay server-side until the vote. Every field
    is the ``battles`` column of the same name (a new column: a field here, the column in
    :data:`_SCHEMA` and, for older stores, in ``_ADDED_COLUMNS``)."""

    battle_id: str
    study: str
    rater: str
    model_a: str
    model_b: str
    swapped: bool
    prompt: str
    answer_a: str
    """The text shown as A."""
    answer_b: str
    """The text shown as B."""
    prompt_id: str | None = None
    prompt_set: str | None = None
    category: str | None = None
    language: str | None = None
    response_a_id: str | None = None
    response_b_id: str | None = None
    source_a: str = "pool"
    source_b: str = "pool"
    flags: tuple[str, ...] = ()
    created_at: datetime | None = None
    expires_at: datetime | None = None
    status: str = "open"
    raw_a: str | None = None
    """What model A wrote (None: the same as ``answer_a``)."""
    raw_b: str | None = None
    """What model B wrote (None: the same as ``answer_b``)."""
    reasoning_a: str = ""
    """The thinking of answer A as the rater was shown it ("": hidden, withheld or none)."""
    reasoning_b: str = ""
    raw_reasoning_a: str | None = None
    """The thinking model A wrote with its first answer (None: not recorded)."""
    raw_reasoning_b: str | None = None
    follow_ups: tuple[FollowUp, ...] = ()
    """The follow-up turns so far, in order."""

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def turns(self) -> int:
        """User turns of the battle's conversation (1 without follow-ups)."""
        return 1 + len(self.follow_ups)

    def check_open(self, now: datetime | None = None) -> None:
        """Raise VoteRejected unless the battle still takes a vote (or a follow-up) at
        ``now`` (default: the current time)."""
        if self.status == "voted":
            raise VoteRejected("this battle already has your vote; it was counted once")
        if self.status == "skipped":
            raise VoteRejected("you skipped this battle; start a new one")
        if self.expires_at is not None and (now or _now()) > self.expires_at:
            raise VoteRejected("this battle has expired; start a new one")


_BATTLE_FIELDS = tuple(f.name for f in fields(BattleRecord))


def _battle_row(b: BattleRecord) -> dict[str, Any]:
    """``b`` as the values of its ``battles`` row."""
    created = b.created_at or _now()
    row: dict[str, Any] = {}
    for name in _BATTLE_FIELDS:
        value = getattr(b, name)
        if isinstance(value, bool):
            value = int(value)
        elif name == "follow_ups":
            value = _follow_ups_json(value)
        elif isinstance(value, tuple):
            value = json.dumps(list(value))
        row[name] = value
    row["created_at"] = _iso(created)
    row["expires_at"] = _iso(b.expires_at or created)
    return row


def _battle(row: dict[str, Any]) -> BattleRecord:
    """The battle of a ``battles`` row (columns an older store lacks take their default)."""
    values: dict[str, Any] = {k: row[k] for k in _BATTLE_FIELDS if k in row}
    values["swapped"] = bool(values["swapped"])
    values["flags"] = tuple(json.loads(values.get("flags") or "[]"))
    values["follow_ups"] = tuple(
        FollowUp.from_dict(t) for t in json.loads(values.get("follow_ups") or "[]")
    )
    for key in ("reasoning_a", "reasoning_b"):
        values[key] = values.get(key) or ""
    for key in ("created_at", "expires_at"):
        values[key] = _parse_time(values.get(key))
    return BattleRecord(**values)


def _follow_ups_json(turns: tuple[FollowUp, ...]) -> str:
    return json.dumps([t.as_dict() for t in turns], ensure_ascii=False)


@dataclass(frozen=True)
class VoteOutcome:
    """What a rater learns once the vote is committed."""

    battle_id: str
    model_a: str
    model_b: str
    choice: str
    winner: str
    flagged: bool
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Reservation:
    """A battle being prepared: its pair and the pooled answers it took."""

    reservation_id: str
    rater: str
    model_a: str
    model_b: str
    response_a_id: str | None
    """The pooled answer taken for A (None: one is to be generated)."""
    response_b_id: str | None
    generating: bool
    """True while it waits for a generated answer."""
    expires_at: datetime
    """When a reservation its process never finished stops counting."""
    battle_id: str | None = None
    """For a follow-up turn: its battle (one follow-up per battle at a time); None for a
    new battle."""


@dataclass(frozen=True)
class PlanState:
    """What the study's store says when a battle of ``rater`` is planned (read inside the
    transaction that stores the plan's reservation)."""

    rater: str
    open_battles: tuple[BattleRecord, ...]
    """The rater's battles that still take a vote."""
    reservations: tuple[Reservation, ...]
    """The rater's battles being prepared (by any process)."""
    following: frozenset[str]
    """The rater's battles whose follow-up turn is being answered."""
    counts: dict[frozenset[str], int]
    """Per pair: battles voted on or open, plus battles being prepared."""
    seen: frozenset[str]
    """Response ids the rater has been shown or is about to be."""
    generating: int
    """Battles of every rater waiting for generated answers."""
    generating_by_rater: int
    """The rater's battles waiting for generated answers."""

    @property
    def held(self) -> int:
        """Open battles plus battles being prepared."""
        return len(self.open_battles) + len(self.reservations)

    @property
    def busy(self) -> set[str]:
        """Answers of the rater's open and preparing battles (none may be reused)."""
        ids = [x for b in self.open_battles for x in (b.response_a_id, b.response_b_id)]
        ids += [x for r in self.reservations for x in (r.response_a_id, r.response_b_id)]
        return {x for x in ids if x}


class VoteStore:
    """The votes store of one study (safe to share between threads and, on PostgreSQL or
    one host's SQLite file, between processes).

    Args:
        location: the SQLite file (created with its parent directory, unless read-only),
            or a ``postgresql://user@host:port/db`` URL.
        study: study name, stored with every row.
        read_only: open an existing store without writing to it (or the file's directory).
        password_env: for a database URL: the environment variable holding the password.

    Raises:
        VoteStoreError: the store cannot be created, opened or read, or was written by a
            newer workbench (one line with the file or database and the cause).
    """

    def __init__(
        self,
        location: str | Path,
        study: str = "study",
        *,
        read_only: bool = False,
        password_env: str | None = None,
    ) -> None:
        self.study = study
        self.read_only = read_only
        self.on_server = is_server_url(location)
        self.path: Path | None = None if self.on_server else Path(location)
        try:
            self._engine: Engine = (
                PostgresEngine(str(location), password_env=password_env, lock_key=study)
                if self.on_server
                else SqliteEngine(location, read_only=read_only)
            )
        except DatabaseFailure as e:
            raise VoteStoreError(str(e)) from None
        self.where = self._engine.where
        """The store in messages (``votes file PATH`` or ``votes database ...``)."""
        try:
            self._prepare()
        except BaseException:
            self._engine.close()
            raise

    def _prepare(self) -> None:
        writable = not self.read_only
        with self._db("cannot open it", write=writable, exclusive=writable) as tx:
            version = self._engine.schema_version(tx)
            if version > SCHEMA_VERSION:
                raise VoteStoreError(
                    f"{self.where}: written by a newer workbench (schema version "
                    f"{version}; this one reads up to {SCHEMA_VERSION}): upgrade workbench"
                )
            if self.read_only:
                if "votes" not in self._engine.tables(tx):
                    raise VoteStoreError(f"{self.where}: holds no votes table")
                return
            if version < SCHEMA_VERSION:
                self._engine.script(tx, _SCHEMA)
                for table, column, kind in _ADDED_COLUMNS:
                    if column not in self._engine.columns(tx, table):
                        tx.run(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                self._engine.set_schema_version(tx, SCHEMA_VERSION)
            tx.run(
                "INSERT INTO meta (key, value) VALUES ('study', ?) ON CONFLICT (key) DO NOTHING",
                (self.study,),
            )
            tx.one("SELECT COUNT(*) AS n FROM votes")  # reads the file

    @contextmanager
    def _db(self, doing: str, *, write: bool = False, exclusive: bool = False) -> Iterator[Tx]:
        """A transaction; a database or OS failure becomes one :class:`VoteStoreError`."""
        try:
            with self._engine.tx(doing, write=write, exclusive=exclusive) as tx:
                yield tx
        except IntegrityFailure as e:
            raise VoteStoreError(f"{self.where}: {doing}: {e}") from None
        except DatabaseFailure as e:
            if isinstance(e, VoteStoreError):
                raise
            raise VoteStoreError(str(e)) from None

    # ------------------------------------------------------------------ battles

    def add_battle(self, b: BattleRecord, reservation_id: str | None = None) -> None:
        """Store a new battle (committed before its answers are shown), and end the
        reservation it was prepared under in the same transaction.

        Raises:
            VoteStoreError: the battle could not be written.
        """
        row = _battle_row(b)
        row["status"] = "open"
        with self._db("cannot store a battle", write=True) as tx:
            tx.run(
                f"INSERT INTO battles ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            if reservation_id is not None:
                tx.run("DELETE FROM reservations WHERE reservation_id = ?", (reservation_id,))

    def get_battle(self, battle_id: str) -> BattleRecord | None:
        """The stored battle, or None."""
        with self._db("cannot read a battle") as tx:
            row = tx.one("SELECT * FROM battles WHERE battle_id = ?", (battle_id,))
        return _battle(row) if row is not None else None

    def _pair_counts(self, tx: Tx, at: str) -> dict[frozenset[str], int]:
        rows = tx.rows(
            """SELECT model_a, model_b, COUNT(*) AS n FROM battles
            WHERE status = 'voted' OR (status = 'open' AND expires_at > ?)
            GROUP BY model_a, model_b
            UNION ALL
            SELECT model_a, model_b, COUNT(*) AS n FROM reservations
            WHERE expires_at > ? AND battle_id IS NULL GROUP BY model_a, model_b""",
            (at, at),
        )
        out: dict[frozenset[str], int] = {}
        for r in rows:
            key = frozenset((r["model_a"], r["model_b"]))
            out[key] = out.get(key, 0) + int(r["n"])
        return out

    def pair_counts(self, now: datetime | None = None) -> dict[frozenset[str], int]:
        """Per unordered pair of models: battles voted on, plus battles still open at
        ``now`` (default: the current time), plus battles being prepared. A battle left
        without a vote stops counting when it expires or is skipped, so skipped battles
        do not starve a pair of votes."""
        with self._db("cannot read the battles") as tx:
            return self._pair_counts(tx, _iso(now or _now()))

    def _open_battles(self, tx: Tx, rater: str, at: str) -> list[BattleRecord]:
        rows = tx.rows(
            "SELECT * FROM battles WHERE rater = ? AND status = 'open' AND expires_at > ?",
            (rater, at),
        )
        return [_battle(r) for r in rows]

    def open_battles(self, rater: str, now: datetime | None = None) -> list[BattleRecord]:
        """``rater``'s battles that still take a vote at ``now`` (default: the current time)."""
        with self._db("cannot read the battles") as tx:
            return self._open_battles(tx, rater, _iso(now or _now()))

    def skip_battle(self, battle_id: str, rater: str) -> bool:
        """Close ``rater``'s open battle ``battle_id`` without a vote; False if there was
        none (unknown, another rater's, voted or skipped already)."""
        if not isinstance(battle_id, str) or not battle_id or not _text_ok(battle_id):
            return False
        with self._db("cannot skip a battle", write=True) as tx:
            n = tx.run(
                "UPDATE battles SET status = 'skipped' "
                "WHERE battle_id = ? AND rater = ? AND status = 'open'",
                (battle_id, rater),
            )
        return n == 1

    def add_follow_up(
        self, battle_id: str, rater: str, turn: FollowUp, *, now: datetime | None = None
    ) -> BattleRecord:
        """Append follow-up ``turn`` to ``rater``'s open battle; the battle as stored now.

        Raises:
            VoteRejected: unknown battle (or another rater's), voted, skipped or expired,
                or not the battle's next turn (another follow-up got there first).
            VoteStoreError: the store failed (nothing was added).
        """
        now = now or _now()
        with self._db("cannot store a follow-up turn", write=True) as tx:
            row = tx.one(
                f"SELECT * FROM battles WHERE battle_id = ?{self._engine.for_update}",
                (battle_id,),
            )
            if row is None or row["rater"] != rater:
                raise VoteRejected("unknown battle")
            b = _battle(row)
            b.check_open(now)
            if turn.turn != b.turns + 1:
                raise VoteRejected("this battle moved on meanwhile; reload it")
            stored = replace(turn, created_at=_iso(now))
            tx.run(
                "UPDATE battles SET follow_ups = ? WHERE battle_id = ?",
                (_follow_ups_json((*b.follow_ups, stored)), battle_id),
            )
        return replace(b, follow_ups=(*b.follow_ups, stored))

    # ------------------------------------------------------------------ planning

    def reserve(
        self,
        rater: str,
        decide: Callable[[PlanState], Reservation],
        now: datetime | None = None,
    ) -> Reservation:
        """Plan a battle of ``rater``: ``decide`` gets the study's state and returns the
        reservation to store (or raises to refuse). State and reservation are read and
        written in one transaction that no other plan of the study, in any process, runs
        beside, so two plans never take the same answers or exceed a cap together.

        Raises:
            VoteStoreError: the store failed; nothing was reserved.
        """
        at = _iso(now or _now())
        with self._db("cannot plan a battle", write=True, exclusive=True) as tx:
            tx.run("DELETE FROM reservations WHERE expires_at <= ?", (at,))
            live = [
                _reservation(r)
                for r in tx.rows("SELECT * FROM reservations WHERE expires_at > ?", (at,))
            ]
            mine = tuple(r for r in live if r.rater == rater and r.battle_id is None)
            shown = tx.rows(
                "SELECT response_a_id, response_b_id FROM battles WHERE rater = ?", (rater,)
            )
            seen = {x for r in shown for x in (r["response_a_id"], r["response_b_id"]) if x}
            seen.update(x for r in mine for x in (r.response_a_id, r.response_b_id) if x)
            state = PlanState(
                rater=rater,
                open_battles=tuple(self._open_battles(tx, rater, at)),
                reservations=mine,
                following=frozenset(
                    r.battle_id for r in live if r.rater == rater and r.battle_id is not None
                ),
                counts=self._pair_counts(tx, at),
                seen=frozenset(seen),
                generating=sum(r.generating for r in live),
                generating_by_rater=sum(r.generating for r in live if r.rater == rater),
            )
            res = decide(state)
            tx.run(
                """INSERT INTO reservations (reservation_id, rater, model_a, model_b,
                response_a_id, response_b_id, battle_id, generating, expires_at)
                VALUES (?,?,?,?,?,?,?,?,?)""",
                (
                    res.reservation_id,
                    res.rater,
                    res.model_a,
                    res.model_b,
                    res.response_a_id,
                    res.response_b_id,
                    res.battle_id,
                    int(res.generating),
                    _iso(res.expires_at),
                ),
            )
        return res

    def release(self, reservation_id: str) -> None:
        """End a reservation whose battle was not stored (generation failed)."""
        with self._db("cannot release a reservation", write=True) as tx:
            tx.run("DELETE FROM reservations WHERE reservation_id = ?", (reservation_id,))

    def add_answer(
        self, prompt: str, model: str, response_id: str, raw: str, raw_reasoning: str = ""
    ) -> None:
        """Add an answer generated on demand to the study's shared pool (once)."""
        with self._db("cannot store an answer", write=True) as tx:
            tx.run(
                """INSERT INTO answers (response_id, prompt, model, raw, raw_reasoning,
                created_at) VALUES (?,?,?,?,?,?) ON CONFLICT (response_id) DO NOTHING""",
                (response_id, prompt, model, raw, raw_reasoning or None, _iso(_now())),
            )

    def answers_since(self, seq: int) -> list[tuple[int, str, str, str, str, str]]:
        """Generated answers stored after ``seq``: (seq, prompt, model, response_id, raw,
        raw_reasoning)."""
        with self._db("cannot read the answers") as tx:
            rows = tx.rows(
                "SELECT answer_seq, prompt, model, response_id, raw, raw_reasoning "
                "FROM answers WHERE answer_seq > ? ORDER BY answer_seq",
                (seq,),
            )
        return [
            (
                int(r["answer_seq"]),
                r["prompt"],
                r["model"],
                r["response_id"],
                r["raw"],
                r["raw_reasoning"] or "",
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ sessions, lockout

    def open_session(self, session_id: str, rater: str) -> None:
        """Record a browser session of ``rater``."""
        with self._db("cannot store a session", write=True) as tx:
            tx.run(
                "INSERT INTO sessions (session_id, rater, created_at) VALUES (?,?,?)",
                (session_id, rater, _iso(_now())),
            )

    def session_rater(self, session_id: str) -> str | None:
        """The rater name of session ``session_id`` (None: unknown)."""
        with self._db("cannot read a session") as tx:
            row = tx.one("SELECT rater FROM sessions WHERE session_id = ?", (session_id,))
        return str(row["rater"]) if row else None

    def lockout_left(self, client: str, now: float) -> float:
        """Seconds ``client`` stays locked out after ``now`` (0 or less: not locked)."""
        with self._db("cannot read the lockouts") as tx:
            row = tx.one("SELECT locked_until FROM lockouts WHERE client = ?", (client,))
        return float(row["locked_until"]) - now if row else 0.0

    def token_failed(
        self, client: str, now: float, *, window_s: float, limit: int, lockout_s: float
    ) -> bool:
        """Count one unknown token from ``client`` at ``now``; True when that makes
        ``limit`` within ``window_s`` and locks the client out for ``lockout_s``."""
        with self._db("cannot count a failed login", write=True) as tx:
            tx.run(
                "DELETE FROM token_failures WHERE client = ? AND failed_at <= ?",
                (client, now - window_s),
            )
            tx.run("INSERT INTO token_failures (client, failed_at) VALUES (?, ?)", (client, now))
            row = tx.one("SELECT COUNT(*) AS n FROM token_failures WHERE client = ?", (client,))
            if row is None or int(row["n"]) < limit:
                return False
            tx.run(
                """INSERT INTO lockouts (client, locked_until) VALUES (?, ?)
                ON CONFLICT (client) DO UPDATE SET locked_until = excluded.locked_until""",
                (client, now + lockout_s),
            )
            tx.run("DELETE FROM token_failures WHERE client = ?", (client,))
        return True

    # ------------------------------------------------------------------ votes

    def record_vote(
        self,
        battle_id: str,
        rater: str,
        choice: str,
        reason: str | None = None,
        *,
        max_reason_chars: int = 1000,
        now: datetime | None = None,
    ) -> VoteOutcome:
        """Record one vote, durably, and return the revealed identities.

        Raises:
            VoteRejected: unknown choice, reason too long or not text, unknown battle (or
                another rater's), battle expired or skipped, or this rater already voted
                on it. Nothing is written in any of these cases.
            VoteStoreError: the store failed (the vote is not recorded).
        """
        if not isinstance(choice, str) or choice not in WINNERS:
            shown = repr(choice) if isinstance(choice, str) else f"of type {type(choice).__name__}"
            raise VoteRejected(f"unknown choice {shown[:40]}; use one of {', '.join(CHOICES)}")
        if reason is not None and not isinstance(reason, str):
            raise VoteRejected("the reason must be text")
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > max_reason_chars:
            raise VoteRejected(
                f"the reason is too long ({len(reason)} characters; at most {max_reason_chars})"
            )
        if reason is not None and not _text_ok(reason):
            raise VoteRejected("the reason holds a character that is not text (a lone surrogate)")
        if (
            not isinstance(battle_id, str)
            or not battle_id
            or len(battle_id) > 200
            or not _text_ok(battle_id)
        ):
            raise VoteRejected("unknown battle")
        now = now or _now()
        try:
            with self._engine.tx("cannot record the vote", write=True) as tx:
                b = self._check_vote(tx, battle_id, rater, now)
                tx.run(
                    f"""INSERT INTO votes ({", ".join(VOTE_COLUMNS[1:])})
                    VALUES ({", ".join("?" * (len(VOTE_COLUMNS) - 1))})""",
                    (
                        battle_id,
                        b.study,
                        rater,
                        b.model_a,
                        b.model_b,
                        "left",
                        "right",
                        int(b.swapped),
                        b.prompt_id,
                        b.prompt_set,
                        b.category,
                        b.language,
                        b.response_a_id,
                        b.response_b_id,
                        choice,
                        WINNERS[choice],
                        reason,
                        int(b.flagged),
                        json.dumps(list(b.flags)),
                        _iso(b.created_at or now),
                        _iso(now),
                        b.turns,
                    ),
                )
                tx.run("UPDATE battles SET status = 'voted' WHERE battle_id = ?", (battle_id,))
        except IntegrityFailure:
            # UNIQUE (battle_id, rater): a racing duplicate that the check did not see.
            raise VoteRejected("this battle already has your vote; it was counted once") from None
        except DatabaseFailure as e:
            raise VoteStoreError(str(e)) from None
        return VoteOutcome(
            battle_id, b.model_a, b.model_b, choice, WINNERS[choice], b.flagged, b.flags
        )

    def _check_vote(self, tx: Tx, battle_id: str, rater: str, now: datetime) -> BattleRecord:
        row = tx.one(
            f"SELECT * FROM battles WHERE battle_id = ?{self._engine.for_update}", (battle_id,)
        )
        # Another rater's battle reads as unknown: ids are not confirmed to guessers.
        if row is None or row["rater"] != rater:
            raise VoteRejected("unknown battle")
        b = _battle(row)
        dup = tx.one(
            "SELECT 1 AS x FROM votes WHERE battle_id = ? AND rater = ?", (battle_id, rater)
        )
        if dup is not None:
            raise VoteRejected("this battle already has your vote; it was counted once")
        b.check_open(now)
        return b

    def count_votes(self, rater: str | None = None) -> int:
        """Votes recorded (by ``rater``, or by everyone)."""
        with self._db("cannot count the votes") as tx:
            if rater is None:
                row = tx.one("SELECT COUNT(*) AS n FROM votes")
            else:
                row = tx.one("SELECT COUNT(*) AS n FROM votes WHERE rater = ?", (rater,))
        return int(row["n"]) if row else 0

    def count_battles(self) -> int:
        """Battles served."""
        with self._db("cannot count the battles") as tx:
            row = tx.one("SELECT COUNT(*) AS n FROM battles")
        return int(row["n"]) if row else 0

    def votes_frame(self, *, include_flagged: bool = False) -> pl.DataFrame:
        """Every vote as a frame in the ``ratings`` votes format (model_a, model_b, winner
        first, then the rest). Flagged battles are left out unless ``include_flagged``."""
        where = "" if include_flagged else "WHERE flagged = 0"
        with self._db("cannot read the votes") as tx:
            rows = tx.rows(f"SELECT {', '.join(VOTE_COLUMNS)} FROM votes {where} ORDER BY vote_id")
        data: dict[str, list[Any]] = {c: [r[c] for r in rows] for c in VOTE_COLUMNS}
        frame = pl.DataFrame(
            {c: data[c] for c in VOTE_COLUMNS},
            schema={
                c: (pl.String() if c.endswith("_at") else VOTE_SCHEMA[c]) for c in VOTE_COLUMNS
            },
            strict=False,
        )
        frame = frame.with_columns(
            pl.col("battle_created_at").str.to_datetime(time_zone="UTC", time_unit="us"),
            pl.col("voted_at").str.to_datetime(time_zone="UTC", time_unit="us"),
        )
        first = VOTE_REQUIRED_COLUMNS
        return frame.select([*first, *[c for c in VOTE_COLUMNS if c not in first]])

    def export(self, path: str | Path, *, include_flagged: bool = False) -> Path:
        """Write the votes to .parquet, .csv or .jsonl (chosen by the suffix). In CSV every
        text that a spreadsheet would run as a formula is defused (:func:`defuse_formula`).

        Raises:
            InputError: unknown format. VoteStoreError: the votes cannot be read.
            OSError: the export file cannot be written.
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".parquet", ".csv", ".jsonl", ".ndjson", ".json"):
            raise ExportFormatError(
                f"unknown export format {p.suffix!r} (use .parquet, .csv or .jsonl)"
            )
        frame = self.votes_frame(include_flagged=include_flagged)
        p.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            frame.write_parquet(p)
        elif suffix == ".csv":
            text = [c for c, t in frame.schema.items() if t == pl.String()]
            frame.with_columns(
                pl.col(pl.Datetime).dt.to_string(),
                *[pl.col(c).map_elements(defuse_formula, return_dtype=pl.String()) for c in text],
            ).write_csv(p)
        else:
            frame.write_ndjson(p)
        return p

    def close(self) -> None:
        """Close the file or the connection pool."""
        self._engine.close()

    def __enter__(self) -> VoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_study_store(study: Study, *, read_only: bool = False) -> VoteStore:
    """The votes store ``study`` names (its ``votes_db`` file or database URL).

    Raises:
        VoteStoreError: see :class:`VoteStore`.
    """
    return VoteStore(
        study.votes_db,
        study.name,
        read_only=read_only,
        password_env=study.votes_db_password_env,
    )


class ExportFormatError(InputError):
    """An export file name whose suffix names no format the store writes."""


def _reservation(row: dict[str, Any]) -> Reservation:
    return Reservation(
        reservation_id=row["reservation_id"],
        rater=row["rater"],
        model_a=row["model_a"],
        model_b=row["model_b"],
        response_a_id=row["response_a_id"],
        response_b_id=row["response_b_id"],
        generating=bool(row["generating"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        battle_id=row["battle_id"],
    )


def migrate_store(source: VoteStore, target: VoteStore) -> dict[str, int]:
    """Copy ``source``'s battles, votes and generated answers into the empty ``target``
    in one transaction, and check the counts.

    Returns:
        Rows copied per table (equal in both stores).

    Raises:
        VoteStoreError: the target already holds battles or votes, a store failed, or the
            counts differ after the copy (nothing is kept then).
    """
    copied: dict[str, int] = {}
    with source._db("cannot read the study") as src:
        have = source._engine.tables(src)
        data = {t: src.rows(f"SELECT * FROM {t}") if t in have else [] for t in MIGRATED_TABLES}
    with target._db("cannot copy the study", write=True, exclusive=True) as dst:
        for table in MIGRATED_TABLES:
            row = dst.one(f"SELECT COUNT(*) AS n FROM {table}")
            if table != "answers" and row and int(row["n"]):
                raise VoteStoreError(
                    f"{target.where}: already holds {row['n']} {table}; "
                    "migrate into an empty database"
                )
        for table in MIGRATED_TABLES:
            rows = data[table]
            if table == "answers":  # the target numbers its answers itself
                rows = [{k: v for k, v in r.items() if k != "answer_seq"} for r in rows]
            if rows:
                cols = list(rows[0])
                conflict = " ON CONFLICT (response_id) DO NOTHING" if table == "answers" else ""
                dst.many(
                    f"INSERT INTO {table} ({', '.join(cols)}) "
                    f"VALUES ({', '.join('?' * len(cols))}){conflict}",
                    [[r[c] for c in cols] for r in rows],
                )
            copied[table] = len(rows)
        if isinstance(target._engine, PostgresEngine):
            target._engine.reset_serial(dst, "votes", "vote_id")
        for table in ("battles", "votes"):
            row = dst.one(f"SELECT COUNT(*) AS n FROM {table}")
            if row is None or int(row["n"]) != copied[table]:
                raise VoteStoreError(
                    f"{target.where}: {table} counts differ after the copy "
                    f"({copied[table]} read, {row['n'] if row else 0} stored); nothing kept"
                )
    return copied
