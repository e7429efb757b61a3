"""Battles: which two models meet, on which prompt, with which answers.

- Pair sampling keeps votes per pair balanced: the pair with the fewest votes and open
  battles goes next (a battle left unvoted stops counting when it expires), ties broken
  at random, and left/right is a coin flip.
- Answers come from the pool of stored runs made with the same prompt and settings, or
  are generated on demand; a battle is returned only once both answers exist, so the
  speed of a model can never show which one it is.
- The identity guard flags answers that name a model family or maker; flagged battles
  are recorded with the reason and left out of ratings by default.
- Model identities live only here and in the SQLite file until the vote; what a rater
  receives (:class:`BattleView`) carries an unguessable id and the two texts.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from workbench.arena.votes import BattleRecord, VoteOutcome, VoteStore
from workbench.backends.base import WORKBENCH_SAMPLING, GenerationConfig, Prompt
from workbench.errors import ArenaError

if TYPE_CHECKING:
    from workbench.arena.study import Rater, Study
    from workbench.runner import Runner

__all__ = [
    "AnswerPool",
    "Arena",
    "ArenaError",
    "BattleView",
    "PoolAnswer",
    "choose_pair",
    "identity_terms",
]

log = logging.getLogger(__name__)

# Families, makers and products a small model may name when asked who it is. Matching is
# case-insensitive on word boundaries; false positives (an answer about Google Maps) only
# exclude a battle from the default ratings, false negatives would unblind a rater.
IDENTITY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("Gemma", r"gemma"),
    ("Gemini", r"gemini"),
    ("Google", r"google"),
    ("DeepMind", r"deep\s?mind"),
    ("Qwen", r"qwen\d*(?:\.\d+)?|qwq"),
    ("Alibaba", r"alibaba"),
    ("Tongyi", r"tongyi"),
    ("GLM", r"(?:chat)?glm(?:-?\d[\w.]*)?"),
    ("Zhipu", r"zhipu(?:\s?ai)?|z\.ai"),
    ("Llama", r"llama\d*(?:\.\d+)?"),
    ("Meta", r"meta(?:\s?ai)?"),
    ("SmolLM", r"smol\s?lm\d*"),
    ("Hugging Face", r"hugging\s?face"),
    ("Mistral", r"mistral|mixtral|ministral"),
    ("Phi", r"phi-?\d(?:\.\d+)?"),
    ("Microsoft", r"microsoft"),
    ("OpenAI", r"open\s?ai"),
    ("GPT", r"(?:chat)?gpt(?:-?\d[\w.]*)?"),
    ("Claude", r"claude"),
    ("Anthropic", r"anthropic"),
    ("DeepSeek", r"deep\s?seek"),
    ("Granite", r"granite"),
    ("IBM", r"ibm"),
    ("Falcon", r"falcon"),
    ("OLMo", r"olmo|allen\s?ai"),
    ("InternLM", r"intern\s?lm"),
    ("Baichuan", r"baichuan"),
    ("MiniCPM", r"mini\s?cpm"),
    ("NVIDIA", r"nvidia|nemotron"),
    ("Cohere", r"cohere|command[\s-]r|aya"),
    ("EXAONE", r"exaone"),
    ("StableLM", r"stable\s?lm|stability\s?ai"),
    ("Baidu", r"baidu|ernie"),
    ("Moonshot", r"moonshot|kimi"),
    ("ByteDance", r"bytedance|doubao"),
    ("Tencent", r"tencent|hunyuan"),
)
_IDENTITY_RE = [
    (label, re.compile(rf"(?<![\w]){pat}(?![\w])", re.IGNORECASE))
    for label, pat in IDENTITY_PATTERNS
]


def _model_terms(model_names: Iterable[str]) -> list[str]:
    terms = set()
    for name in model_names:
        base = name.split("#")[-1].split("/")[-1].split(":")[-1]
        terms.add(base)
        head = re.split(r"[-_.\s]", base)[0]
        if len(head) >= 4 and head.isalpha():
            terms.add(head)
    return sorted(t for t in terms if t)


def identity_terms(text: str, model_names: Sequence[str] = ()) -> list[str]:
    """Families, makers or study model names that ``text`` mentions (empty: none)."""
    found = [label for label, rx in _IDENTITY_RE if rx.search(text)]
    lowered = text.lower()
    for term in _model_terms(model_names):
        if term.lower() in lowered and term not in found:
            found.append(term)
    return found


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


_POOL_MATCH = ("temperature", "top_p", "top_k", "max_tokens")


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
        that finished without error and said something."""
        pool = cls()
        if runs.height == 0:
            return pool
        cond = (
            pl.col("model").is_in(list(models))
            & pl.col("error").is_null()
            & pl.col("response").is_not_null()
            & (pl.col("response").str.strip_chars() != "")
            & pl.col("finish_reason").is_in(["stop", "length"])
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
            pool.add(prompt, model, PoolAnswer(row_id, response))
        return pool

    def add(self, prompt: str, model: str, answer: PoolAnswer) -> None:
        with self._lock:
            bucket = self._answers.setdefault((prompt, model), [])
            if all(a.response_id != answer.response_id for a in bucket):
                bucket.append(answer)

    def answers(self, prompt: str, model: str) -> list[PoolAnswer]:
        with self._lock:
            return list(self._answers.get((prompt, model), ()))

    def has(self, prompt: str, models: Iterable[str]) -> bool:
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
        # battles being prepared (answers generating), not yet in the store
        self._pending: dict[frozenset[str], int] = {}
        self._seen = self.store.seen_responses()
        self._named: dict[str, bool] = {}
        if runs is None and study.runs_root is not None:
            from workbench.store import load_runs

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

    # ------------------------------------------------------------------ battles

    def _eligible_prompts(self, rater: str, left: str, right: str) -> list[Prompt]:
        prompts = list(self.study.prompts)
        if self.study.pool_only:
            prompts = [p for p in prompts if self.pool.has(p.text, (left, right))]
        # Prompts with answers this rater has not been shown yet come first, and among
        # those the ones whose unseen answers name no model or maker.
        tiers = [min(self._freshness(rater, p, m) for m in (left, right)) for p in prompts]
        best = max(tiers, default=0)
        return [p for p, t in zip(prompts, tiers, strict=True) if t == best]

    def _freshness(self, rater: str, prompt: Prompt, model: str) -> int:
        """2: an unseen answer naming nobody (or a new one can be generated), 1: an unseen
        answer, 0: only answers this rater has seen."""
        pooled = self.pool.answers(prompt.text, model)
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
            named = bool(identity_terms(answer.text, self.study.model_names))
            self._named[answer.response_id] = named
        return named

    def _answer(self, rater: str, prompt: Prompt, model: str) -> tuple[PoolAnswer, str]:
        pooled = self.pool.answers(prompt.text, model)
        seen = self._seen.get(rater, set())
        fresh = [a for a in pooled if a.response_id not in seen]
        # Prefer pooled answers this rater has not seen (a repeated text would unblind them
        # once they have seen its model revealed) and that name no model or maker.
        clean = [a for a in fresh if not self._names_someone(a)]
        if clean or fresh:
            return self._rng.choice(clean or fresh), "pool"
        if self.study.pool_only:
            if not pooled:
                raise ArenaError("no pre-generated answer for this prompt")
            return self._rng.choice(pooled), "pool"
        return self._generate(prompt, model), "generated"

    def _generate(self, prompt: Prompt, model: str) -> PoolAnswer:
        from workbench.runner import ResponseFinished, Runner

        with self._gen_lock:  # one generation at a time: the Runner and the CPU are shared
            if self._runner is None:
                from workbench.store import RunStore

                store = None
                if self.study.store_generated and self.study.runs_root is not None:
                    store = RunStore(self.study.runs_root)
                self._runner = Runner(list(self.study.models), self.study.generation, store=store)
            finished = None
            for ev in self._runner.stream_one(model, prompt):
                if isinstance(ev, ResponseFinished):
                    finished = ev
        if finished is None or finished.error or not (finished.row.get("response") or "").strip():
            # The detailed error names the model: log it, show the rater a neutral line.
            log.warning("arena generation failed: %s", finished.error if finished else "none")
            raise ArenaError("an answer could not be generated; please try again")
        answer = PoolAnswer(str(finished.row["row_id"]), str(finished.row["response"]))
        self.pool.add(prompt.text, model, answer)
        return answer

    def new_battle(self, rater: Rater, free_prompt: str | None = None) -> BattleView:
        """Sample a pair and a prompt, get both answers, store the battle, return the view.

        Raises:
            ArenaError: free prompts not allowed or too long, nothing to battle on, or an
                answer could not be generated.
        """
        free = (free_prompt or "").strip()
        if free and not self.study.free_prompts:
            raise ArenaError("this study does not take your own prompts")
        if len(free) > self.study.max_prompt_chars:
            raise ArenaError(
                f"the prompt is too long ({len(free)} characters; "
                f"at most {self.study.max_prompt_chars})"
            )
        with self._lock:
            counts = self.store.pair_counts()
            for pair, n in self._pending.items():
                counts[pair] = counts.get(pair, 0) + n
            left, right = choose_pair(self.study.model_names, counts, self._rng)
            key = frozenset((left, right))
            if free:
                prompt = Prompt(free, id="free", category="free", language=None)
            else:
                eligible = self._eligible_prompts(rater.name, left, right)
                if not eligible:
                    raise ArenaError("this study has no prompt to battle on")
                prompt = self._rng.choice(eligible)
            # Reserve the pair now so concurrent requests spread over the pairs.
            self._pending[key] = self._pending.get(key, 0) + 1
        try:
            ans_a, src_a = self._answer(rater.name, prompt, left)
            ans_b, src_b = self._answer(rater.name, prompt, right)
        except BaseException:
            self._release(key)
            raise
        flags = [
            f"answer {side} names {term}"
            for side, ans in (("A", ans_a), ("B", ans_b))
            for term in identity_terms(ans.text, self.study.model_names)
        ]
        created = datetime.now(UTC)
        record = BattleRecord(
            battle_id=secrets.token_urlsafe(18),
            study=self.study.name,
            rater=rater.name,
            model_a=left,
            model_b=right,
            swapped=self.study.model_names.index(left) > self.study.model_names.index(right),
            prompt=prompt.text,
            answer_a=ans_a.text,
            answer_b=ans_b.text,
            prompt_id=prompt.id,
            prompt_set=prompt.prompt_set,
            category=prompt.category,
            language=prompt.language,
            response_a_id=ans_a.response_id,
            response_b_id=ans_b.response_id,
            source_a=src_a,
            source_b=src_b,
            flags=tuple(flags),
            created_at=created,
            expires_at=created + timedelta(seconds=self.study.battle_ttl_s),
        )
        try:
            self.store.add_battle(record)
        finally:
            self._release(key)
        with self._lock:
            self._seen.setdefault(rater.name, set()).update((ans_a.response_id, ans_b.response_id))
        return BattleView(
            record.battle_id,
            prompt.text,
            ans_a.text,
            ans_b.text,
            prompt.category,
            prompt.language,
        )

    def _release(self, key: frozenset[str]) -> None:
        with self._lock:
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key]

    def vote(self, rater: Rater, battle_id: str, choice: str, reason: str | None) -> VoteOutcome:
        """Record ``rater``'s vote (durably) and return the revealed names.

        Raises:
            VoteRejected: see :meth:`VoteStore.record_vote`; nothing is written.
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
