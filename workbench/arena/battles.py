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
- Thinking: a rater sees the answer alone; a study with ``show_thinking = "collapsed"``
  also shows the thinking, cleaned like the answer, unless it names a model or maker
  (then neither side shows any). Pooled answers match the study's ``thinking`` setting.
- Follow-up turns (``max_turns`` > 1): the rater's follow-up goes to both models, each
  continuing its own conversation (its own earlier answers, as the rater was shown them),
  generated within the same bounds; both answers are shown together. A follow-up answer
  that names a model or maker is generated once more, and if that one names one too, the
  turn is dropped and the rater told to vote on the conversation so far (:data:`NAMED`).
- Model identities live only here and in the votes store until the vote; what a rater
  receives (:class:`BattleView`) carries an unguessable id and the two texts.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from workbench.arena.guard import identity_terms
from workbench.arena.shown import shown_answer
from workbench.arena.study import Rater, Study
from workbench.arena.votes import (
    BattleRecord,
    FollowUp,
    PlanState,
    Reservation,
    VoteOutcome,
    VoteRejected,
    VoteStore,
    open_study_store,
)
from workbench.backends.base import (
    WORKBENCH_SAMPLING,
    GenerationConfig,
    Message,
    Prompt,
    PromptMode,
)
from workbench.chat import conversation_prompt, prompt_mode
from workbench.errors import ArenaError
from workbench.gguf import GGUFError
from workbench.models.registry import ModelRef
from workbench.runner import ResponseFinished, Runner
from workbench.store import RunStore, load_runs
from workbench.thinking import setting as thinking_setting

