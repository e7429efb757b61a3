"""Battles: which two models meet, on which prompt, with which answers.

- Pair sampling keeps votes per pair balanced: the pair with the fewest votes and open
  battles goes next (a battle left unvoted stops counting when it expires or is skipped),
  ties broken at random, and left/right is a coin flip.
- Answers come from the pool of stored runs made with the same prompt and settings, or
  are generated on demand; a battle is returned only once both answers exist, so the
  speed of a model can never show which one it is. A rater is shown the answer cleaned
  the same way for every model (:func:`~workbench.arena.shown.shown_answer`).
- Answers are reserved for a battle atomically, and a rater holds at most
  ``max_open_battles`` open battles, so two battles of one rater never share an answer
  (the reveal of one would unblind the other). The reservation is a row in the study's
  store, planned in a transaction no other plan runs beside, so every arena process of a
  study (on one PostgreSQL database) keeps these rules together.
- Generation has bounds, in total and per rater: past them a battle is refused at once
  with "busy, try again" instead of waiting, and votes never wait behind generation.
- The identity guard flags answers that name a model family or maker; flagged battles
  are recorded with the reason and left out of ratings by default.
- Answers generated on demand join the study's shared pool in the store, so another
  process uses them rather than generating its own.
- Model identities live only here and in the votes store until the vote; what a rater
  receives (:class:`BattleView`) carries an unguessable id and the two texts.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from workbench.arena.guard import identity_terms
from workbench.arena.shown import shown_answer
from workbench.arena.study import Rater, Study
from workbench.arena.votes import (
    BattleRecord,
    PlanState,
    Reservation,
    VoteOutcome,
    VoteStore,
    open_study_store,
)
from workbench.backends.base import WORKBENCH_SAMPLING, GenerationConfig, Prompt
from workbench.errors import ArenaError
from workbench.runner import ResponseFinished, Runner
from workbench.store import RunStore, load_runs

__all__ = [
    "POOLED_FINISH",
    "RESERVATION_TTL_S",
    "AnswerPool",
    "Arena",
    "ArenaError",
    "BattleView",
    "PoolAnswer",
    "choose_pair",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- pairs


def choose_pair(
    models: Sequence[str], counts: dict[frozenset[str], int], rng: random.Random
) -> tuple[str, str]:
    """The next battle's (left, right) models.

    The pair with the fewest battles so far is chosen (ties broken at random), and which
    model goes left is a coin flip, so neither the pair nor the side tells a rater anything.
    """
    if len(models) < 2:
        raise ValueError("a battle needs at least two models")
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
    least = min(counts.get(frozenset(p), 0) for p in pairs)
    left, right = rng.choice([p for p in pairs if counts.get(frozenset(p), 0) == least])
    if rng.random() < 0.5:
        left, right = right, left
    return left, right


# --------------------------------------------------------------------------- pool


@dataclass(frozen=True)
class PoolAnswer:
    """One stored response usable in a battle."""

    response_id: str
    """The run row's row_id."""
    text: str
    """What a rater is shown (``shown_answer(raw)``)."""
    raw: str
    """What the model wrote."""

    @classmethod
    def of(cls, response_id: str, raw: str) -> PoolAnswer:
        """The answer with its shown text."""
        return cls(response_id, shown_answer(raw), raw)


POOLED_FINISH = ("stop", "length")
"""Finish reasons of a complete answer. A row cut short ("interrupted", "cancelled") or
failed ("error"), or one with an error message, never goes into a battle."""

_POOL_MATCH = ("temperature", "top_p", "top_k", "max_tokens")

RESERVATION_TTL_S = 900.0
"""Seconds a battle being prepared holds its pair and answers; a process that died
mid-preparation frees them when this runs out."""


