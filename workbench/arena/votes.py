"""Battles and votes in SQLite: one row per battle, one row per vote.

Durability: the database runs in WAL mode with ``synchronous=FULL``, so every commit
fsyncs the write-ahead log before ``record_vote`` returns, and the rater is told
"recorded" only after that. (WAL with ``synchronous=NORMAL`` would already survive a killed
server process, since committed pages sit in the OS cache, but not a power cut; a vote
costs one fsync, which a study of human raters can afford.)

Exactly-once: a vote is checked and inserted inside one ``BEGIN IMMEDIATE`` transaction,
and ``UNIQUE(battle_id, rater)`` backs the check, so a duplicate or racing submission is
rejected with a message and never counted twice. Every rejection happens before any write.

Failures say what and where: a votes file that is not SQLite, truncated or corrupt, a
directory that cannot be written, a full disk, a COMMIT that failed, each raise
:class:`VoteStoreError` with one line naming the file and the cause, and a vote whose
COMMIT failed is never reported recorded. A read-only store (``read_only=True``) reads a
votes file in a directory or on a medium it cannot write to (``--export``).

Battles keep the answer text a rater was shown (``answer_a``, ``answer_b``) and the raw
text the model wrote (``raw_a``, ``raw_b``); see :mod:`workbench.arena.shown`. The
thinking is kept the same way (``reasoning_a`` what the rater was shown of it, empty when
the study hides it or it named a model; ``raw_reasoning_a`` what the model wrote), and a
battle's follow-up turns (``follow_ups``, JSON) hold the same fields per turn. A vote
covers the whole conversation; its ``turns`` says how many user turns it had.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import polars as pl

from workbench.errors import ArenaError, InputError
from workbench.schemas import VOTE_REQUIRED_COLUMNS, VOTE_SCHEMA

__all__ = [
    "CHOICES",
    "SCHEMA_VERSION",
    "WINNERS",
    "BattleRecord",
    "FollowUp",
    "VoteOutcome",
    "VoteRejected",
    "VoteStore",
    "VoteStoreError",
    "defuse_formula",
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
    vote_id        INTEGER PRIMARY KEY AUTOINCREMENT,
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
"""

VOTE_COLUMNS = tuple(VOTE_SCHEMA)


class VoteRejected(ArenaError, ValueError):
    """A vote that was not recorded; the message is safe to show the rater."""


class VoteStoreError(ArenaError):
    """The votes file cannot be opened, read or written: one line with the file and the
    cause. Nothing was recorded by the call that raised it."""


SCHEMA_VERSION = 3
"""The votes file's layout, kept in ``PRAGMA user_version``: 0 is the first release
(no version recorded), 2 adds the raw answer text, 3 the thinking and follow-up turns.
Older files migrate forward on open; a newer file is refused in one line (this workbench
would misread it)."""

