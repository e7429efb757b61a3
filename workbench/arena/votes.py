"""Battles and votes in SQLite: one row per battle, one row per vote.

Durability: the database runs in WAL mode with ``synchronous=FULL``, so every commit
fsyncs the write-ahead log before ``record_vote`` returns, and the rater is told
"recorded" only after that. (WAL with ``synchronous=NORMAL`` would already survive a killed
server process, since committed pages sit in the OS cache, but not a power cut; a vote
costs one fsync, which a study of human raters can afford.)

Exactly-once: a vote is checked and inserted inside one ``BEGIN IMMEDIATE`` transaction,
and ``UNIQUE(battle_id, rater)`` backs the check, so a duplicate or racing submission is
rejected with a message and never counted twice. Every rejection happens before any write.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from workbench.errors import ArenaError
from workbench.schemas import VOTE_REQUIRED_COLUMNS, VOTE_SCHEMA

__all__ = [
    "CHOICES",
    "WINNERS",
    "BattleRecord",
    "VoteOutcome",
    "VoteRejected",
    "VoteStore",
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
    answer_a       TEXT NOT NULL,
    answer_b       TEXT NOT NULL,
    source_a       TEXT NOT NULL,   -- pool or generated
    source_b       TEXT NOT NULL,
    flags          TEXT NOT NULL,   -- JSON list of identity-guard reasons
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    status         TEXT NOT NULL    -- open, voted
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
    UNIQUE (battle_id, rater)
);
"""

VOTE_COLUMNS = tuple(VOTE_SCHEMA)


class VoteRejected(ArenaError, ValueError):
    """A vote that was not recorded; the message is safe to show the rater."""


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


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
    answer_b: str
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

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


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
        path: the database file (created with its parent directory).
        study: study name, stored with every row.
    """

    def __init__(self, path: str | Path, study: str = "study") -> None:
        self.path = Path(path)
        self.study = study
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, one lock: votes are tiny, and serialising them in-process keeps
        # "check then insert" atomic without SQLITE_BUSY retries between our own threads.
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{self.path}: cannot switch to WAL mode ({mode})")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('study', ?)", (study,)
            )

    # ------------------------------------------------------------------ battles

    def add_battle(self, b: BattleRecord) -> None:
        """Store a new battle (committed before its answers are shown)."""
        created = b.created_at or _now()
        expires = b.expires_at or created
        with self._lock:
            self._conn.execute(
                """INSERT INTO battles (battle_id, study, rater, model_a, model_b, swapped,
                prompt_id, prompt_set, category, language, prompt, response_a_id,
                response_b_id, answer_a, answer_b, source_a, source_b, flags, created_at,
                expires_at, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'open')""",
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
                    b.source_a,
                    b.source_b,
                    json.dumps(list(b.flags)),
                    _iso(created),
                    _iso(expires),
                ),
            )

    def get_battle(self, battle_id: str) -> BattleRecord | None:
        """The stored battle, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM battles WHERE battle_id = ?", (battle_id,)
            ).fetchone()
        return _battle(row) if row is not None else None

    def pair_counts(self, now: datetime | None = None) -> dict[frozenset[str], int]:
        """Per unordered pair of models: battles voted on, plus battles still open at
        ``now`` (default: the current time). A battle left without a vote stops counting
        when it expires, so skipped battles do not starve a pair of votes."""
        at = _iso(now or _now())
        with self._lock:
            rows = self._conn.execute(
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
        with self._lock:
            rows = self._conn.execute(
                "SELECT rater, response_a_id, response_b_id FROM battles"
            ).fetchall()
        out: dict[str, set[str]] = {}
        for r in rows:
            seen = out.setdefault(r["rater"], set())
            seen.update(x for x in (r["response_a_id"], r["response_b_id"]) if x)
        return out

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
            VoteRejected: unknown choice, reason too long, unknown battle (or another
                rater's), battle expired, or this rater already voted on it. Nothing is
                written in any of these cases.
        """
        if choice not in WINNERS:
            raise VoteRejected(f"unknown choice {choice!r}; use one of {', '.join(CHOICES)}")
        if reason is not None and not isinstance(reason, str):
            raise VoteRejected("the reason must be text")
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > max_reason_chars:
            raise VoteRejected(
                f"the reason is too long ({len(reason)} characters; at most {max_reason_chars})"
            )
        if not isinstance(battle_id, str) or not battle_id or len(battle_id) > 200:
            raise VoteRejected("unknown battle")
        now = now or _now()
        with self._lock:
            conn = self._conn
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
                if dup is not None or b.status != "open":
                    raise VoteRejected("this battle already has your vote; it was counted once")
                if b.expires_at is not None and now > b.expires_at:
                    raise VoteRejected("this battle has expired; start a new one")
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
                    ),
                )
                conn.execute(
                    "UPDATE battles SET status = 'voted' WHERE battle_id = ?", (battle_id,)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return VoteOutcome(
            battle_id, b.model_a, b.model_b, choice, WINNERS[choice], b.flagged, b.flags
        )

    def count_votes(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0])

    def count_battles(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM battles").fetchone()[0])

    def votes_frame(self, *, include_flagged: bool = False) -> pl.DataFrame:
        """Every vote as a frame in the ``ratings`` votes format (model_a, model_b, winner
        first, then the rest). Flagged battles are left out unless ``include_flagged``."""
        where = "" if include_flagged else "WHERE flagged = 0"
        with self._lock:
            rows = self._conn.execute(
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
        """Write the votes to .parquet, .csv or .jsonl (chosen by the suffix)."""
        p = Path(path)
        frame = self.votes_frame(include_flagged=include_flagged)
        suffix = p.suffix.lower()
        p.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            frame.write_parquet(p)
        elif suffix == ".csv":
            frame.with_columns(pl.col(pl.Datetime).dt.to_string()).write_csv(p)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            frame.write_ndjson(p)
        else:
            raise ValueError(f"unknown export format {p.suffix!r} (use .parquet, .csv or .jsonl)")
        return p

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> VoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _battle(row: sqlite3.Row) -> BattleRecord:
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
    )