class AnswerPool:
    """Pre-generated answers by (prompt text, model name)."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], list[PoolAnswer]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_runs(
        cls, runs: pl.DataFrame, config: GenerationConfig, models: Sequence[str]
    ) -> AnswerPool:
        """Rows of stored runs made with ``config``'s sampling settings by ``models``
        that finished completely, without error, and say something once cleaned."""
        pool = cls()
        if runs.height == 0:
            return pool
        cond = (
            pl.col("model").is_in(list(models))
            & pl.col("error").is_null()
            & pl.col("response").is_not_null()
            & pl.col("finish_reason").is_in(list(POOLED_FINISH))
        )
        for key in _POOL_MATCH:
            value = getattr(config, key)
            if value is None:
                # Left to the model's default: rows that took a default too, or (rows that
                # name no defaults, stored before GGUF defaults were read) workbench's value.
                took = pl.col("sampling_defaults").str.json_path_match(f"$.{key}").is_not_null()
                named_none = pl.col("sampling_defaults").is_null()
                cond &= took | (named_none & (pl.col(key) == WORKBENCH_SAMPLING[key]))
            else:
                cond &= pl.col(key) == value
        if config.system_prompt is None:
            cond &= pl.col("system_prompt").is_null()
        else:
            cond &= pl.col("system_prompt") == config.system_prompt
        if config.seed is not None:
            cond &= pl.col("seed") == config.seed
        rows = runs.filter(cond).select("prompt", "model", "row_id", "response")
        for prompt, model, row_id, response in rows.iter_rows():
            answer = PoolAnswer.of(row_id, response)
            if answer.text:
                pool.add(prompt, model, answer)
        return pool

    def add(self, prompt: str, model: str, answer: PoolAnswer) -> None:
        """Add ``answer`` (once) to the answers of ``model`` to ``prompt``."""
        with self._lock:
            bucket = self._answers.setdefault((prompt, model), [])
            if all(a.response_id != answer.response_id for a in bucket):
                bucket.append(answer)

    def answers(self, prompt: str, model: str) -> list[PoolAnswer]:
        """The pooled answers of ``model`` to ``prompt``."""
        with self._lock:
            return list(self._answers.get((prompt, model), ()))

    def has(self, prompt: str, models: Iterable[str]) -> bool:
        """True when every one of ``models`` has an answer to ``prompt``."""
        return all(self.answers(prompt, m) for m in models)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._answers.values())


# --------------------------------------------------------------------------- arena


@dataclass(frozen=True)
class BattleView:
    """What a rater is shown before voting: no model identity anywhere."""

    battle_id: str
    prompt: str
    answer_a: str
    answer_b: str
    category: str | None = None
    language: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "battle_id": self.battle_id,
            "prompt": self.prompt,
            "answer_a": self.answer_a,
            "answer_b": self.answer_b,
            "category": self.category,
            "language": self.language,
        }


BUSY = "busy: answers are being written for other raters; try again in a minute"
"""The refusal past the generation bounds."""


def check_text(value: object, what: str) -> str:
    """``value`` as text a rater may send (any string storable as UTF-8).

    Raises:
        ArenaError: not a string, or a string with a lone surrogate.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ArenaError(f"the {what} must be text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ArenaError(
            f"the {what} holds a character that is not text (a lone surrogate)"
        ) from None
    return value


@dataclass
class _Plan:
    """A battle being prepared: what was chosen and reserved in the store."""

    rater: str
    left: str
    right: str
    prompt: Prompt
    answers: list[PoolAnswer | None]
    """Pooled answers, None where one is to be generated."""
    reservation: Reservation | None = None