# Columns added after the first release: an older votes file gets them on open.
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

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse_formula(value: str | None) -> str | None:
    """``value`` made safe for a spreadsheet: text starting like a formula (``=``, ``+``,
    ``-``, ``@``, tab, carriage return) gets a leading apostrophe, so it stays text."""
    if value and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _cause(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return " ".join(str(e).split()) or type(e).__name__


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
    """A battle as stored: both identities stay server-side until the vote."""

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


class VoteStore:
    """The SQLite file of one study (safe to share between threads).

    Args:
        path: the database file (created with its parent directory, unless read-only).
        study: study name, stored with every row.
        read_only: open an existing file without writing to it or its directory.

    Raises:
        VoteStoreError: the file cannot be created, opened or read (one line with the
            file and the cause).
    """

    def __init__(self, path: str | Path, study: str = "study", *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.study = study
        self.read_only = read_only
        # One connection, one lock: votes are tiny, and serialising them in-process keeps
        # "check then insert" atomic without SQLITE_BUSY retries between our own threads.
        self._lock = threading.RLock()
        if self.path.is_dir():
            raise VoteStoreError(f"votes file {self.path}: is a directory")
        try:
            self._conn = self._open_read_only() if read_only else self._open()
        except VoteStoreError:
            raise
        except (sqlite3.Error, OSError) as e:
            raise VoteStoreError(f"votes file {self.path}: cannot open it: {_cause(e)}") from None

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
            if self._check_version(conn) < SCHEMA_VERSION:
                conn.executescript(_SCHEMA)
                for table, column, kind in _ADDED_COLUMNS:
                    have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('study', ?)", (self.study,)
            )
            conn.execute("SELECT COUNT(*) FROM votes").fetchone()  # reads the file
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
        try:
            self._check_version(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise VoteStoreError(
                f"votes file {self.path}: written by a newer workbench (schema version "
                f"{version}; this one reads up to {SCHEMA_VERSION}): upgrade workbench"
            )
        return version

    @contextmanager
    def _db(self, doing: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; a database or OS failure becomes one line."""
        with self._lock:
            try:
                yield self._conn
            except (sqlite3.Error, OSError) as e:
                raise VoteStoreError(f"votes file {self.path}: {doing}: {_cause(e)}") from None

    # ------------------------------------------------------------------ battles

    def add_battle(self, b: BattleRecord) -> None:
        """Store a new battle (committed before its answers are shown).

        Raises:
            VoteStoreError: the battle could not be written.
        """
        created = b.created_at or _now()
        expires = b.expires_at or created
        with self._db("cannot store a battle") as conn:
            conn.execute(
                """INSERT INTO battles (battle_id, study, rater, model_a, model_b, swapped,
                prompt_id, prompt_set, category, language, prompt, response_a_id,
                response_b_id, answer_a, answer_b, raw_a, raw_b, reasoning_a, reasoning_b,
                raw_reasoning_a, raw_reasoning_b, follow_ups, source_a, source_b, flags,
                created_at, expires_at, status)
                VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'open')""",
                (
                    b.battle_id,
                    b.study,
                    b.rater,
                    b.model_a,
                    b.model_b,
                    int(b.swapped),
                    b.prompt_id,
                    b.prompt_set,
                    b.category,
                    b.language,
                    b.prompt,
                    b.response_a_id,
                    b.response_b_id,
                    b.answer_a,
                    b.answer_b,
                    b.raw_a,
                    b.raw_b,
                    b.reasoning_a,
                    b.reasoning_b,
                    b.raw_reasoning_a,
                    b.raw_reasoning_b,
                    _follow_ups_json(b.follow_ups),
                    b.source_a,
                    b.source_b,
                    json.dumps(list(b.flags)),
                    _iso(created),
                    _iso(expires),
                ),
            )

    def get_battle(self, battle_id: str) -> BattleRecord | None:
        """The stored battle, or None."""
        with self._db("cannot read a battle") as conn:
            row = conn.execute("SELECT * FROM battles WHERE battle_id = ?", (battle_id,)).fetchone()
        return _battle(row) if row is not None else None

    def pair_counts(self, now: datetime | None = None) -> dict[frozenset[str], int]:
        """Per unordered pair of models: battles voted on, plus battles still open at
        ``now`` (default: the current time). A battle left without a vote stops counting
        when it expires or is skipped, so skipped battles do not starve a pair of votes."""
        at = _iso(now or _now())
        with self._db("cannot read the battles") as conn:
            rows = conn.execute(
                """SELECT model_a, model_b, COUNT(*) AS n FROM battles
                WHERE status = 'voted' OR (status = 'open' AND expires_at > ?)
                GROUP BY model_a, model_b""",
                (at,),
            ).fetchall()
        out: dict[frozenset[str], int] = {}
        for r in rows:
            key = frozenset((r["model_a"], r["model_b"]))
            out[key] = out.get(key, 0) + int(r["n"])
        return out

    def seen_responses(self) -> dict[str, set[str]]:
        """Response ids each rater has been shown (so the pool can avoid repeats)."""
        with self._db("cannot read the battles") as conn:
            rows = conn.execute(
                "SELECT rater, response_a_id, response_b_id FROM battles"
            ).fetchall()
        out: dict[str, set[str]] = {}
        for r in rows:
            seen = out.setdefault(r["rater"], set())
            seen.update(x for x in (r["response_a_id"], r["response_b_id"]) if x)
        return out

    def open_battles(self, rater: str, now: datetime | None = None) -> list[BattleRecord]:
        """``rater``'s battles that still take a vote at ``now`` (default: the current time)."""
        at = _iso(now or _now())
        with self._db("cannot read the battles") as conn:
            rows = conn.execute(
                "SELECT * FROM battles WHERE rater = ? AND status = 'open' AND expires_at > ?",
                (rater, at),
            ).fetchall()
        return [_battle(r) for r in rows]

    def add_follow_up(
        self, battle_id: str, rater: str, turn: FollowUp, *, now: datetime | None = None
    ) -> BattleRecord:
        """Append follow-up ``turn`` to ``rater``'s open battle; the battle as stored now.

        Raises:
            VoteRejected: unknown battle (or another rater's), voted, skipped or expired,
                or not the battle's next turn (another follow-up got there first).
            VoteStoreError: the votes file failed (nothing was added).
        """
        now = now or _now()
        with self._db("cannot store a follow-up turn") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT * FROM battles WHERE battle_id = ?", (battle_id,)
                ).fetchone()
                if row is None or row["rater"] != rater:
                    raise VoteRejected("unknown battle")
                b = _battle(row)
                b.check_open(now)
                if turn.turn != b.turns + 1:
                    raise VoteRejected("this battle moved on meanwhile; reload it")
                stored = replace(turn, created_at=_iso(now))
                conn.execute(
                    "UPDATE battles SET follow_ups = ? WHERE battle_id = ?",
                    (_follow_ups_json((*b.follow_ups, stored)), battle_id),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return replace(b, follow_ups=(*b.follow_ups, stored))

    def skip_battle(self, battle_id: str, rater: str) -> bool:
        """Close ``rater``'s open battle ``battle_id`` without a vote; False if there was
        none (unknown, another rater's, voted or skipped already)."""
        if not isinstance(battle_id, str) or not battle_id or not _text_ok(battle_id):
            return False
        with self._db("cannot skip a battle") as conn:
            cur = conn.execute(
                "UPDATE battles SET status = 'skipped' "
                "WHERE battle_id = ? AND rater = ? AND status = 'open'",
                (battle_id, rater),
            )
        return cur.rowcount == 1

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
            VoteStoreError: the votes file failed (the vote is not recorded).
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
        with self._db("cannot record the vote") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT * FROM battles WHERE battle_id = ?", (battle_id,)
                ).fetchone()
                # Another rater's battle reads as unknown: ids are not confirmed to guessers.
                if row is None or row["rater"] != rater:
                    raise VoteRejected("unknown battle")
                b = _battle(row)
                dup = conn.execute(
                    "SELECT 1 FROM votes WHERE battle_id = ? AND rater = ?", (battle_id, rater)
                ).fetchone()
                if dup is not None:
                    raise VoteRejected("this battle already has your vote; it was counted once")
                b.check_open(now)
                conn.execute(
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
                conn.execute(
                    "UPDATE battles SET status = 'voted' WHERE battle_id = ?", (battle_id,)
                )
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT may have rolled back already: rolling back again would
                # raise "no transaction is active" and hide the real cause.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return VoteOutcome(
            battle_id, b.model_a, b.model_b, choice, WINNERS[choice], b.flagged, b.flags
        )

    def count_votes(self, rater: str | None = None) -> int:
        """Votes recorded (by ``rater``, or by everyone)."""
        with self._db("cannot count the votes") as conn:
            if rater is None:
                return int(conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0])
            return int(
                conn.execute("SELECT COUNT(*) FROM votes WHERE rater = ?", (rater,)).fetchone()[0]
            )

    def count_battles(self) -> int:
        """Battles served."""
        with self._db("cannot count the battles") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM battles").fetchone()[0])

    def votes_frame(self, *, include_flagged: bool = False) -> pl.DataFrame:
        """Every vote as a frame in the ``ratings`` votes format (model_a, model_b, winner
        first, then the rest). Flagged battles are left out unless ``include_flagged``."""
        where = "" if include_flagged else "WHERE flagged = 0"
        with self._db("cannot read the votes") as conn:
            rows = conn.execute(
                f"SELECT {', '.join(VOTE_COLUMNS)} FROM votes {where} ORDER BY vote_id"
            ).fetchall()
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
        """Close the file."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> VoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ExportFormatError(InputError):
    """An export file name whose suffix names no format the store writes."""


def _follow_ups_json(turns: tuple[FollowUp, ...]) -> str:
    return json.dumps([t.as_dict() for t in turns], ensure_ascii=False)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _battle(row: sqlite3.Row) -> BattleRecord:
    keys = row.keys()
    return BattleRecord(
        battle_id=row["battle_id"],
        study=row["study"],
        rater=row["rater"],
        model_a=row["model_a"],
        model_b=row["model_b"],
        swapped=bool(row["swapped"]),
        prompt=row["prompt"],
        answer_a=row["answer_a"],
        answer_b=row["answer_b"],
        prompt_id=row["prompt_id"],
        prompt_set=row["prompt_set"],
        category=row["category"],
        language=row["language"],
        response_a_id=row["response_a_id"],
        response_b_id=row["response_b_id"],
        source_a=row["source_a"],
        source_b=row["source_b"],
        flags=tuple(json.loads(row["flags"] or "[]")),
        created_at=_parse_time(row["created_at"]),
        expires_at=_parse_time(row["expires_at"]),
        status=row["status"],
        raw_a=row["raw_a"] if "raw_a" in keys else None,
        raw_b=row["raw_b"] if "raw_b" in keys else None,
        reasoning_a=(row["reasoning_a"] if "reasoning_a" in keys else None) or "",
        reasoning_b=(row["reasoning_b"] if "reasoning_b" in keys else None) or "",
        raw_reasoning_a=row["raw_reasoning_a"] if "raw_reasoning_a" in keys else None,
        raw_reasoning_b=row["raw_reasoning_b"] if "raw_reasoning_b" in keys else None,
        follow_ups=tuple(
            FollowUp.from_dict(t)
            for t in json.loads((row["follow_ups"] if "follow_ups" in keys else None) or "[]")
        ),
    )
