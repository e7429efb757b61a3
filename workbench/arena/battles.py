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
  (the reveal of one would unblind the other).
- Generation has bounds, in total and per rater: past them a battle is refused at once
  with "busy, try again" instead of waiting, and votes never wait behind generation.
- The identity guard flags answers that name a model family or maker; flagged battles
  are recorded with the reason and left out of ratings by default.
- Model identities live only here and in the SQLite file until the vote; what a rater
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
from workbench.arena.votes import BattleRecord, VoteOutcome, VoteStore
from workbench.backends.base import WORKBENCH_SAMPLING, GenerationConfig, Prompt
from workbench.errors import ArenaError
from workbench.runner import ResponseFinished, Runner
from workbench.store import RunStore, load_runs

__all__ = [
    "POOLED_FINISH",
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


def pool_key(text: str, image_sha256: str | None = None) -> str:
    """The pool's key of a prompt: its text, and its images' sha256 (a run row's
    ``image_sha256``) when it has any, so the same words with another picture, or none,
    are another prompt."""
    return f"{text}\x00images:{image_sha256}" if image_sha256 else text


def prompt_key(prompt: Prompt) -> str:
    """:func:`pool_key` of a prompt of the study."""
    return pool_key(prompt.text, ",".join(im.sha256 for im in prompt.images) or None)


class AnswerPool:
    """Pre-generated answers by (prompt, model name); a prompt is its :func:`pool_key`."""

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
        rows = runs.filter(cond).select("prompt", "image_sha256", "model", "row_id", "response")
        for prompt, images, model, row_id, response in rows.iter_rows():
            answer = PoolAnswer.of(row_id, response)
            if answer.text:
                pool.add(pool_key(prompt, images), model, answer)
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
    images: tuple[str, ...] = ()
    """The prompt's images as ``data:`` URLs (the same for both answers), in order."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "battle_id": self.battle_id,
            "prompt": self.prompt,
            "answer_a": self.answer_a,
            "answer_b": self.answer_b,
            "category": self.category,
            "language": self.language,
            "images": list(self.images),
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
    """A battle being prepared: what was chosen and reserved under the lock."""

    rater: str
    key: frozenset[str]
    left: str
    right: str
    prompt: Prompt
    answers: list[PoolAnswer | None]
    """Pooled answers, None where one is to be generated."""
    generating: bool = False


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
        self.store = store or VoteStore(study.votes_db, study.name)
        self._rng = random.Random(seed if seed is not None else secrets.randbits(64))
        self._lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._runner: Runner | None = None
        # battles being prepared (answers chosen or generating), not yet in the store
        self._pending: dict[frozenset[str], int] = {}
        self._pending_by_rater: dict[str, int] = {}
        self._reserved: dict[str, list[str]] = {}
        self._generating = 0
        self._generating_by_rater: dict[str, int] = {}
        # answers each rater has been shown or is about to be (reserved under the lock)
        self._seen = self.store.seen_responses()
        self._named: dict[str, bool] = {}
        if runs is None and study.runs_root is not None:
            runs = load_runs(study.runs_root)
        self.pool = AnswerPool.from_runs(
            runs if runs is not None else pl.DataFrame(), study.generation, study.model_names
        )

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
        """Battles now waiting for generated answers."""
        with self._lock:
            return self._generating

    # ------------------------------------------------------------------ battles

    def _eligible_prompts(self, rater: str, left: str, right: str) -> list[Prompt]:
        prompts = list(self.study.prompts)
        if self.study.pool_only:
            prompts = [p for p in prompts if self.pool.has(prompt_key(p), (left, right))]
        # Prompts with answers this rater has not been shown yet come first, and among
        # those the ones whose unseen answers name no model or maker.
        tiers = [min(self._freshness(rater, p, m) for m in (left, right)) for p in prompts]
        best = max(tiers, default=0)
        return [p for p, t in zip(prompts, tiers, strict=True) if t == best]

    def _freshness(self, rater: str, prompt: Prompt, model: str) -> int:
        """2: an unseen answer naming nobody (or a new one can be generated), 1: an unseen
        answer, 0: only answers this rater has seen."""
        pooled = self.pool.answers(prompt_key(prompt), model)
        if not pooled:
            return 0 if self.study.pool_only else 2
        seen = self._seen.get(rater, set())
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

    def _pick(self, rater: str, prompt: Prompt, model: str, busy: set[str]) -> PoolAnswer | None:
        """A pooled answer for ``rater`` (None: generate one). Never one in ``busy``, the
        answers of the rater's open and preparing battles. Called under the lock."""
        pooled = [
            a for a in self.pool.answers(prompt_key(prompt), model) if a.response_id not in busy
        ]
        seen = self._seen.get(rater, set())
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
        """Choose pair, prompt and pooled answers, and reserve them (under the lock)."""
        name = rater.name
        open_battles = self.store.open_battles(name)
        held = len(open_battles) + self._pending_by_rater.get(name, 0)
        if held >= self.study.max_open_battles:
            raise ArenaError(
                f"you have {held} open battle{'s' if held != 1 else ''}: "
                "vote on or skip one before starting another"
            )
        counts = self.store.pair_counts()
        for pair, n in self._pending.items():
            counts[pair] = counts.get(pair, 0) + n
        left, right = choose_pair(self.study.model_names, counts, self._rng)
        if free:
            prompt = Prompt(free, id="free", category="free", language=None)
        else:
            eligible = self._eligible_prompts(name, left, right)
            if not eligible:
                raise ArenaError("this study has no prompt to battle on")
            prompt = self._rng.choice(eligible)
        busy = set(self._reserved.get(name, ()))
        for b in open_battles:
            busy.update(x for x in (b.response_a_id, b.response_b_id) if x)
        answers = [self._pick(name, prompt, m, busy) for m in (left, right)]
        plan = _Plan(name, frozenset((left, right)), left, right, prompt, answers)
        if None in answers:
            if (
                self._generating >= self.study.max_generating
                or self._generating_by_rater.get(name, 0) >= self.study.max_generating_per_rater
            ):
                raise ArenaError(BUSY)
            plan.generating = True
            self._generating += 1
            self._generating_by_rater[name] = self._generating_by_rater.get(name, 0) + 1
        ids = [a.response_id for a in answers if a is not None]
        self._seen.setdefault(name, set()).update(ids)
        self._reserved.setdefault(name, []).extend(ids)
        self._pending[plan.key] = self._pending.get(plan.key, 0) + 1
        self._pending_by_rater[name] = self._pending_by_rater.get(name, 0) + 1
        return plan

    def _release(self, plan: _Plan) -> None:
        """Forget a plan's reservations. Called under the lock."""
        self._pending[plan.key] -= 1
        if not self._pending[plan.key]:
            del self._pending[plan.key]
        self._pending_by_rater[plan.rater] -= 1
        if not self._pending_by_rater[plan.rater]:
            del self._pending_by_rater[plan.rater]
        reserved = self._reserved.get(plan.rater, [])
        for a in plan.answers:
            if a is not None and a.response_id in reserved:
                reserved.remove(a.response_id)
        if not reserved:
            self._reserved.pop(plan.rater, None)
        self._end_generating(plan)

    def _end_generating(self, plan: _Plan) -> None:
        """Called under the lock."""
        if plan.generating:
            plan.generating = False
            self._generating -= 1
            self._generating_by_rater[plan.rater] -= 1
            if not self._generating_by_rater[plan.rater]:
                del self._generating_by_rater[plan.rater]

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
        self.pool.add(prompt_key(prompt), model, answer)
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
        with self._lock:
            plan = self._plan(rater, free)
        stored = False
        try:
            answers: list[PoolAnswer] = []
            for model, pooled in zip((plan.left, plan.right), plan.answers, strict=True):
                answers.append(pooled or self._generate(plan.prompt, model))
            record = self._record(rater, plan, *answers)
            # Stored and released in one step: the battle is counted (open in the store,
            # or pending here) exactly once at every moment.
            with self._lock:
                self.store.add_battle(record)
                stored = True
                self._seen.setdefault(rater.name, set()).update(a.response_id for a in answers)
                self._release(plan)
        finally:
            if not stored:
                with self._lock:
                    self._release(plan)
        return BattleView(
            record.battle_id,
            plan.prompt.text,
            record.answer_a,
            record.answer_b,
            plan.prompt.category,
            plan.prompt.language,
            tuple(im.data_url() for im in plan.prompt.images),
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