__all__ = [
    "POOLED_FINISH",
    "RESERVATION_TTL_S",
    "AnswerPool",
    "Arena",
    "ArenaError",
    "BattleView",
    "PoolAnswer",
    "Turn",
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
    reasoning: str = ""
    """The thinking as a rater would be shown it (``shown_answer(raw_reasoning)``)."""
    raw_reasoning: str = ""
    """The thinking the model wrote before the answer (the run row's ``reasoning``)."""

    @classmethod
    def of(cls, response_id: str, raw: str, raw_reasoning: str | None = None) -> PoolAnswer:
        """The answer (and its thinking) with the shown texts."""
        thinking = raw_reasoning or ""
        return cls(response_id, shown_answer(raw), raw, shown_answer(thinking), thinking)


POOLED_FINISH = ("stop", "length")
"""Finish reasons of a complete answer. A row cut short ("interrupted", "cancelled") or
failed ("error"), or one with an error message, never goes into a battle."""

_POOL_MATCH = ("temperature", "top_p", "top_k", "max_tokens")

RESERVATION_TTL_S = 900.0
"""Seconds a battle being prepared holds its pair and answers; a process that died
mid-preparation frees them when this runs out."""


def pool_key(text: str, image_sha256: str | None = None) -> str:
    """The pool's key of a prompt: its text, and its images' sha256 (a run row's
    ``image_sha256``) when it has any, so the same words with another picture, or none,
    are another prompt."""
    return f"{text}\x00images:{image_sha256}" if image_sha256 else text


def prompt_key(prompt: Prompt) -> str:
    """:func:`pool_key` of a prompt of the study."""
    return pool_key(prompt.text, ",".join(im.sha256 for im in prompt.images) or None)


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
        that finished completely, without error, and say something once cleaned. Rows
        answering a later turn of a conversation (with a ``history``) are left out: their
        answer continues a conversation that a new battle does not have."""
        pool = cls()
        if runs.height == 0:
            return pool
        cond = (
            pl.col("model").is_in(list(models))
            & pl.col("error").is_null()
            & pl.col("response").is_not_null()
            & pl.col("finish_reason").is_in(list(POOLED_FINISH))
        )
        if "history" in runs.columns:
            cond &= pl.col("history").is_null()
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
        if "thinking" in runs.columns:  # thinking on, off or the model's default
            cond &= pl.col("thinking").fill_null("default") == thinking_setting(config.thinking)
        if "reasoning" not in runs.columns:  # rows stored before thinking was split off
            runs = runs.with_columns(reasoning=pl.lit(None, pl.String()))
        if "image_sha256" not in runs.columns:  # rows stored before image prompts
            runs = runs.with_columns(image_sha256=pl.lit(None, pl.String()))
        rows = runs.filter(cond).select(
            "prompt", "image_sha256", "model", "row_id", "response", "reasoning"
        )
        for prompt, images, model, row_id, response, reasoning in rows.iter_rows():
            answer = PoolAnswer.of(row_id, response, reasoning)
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

    def has(self, prompt: str, models: Iterable[str], exclude: Set[str] = frozenset()) -> bool:
        """True when every one of ``models`` has an answer to ``prompt`` whose response id
        is not in ``exclude``."""
        return all(
            any(a.response_id not in exclude for a in self.answers(prompt, m)) for m in models
        )

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._answers.values())


# --------------------------------------------------------------------------- arena


def _prompt_mode(ref: ModelRef) -> PromptMode | None:
    """How ``ref`` gets its prompts: ``chat`` for a served model (the server
    applies its template), else from its GGUF's chat template; None when unreadable."""
    if ref.is_endpoint:
        return "chat"
    try:
        return prompt_mode(ref.info().chat_template)
    except (GGUFError, OSError):
        return None


@dataclass(frozen=True)
class Turn:
    """One earlier turn of a battle's conversation, as the rater was shown it."""

    prompt: str
    answer_a: str
    answer_b: str

    def as_dict(self) -> dict[str, str]:
        return {"prompt": self.prompt, "answer_a": self.answer_a, "answer_b": self.answer_b}


@dataclass(frozen=True)
class BattleView:
    """What a rater is shown before voting: no model identity anywhere. ``prompt`` and
    the answers are the latest turn's; ``earlier`` holds the turns before it."""

    battle_id: str
    prompt: str
    answer_a: str
    answer_b: str
    category: str | None = None
    language: str | None = None
    reasoning_a: str = ""
    """The thinking shown above answer A ("": none shown; see ``Study.show_thinking``)."""
    reasoning_b: str = ""
    turn: int = 1
    """Which user turn the answers answer (1: the battle's prompt)."""
    max_turns: int = 1
    """The study's ``max_turns``: follow-ups are taken while ``turn < max_turns``."""
    earlier: tuple[Turn, ...] = ()
    images: tuple[str, ...] = ()
    """The battle's prompt's images as ``data:`` URLs (the same for both answers)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "battle_id": self.battle_id,
            "prompt": self.prompt,
            "answer_a": self.answer_a,
            "answer_b": self.answer_b,
            "category": self.category,
            "language": self.language,
            "reasoning_a": self.reasoning_a,
            "reasoning_b": self.reasoning_b,
            "turn": self.turn,
            "max_turns": self.max_turns,
            "earlier": [t.as_dict() for t in self.earlier],
            "images": list(self.images),
        }


NO_IMAGE_FOLLOW_UP = "a battle on an image takes no follow-up turns: vote on the answers"
"""The refusal of a follow-up to an image prompt (a conversation's earlier turns carry
their text only, so the models would no longer see the picture)."""

BUSY = "busy: answers are being written for other raters; try again in a minute"
"""The refusal past the generation bounds."""

NO_FREE_ANSWER = "no answer is free for you now; vote on or skip an open battle"
"""The refusal when every pooled answer that could be shown sits in the rater's open
battles (a pool-only study)."""

NAMED = (
    "an answer to this follow-up gave away which model wrote it, so it is not shown; "
    "vote on the conversation so far, or ask something else"
)
"""The refusal of a follow-up whose answer named a model or maker twice running."""

BASE_MODEL = "base model"
"""The label next to a model run as completion (a pretrained base model without a chat
template), shown wherever the arena names models: after the vote and on the leaderboard,
never before the vote."""


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
        self._base_models: frozenset[str] | None = None
        if runs is None and study.runs_root is not None:
            runs = load_runs(study.runs_root)
        self.pool = AnswerPool.from_runs(
            runs if runs is not None else pl.DataFrame(), study.generation, study.model_names
        )
        self._answer_seq = 0
        self._sync_pool()

    def _sync_pool(self) -> None:
        """Add the answers other processes generated since the last look."""
        for seq, prompt, model, rid, raw, thinking in self.store.answers_since(self._answer_seq):
            answer = PoolAnswer.of(rid, raw, thinking)
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
    def base_models(self) -> frozenset[str]:
        """The study's models run as completion (their GGUF has no chat template): the
        ones the arena labels :data:`BASE_MODEL` once names are shown."""
        if self._base_models is None:
            self._base_models = frozenset(
                m.name for m in self.study.models if _prompt_mode(m) == "completion"
            )
        return self._base_models

    def label(self, model: str) -> str:
        """``model`` as the arena names it after the vote (with :data:`BASE_MODEL`)."""
        return f"{model} ({BASE_MODEL})" if model in self.base_models else model

    @property
    def generating(self) -> int:
        """Battles of this process now waiting for generated answers."""
        with self._lock:
            return self._generating

    # ------------------------------------------------------------------ battles

    def _eligible_prompts(self, state: PlanState, left: str, right: str) -> list[Prompt]:
        prompts = list(self.study.prompts)
        if self.study.pool_only:
            # Only prompts with a pooled answer per side outside the rater's open and
            # preparing battles: once every answer is stale, the prompt of an open
            # battle may have none left.
            busy = state.busy
            prompts = [p for p in prompts if self.pool.has(prompt_key(p), (left, right), busy)]
        # Prompts with answers this rater has not been shown yet come first, and among
        # those the ones whose unseen answers name no model or maker.
        seen = state.seen
        tiers = [min(self._freshness(seen, p, m) for m in (left, right)) for p in prompts]
        best = max(tiers, default=0)
        return [p for p, t in zip(prompts, tiers, strict=True) if t == best]

    def _freshness(self, seen: frozenset[str], prompt: Prompt, model: str) -> int:
        """2: an unseen answer naming nobody (or a new one can be generated), 1: an unseen
        answer, 0: only answers this rater has seen."""
        pooled = self.pool.answers(prompt_key(prompt), model)
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
        pooled = [
            a for a in self.pool.answers(prompt_key(prompt), model) if a.response_id not in busy
        ]
        fresh = [a for a in pooled if a.response_id not in seen]
        # Prefer pooled answers this rater has not seen (a repeated text would unblind them
        # once they have seen its model revealed) and that name no model or maker.
        clean = [a for a in fresh if not self._names_someone(a)]
        if clean or fresh:
            return self._rng.choice(clean or fresh)
        if not self.study.pool_only:
            return None
        return self._rng.choice(pooled)  # not empty: the prompt was eligible

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
                eligible = self._eligible_prompts(state, left, right)
                if not eligible:
                    raise ArenaError(
                        NO_FREE_ANSWER if state.held else "this study has no prompt to battle on"
                    )
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

    def _release(self, res: Reservation | None, *, stored: bool) -> None:
        """Forget a reservation (in the store too unless its battle was stored with it)."""
        if res is None:
            return
        with self._lock:
            if res.generating:
                self._generating -= 1
        if not stored:
            self.store.release(res.reservation_id)

    def _generate(
        self, prompt: Prompt, model: str, config: GenerationConfig | None = None
    ) -> PoolAnswer:
        """A new answer of ``model`` to ``prompt``; a first-turn answer joins the pool."""
        with self._gen_lock:  # one generation at a time: the Runner and the CPU are shared
            if self._runner is None:
                store = None
                if self.study.store_generated and self.study.runs_root is not None:
                    store = RunStore(self.study.runs_root)
                self._runner = Runner(list(self.study.models), self.study.generation, store=store)
            finished = None
            for ev in self._runner.stream_one(model, prompt, config=config):
                if isinstance(ev, ResponseFinished):
                    finished = ev
        row: Mapping[str, Any] = finished.row if finished is not None else {}
        answer = PoolAnswer.of(
            str(row.get("row_id")), str(row.get("response") or ""), row.get("reasoning")
        )
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
        if not prompt.history:  # a later turn's answer continues a conversation
            key = prompt_key(prompt)  # the store shares pooled answers under the same key
            self.pool.add(key, model, answer)
            self.store.add_answer(key, model, answer.response_id, answer.raw, answer.raw_reasoning)
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
            self._release(plan.reservation, stored=stored)
            plan.reservation = None
        return self._view(record)

    def _view(self, record: BattleRecord) -> BattleView:
        """What the rater is shown of ``record``: its latest turn, and the earlier ones."""
        turns = [
            Turn(record.prompt, record.answer_a, record.answer_b),
            *(Turn(t.prompt, t.answer_a, t.answer_b) for t in record.follow_ups),
        ]
        last = record.follow_ups[-1] if record.follow_ups else record
        return BattleView(
            record.battle_id,
            turns[-1].prompt,
            turns[-1].answer_a,
            turns[-1].answer_b,
            record.category,
            record.language,
            reasoning_a=last.reasoning_a,
            reasoning_b=last.reasoning_b,
            turn=record.turns,
            max_turns=self.study.max_turns,
            earlier=tuple(turns[:-1]),
            images=self._images_of(record),
        )

    def _images_of(self, record: BattleRecord) -> tuple[str, ...]:
        """The images of the study prompt ``record`` was dealt (none for a free prompt)."""
        for p in self.study.prompts:
            if p.images and p.id == record.prompt_id and p.prompt_set == record.prompt_set:
                return tuple(im.data_url() for im in p.images)
        return ()

    def _shown_reasoning(self, a: PoolAnswer, b: PoolAnswer) -> tuple[str, str]:
        """The thinking a rater is shown with answers ``a`` and ``b``: none unless the
        study shows it collapsed, and none on either side when one of them names a model
        or maker (shown or raw text): a block missing on one side only would tell the
        rater which side named itself."""
        if self.study.show_thinking == "hidden":
            return "", ""
        names = self.study.model_names
        for answer in (a, b):
            if identity_terms(answer.reasoning, names) or identity_terms(
                answer.raw_reasoning, names
            ):
                return "", ""
        return a.reasoning, b.reasoning

    def follow_up(self, rater: Rater, battle_id: str, text: str | None) -> BattleView:
        """Send ``rater``'s follow-up ``text`` to both models of their open battle: each
        continues its own conversation. Returns the battle with the new turn.

        Raises:
            ArenaError: the study takes no follow-ups, the battle has had ``max_turns``
                turns or has a follow-up being answered, the text is empty, too long or
                not text, generation is busy, an answer could not be generated or named a
                model twice running (:data:`NAMED`; nothing is stored), the votes file
                failed.
            VoteRejected: unknown battle, voted, skipped or expired.
        """
        if self.study.max_turns < 2:
            raise ArenaError("this study takes no follow-up turns: vote on the answers")
        text = check_text(text, "follow-up").strip()
        if not text:
            raise ArenaError("the follow-up is empty: type a message to send to both models")
        if len(text) > self.study.max_prompt_chars:
            raise ArenaError(
                f"the follow-up is too long ({len(text)} characters; "
                f"at most {self.study.max_prompt_chars})"
            )
        if (
            not isinstance(battle_id, str)
            or not battle_id
            or len(battle_id) > 200
            or battle_id != battle_id.encode("utf-8", "replace").decode("utf-8")
        ):
            raise VoteRejected("unknown battle")
        record = self.store.get_battle(battle_id)
        if record is None or record.rater != rater.name:
            raise VoteRejected("unknown battle")
        record.check_open()
        if self._images_of(record):
            # A conversation carries text turns only: the models would answer the
            # follow-up without seeing the picture again.
            raise ArenaError(NO_IMAGE_FOLLOW_UP)
        if record.turns >= self.study.max_turns:
            raise ArenaError(
                f"this battle has had its {self.study.max_turns} turns: vote on the conversation"
            )
        res = self._reserve_follow_up(rater, record)
        try:
            turn = record.turns + 1
            answers = [
                self._follow_up_answer(record, side, model, text, turn)
                for side, model in (("a", record.model_a), ("b", record.model_b))
            ]
            a, b = answers
            thinking_a, thinking_b = self._shown_reasoning(a, b)
            stored = self.store.add_follow_up(
                battle_id,
                rater.name,
                FollowUp(
                    turn=turn,
                    prompt=text,
                    answer_a=a.text,
                    answer_b=b.text,
                    raw_a=a.raw,
                    raw_b=b.raw,
                    reasoning_a=thinking_a,
                    reasoning_b=thinking_b,
                    raw_reasoning_a=a.raw_reasoning,
                    raw_reasoning_b=b.raw_reasoning,
                    response_a_id=a.response_id,
                    response_b_id=b.response_id,
                ),
            )
        finally:
            self._release(res, stored=False)
        return self._view(stored)

    def _reserve_follow_up(self, rater: Rater, record: BattleRecord) -> Reservation:
        """Count a follow-up of ``record`` as generating, in the store: one at a time per
        battle (in every process), within the generation bounds."""

        def decide(state: PlanState) -> Reservation:
            if record.battle_id in state.following:
                raise ArenaError("your last follow-up to this battle is still being answered")
            if (
                state.generating >= self.study.max_generating
                or state.generating_by_rater >= self.study.max_generating_per_rater
            ):
                raise ArenaError(BUSY)
            return Reservation(
                reservation_id=secrets.token_urlsafe(12),
                rater=rater.name,
                model_a=record.model_a,
                model_b=record.model_b,
                response_a_id=None,
                response_b_id=None,
                generating=True,
                expires_at=datetime.now(UTC) + timedelta(seconds=RESERVATION_TTL_S),
                battle_id=record.battle_id,
            )

        with self._lock:
            res = self.store.reserve(rater.name, decide)
            self._generating += 1
        return res

    def _follow_up_answer(
        self, record: BattleRecord, side: str, model: str, text: str, turn: int
    ) -> PoolAnswer:
        """``model``'s answer to follow-up ``text``, continuing its own side of ``record``:
        generated again once when it names a model or maker; refused (NAMED) if again."""
        history: list[Message] = []
        turns: list[BattleRecord | FollowUp] = [record, *record.follow_ups]
        for t in turns:
            said = t.answer_a if side == "a" else t.answer_b
            history += [Message("user", t.prompt), Message("assistant", said)]
        prompt = conversation_prompt(
            [*history, Message("user", text)],
            conversation_id=record.battle_id,
            turn=turn,
            id=f"{record.prompt_id or 'prompt'}-turn{turn}",
            category=record.category,
            language=record.language,
        )
        config = self.study.generation
        for attempt in range(2):
            answer = self._generate(prompt, model, config)
            found = self._flags(answer)
            if not found:
                return answer
            # The log may name terms (it is the operator's); the rater learns nothing.
            log.info("arena follow-up answer named %s (attempt %d)", ", ".join(found), attempt + 1)
            if config.seed is not None:  # a fixed seed would write the same text again
                config = replace(config, seed=config.seed + 1)
        raise ArenaError(NAMED)

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
        thinking_a, thinking_b = self._shown_reasoning(ans_a, ans_b)
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
            reasoning_a=thinking_a,
            reasoning_b=thinking_b,
            raw_reasoning_a=ans_a.raw_reasoning,
            raw_reasoning_b=ans_b.raw_reasoning,
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