class Arena:
    """The blind study engine behind the Gradio app (usable without it).

    Args:
        study: the parsed study.
        store: where battles and votes go (default: ``study.votes_db``).
        seed: seed for pair, prompt and side sampling (None: from the OS).
        runs: stored runs to pool answers from (default: ``study.runs_root``'s runs).
    """

    def __init__(
        self,
        study: Study,
        *,
        store: VoteStore | None = None,
        seed: int | None = None,
        runs: pl.DataFrame | None = None,
    ) -> None:
        self.study = study
        self.store = store or open_study_store(study)
        self._rng = random.Random(seed if seed is not None else secrets.randbits(64))
        self._lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._runner: Runner | None = None
        self._generating = 0  # this process's battles waiting for generated answers
        self._named: dict[str, bool] = {}
        if runs is None and study.runs_root is not None:
            runs = load_runs(study.runs_root)
        self.pool = AnswerPool.from_runs(
            runs if runs is not None else pl.DataFrame(), study.generation, study.model_names
        )
        self._answer_seq = 0
        self._sync_pool()

    def _sync_pool(self) -> None:
        """Add the answers other processes generated since the last look."""
        for seq, prompt, model, response_id, raw in self.store.answers_since(self._answer_seq):
            answer = PoolAnswer.of(response_id, raw)
            if answer.text:
                self.pool.add(prompt, model, answer)
            self._answer_seq = max(self._answer_seq, seq)

    # ------------------------------------------------------------------ raters

    def authenticate(self, token: str) -> Rater:
        """The rater holding ``token``.

        Raises:
            ArenaError: the token is not one of this study's.
        """
        rater = self.study.rater_for(token) if isinstance(token, str) else None
        if rater is None:
            raise ArenaError("unknown token: ask the study admin for yours")
        return rater

    def rater_votes(self, rater: Rater) -> int:
        """Votes ``rater`` has cast in this study."""
        return self.store.count_votes(rater.name)

    @property
    def generating(self) -> int:
        """Battles of this process now waiting for generated answers."""
        with self._lock:
            return self._generating

    # ------------------------------------------------------------------ battles

    def _eligible_prompts(self, seen: frozenset[str], left: str, right: str) -> list[Prompt]:
        prompts = list(self.study.prompts)
        if self.study.pool_only:
            prompts = [p for p in prompts if self.pool.has(p.text, (left, right))]
        # Prompts with answers this rater has not been shown yet come first, and among
        # those the ones whose unseen answers name no model or maker.
        tiers = [min(self._freshness(seen, p, m) for m in (left, right)) for p in prompts]
        best = max(tiers, default=0)
        return [p for p, t in zip(prompts, tiers, strict=True) if t == best]

    def _freshness(self, seen: frozenset[str], prompt: Prompt, model: str) -> int:
        """2: an unseen answer naming nobody (or a new one can be generated), 1: an unseen
        answer, 0: only answers this rater has seen."""
        pooled = self.pool.answers(prompt.text, model)
        if not pooled:
            return 0 if self.study.pool_only else 2
        fresh = [a for a in pooled if a.response_id not in seen]
        if any(not self._names_someone(a) for a in fresh):
            return 2
        return 1 if fresh else 0

    def _names_someone(self, answer: PoolAnswer) -> bool:
        named = self._named.get(answer.response_id)
        if named is None:
            named = bool(self._flags(answer))
            self._named[answer.response_id] = named
        return named

    def _flags(self, answer: PoolAnswer) -> list[str]:
        # The raw text too: a name split by a tag that the clean-up removed ("Gem<b>ma")
        # is whole in the shown text, one hidden in removed markup only in the raw one.
        names = self.study.model_names
        found = identity_terms(answer.text, names)
        return found + [t for t in identity_terms(answer.raw, names) if t not in found]

    def _pick(self, state: PlanState, prompt: Prompt, model: str) -> PoolAnswer | None:
        """A pooled answer for the rater (None: generate one). Never one in ``busy``, the
        answers of the rater's open and preparing battles."""
        busy, seen = state.busy, state.seen
        pooled = [a for a in self.pool.answers(prompt.text, model) if a.response_id not in busy]
        fresh = [a for a in pooled if a.response_id not in seen]
        # Prefer pooled answers this rater has not seen (a repeated text would unblind them
        # once they have seen its model revealed) and that name no model or maker.
        clean = [a for a in fresh if not self._names_someone(a)]
        if clean or fresh:
            return self._rng.choice(clean or fresh)
        if not self.study.pool_only:
            return None
        if not pooled:
            raise ArenaError("no answer is free for you now; vote on or skip an open battle")
        return self._rng.choice(pooled)

    def _plan(self, rater: Rater, free: str) -> _Plan:
        """Choose pair, prompt and pooled answers, and reserve them in the store."""
        self._sync_pool()
        plan: list[_Plan] = []

        def decide(state: PlanState) -> Reservation:
            held = state.held
            if held >= self.study.max_open_battles:
                raise ArenaError(
                    f"you have {held} open battle{'s' if held != 1 else ''}: "
                    "vote on or skip one before starting another"
                )
            left, right = choose_pair(self.study.model_names, state.counts, self._rng)
            if free:
                prompt = Prompt(free, id="free", category="free", language=None)
            else:
                eligible = self._eligible_prompts(state.seen, left, right)
                if not eligible:
                    raise ArenaError("this study has no prompt to battle on")
                prompt = self._rng.choice(eligible)
            answers = [self._pick(state, prompt, m) for m in (left, right)]
            generating = None in answers
            if generating and (
                state.generating >= self.study.max_generating
                or state.generating_by_rater >= self.study.max_generating_per_rater
            ):
                raise ArenaError(BUSY)
            plan.append(_Plan(rater.name, left, right, prompt, answers))
            return Reservation(
                reservation_id=secrets.token_urlsafe(12),
                rater=rater.name,
                model_a=left,
                model_b=right,
                response_a_id=answers[0].response_id if answers[0] else None,
                response_b_id=answers[1].response_id if answers[1] else None,
                generating=generating,
                expires_at=datetime.now(UTC) + timedelta(seconds=RESERVATION_TTL_S),
            )

        with self._lock:  # the rng and the identity cache are this process's
            reservation = self.store.reserve(rater.name, decide)
            plan[-1].reservation = reservation
            if reservation.generating:
                self._generating += 1
        return plan[-1]

    def _release(self, plan: _Plan, *, stored: bool) -> None:
        """Forget a plan's reservation (in the store too unless its battle was stored)."""
        res = plan.reservation
        if res is None:
            return
        plan.reservation = None
        with self._lock:
            if res.generating:
                self._generating -= 1
        if not stored:
            self.store.release(res.reservation_id)

    def _generate(self, prompt: Prompt, model: str) -> PoolAnswer:
        with self._gen_lock:  # one generation at a time: the Runner and the CPU are shared
            if self._runner is None:
                store = None
                if self.study.store_generated and self.study.runs_root is not None:
                    store = RunStore(self.study.runs_root)
                self._runner = Runner(list(self.study.models), self.study.generation, store=store)
            finished = None
            for ev in self._runner.stream_one(model, prompt):
                if isinstance(ev, ResponseFinished):
                    finished = ev
        row: Mapping[str, Any] = finished.row if finished is not None else {}
        answer = PoolAnswer.of(str(row.get("row_id")), str(row.get("response") or ""))
        if (
            finished is None
            or finished.error
            or row.get("error")
            or row.get("finish_reason") not in POOLED_FINISH
            or not answer.text
        ):
            # The detailed error names the model: log it, show the rater a neutral line.
            log.warning(
                "arena generation failed: %s",
                (finished.error or row.get("finish_reason")) if finished else "no result",
            )
            raise ArenaError("an answer could not be generated; please try again")
        self.pool.add(prompt.text, model, answer)
        self.store.add_answer(prompt.text, model, answer.response_id, answer.raw)
        return answer

    def new_battle(self, rater: Rater, free_prompt: str | None = None) -> BattleView:
        """Sample a pair and a prompt, get both answers, store the battle, return the view.

        Raises:
            ArenaError: free prompts not allowed, too long or not text; the rater holds
                ``max_open_battles`` open battles; generation is busy; nothing to battle
                on; an answer could not be generated; the votes file failed.
        """
        free = check_text(free_prompt, "prompt").strip()
        if free and not self.study.free_prompts:
            raise ArenaError("this study does not take your own prompts")
        if len(free) > self.study.max_prompt_chars:
            raise ArenaError(
                f"the prompt is too long ({len(free)} characters; "
                f"at most {self.study.max_prompt_chars})"
            )
        plan = self._plan(rater, free)
        stored = False
        try:
            answers: list[PoolAnswer] = []
            for model, pooled in zip((plan.left, plan.right), plan.answers, strict=True):
                answers.append(pooled or self._generate(plan.prompt, model))
            record = self._record(rater, plan, *answers)
            # Stored and released in one transaction: the battle is counted (open, or
            # being prepared) exactly once at every moment, in every process.
            assert plan.reservation is not None
            self.store.add_battle(record, plan.reservation.reservation_id)
            stored = True
        finally:
            self._release(plan, stored=stored)
        return BattleView(
            record.battle_id,
            plan.prompt.text,
            record.answer_a,
            record.answer_b,
            plan.prompt.category,
            plan.prompt.language,
        )

    def _record(
        self, rater: Rater, plan: _Plan, ans_a: PoolAnswer, ans_b: PoolAnswer
    ) -> BattleRecord:
        flags = [
            f"answer {side} names {term}"
            for side, ans in (("A", ans_a), ("B", ans_b))
            for term in self._flags(ans)
        ]
        created = datetime.now(UTC)
        names = self.study.model_names
        return BattleRecord(
            battle_id=secrets.token_urlsafe(18),
            study=self.study.name,
            rater=rater.name,
            model_a=plan.left,
            model_b=plan.right,
            swapped=names.index(plan.left) > names.index(plan.right),
            prompt=plan.prompt.text,
            answer_a=ans_a.text,
            answer_b=ans_b.text,
            raw_a=ans_a.raw,
            raw_b=ans_b.raw,
            prompt_id=plan.prompt.id,
            prompt_set=plan.prompt.prompt_set,
            category=plan.prompt.category,
            language=plan.prompt.language,
            response_a_id=ans_a.response_id,
            response_b_id=ans_b.response_id,
            source_a="pool" if plan.answers[0] is not None else "generated",
            source_b="pool" if plan.answers[1] is not None else "generated",
            flags=tuple(flags),
            created_at=created,
            expires_at=created + timedelta(seconds=self.study.battle_ttl_s),
        )

    def skip(self, rater: Rater, battle_id: str) -> bool:
        """Close ``rater``'s open battle without a vote (it stops counting against the
        open-battle cap and the pair balance); False if there was none to close."""
        return self.store.skip_battle(battle_id, rater.name)

    def vote(self, rater: Rater, battle_id: str, choice: str, reason: str | None) -> VoteOutcome:
        """Record ``rater``'s vote (durably) and return the revealed names.

        Raises:
            VoteRejected: see :meth:`VoteStore.record_vote`; nothing is written.
            VoteStoreError: the votes file failed; the vote is not recorded.
        """
        return self.store.record_vote(
            battle_id, rater.name, choice, reason, max_reason_chars=self.study.max_reason_chars
        )

    # ------------------------------------------------------------------ admin

    def votes(self, *, include_flagged: bool = False) -> pl.DataFrame:
        """All votes in the ``ratings`` votes format."""
        return self.store.votes_frame(include_flagged=include_flagged)

    def close(self) -> None:
        """Release loaded models and the database."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        self.store.close()
