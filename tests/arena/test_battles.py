"""Pair sampling, the answer pool, the identity guard and the Arena engine."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from workbench.arena.battles import AnswerPool, Arena, ArenaError, choose_pair
from workbench.arena.guard import identity_terms
from workbench.arena.study import load_study
from workbench.arena.votes import VoteRejected
from workbench.backends.base import GenerationConfig
from workbench.store import load_runs

from .helpers import BUNDLED, GEN, PROMPTS, fake_runs, need_models, write_study


def test_least_battled_pair_goes_first() -> None:
    models = ["a", "b", "c"]
    counts = {frozenset("ab"): 3, frozenset("ac"): 1, frozenset("bc"): 3}
    for seed in range(20):
        assert set(choose_pair(models, counts, random.Random(seed))) == {"a", "c"}


def test_pairs_stay_balanced_and_sides_random() -> None:
    models = ["a", "b", "c", "d"]
    counts: dict[frozenset[str], int] = {}
    sides: Counter[tuple[str, str]] = Counter()
    rng = random.Random(0)
    for _ in range(600):
        left, right = choose_pair(models, counts, rng)
        sides[(left, right)] += 1
        key = frozenset((left, right))
        counts[key] = counts.get(key, 0) + 1
        assert (
            max(counts.values())
            - min(
                counts.get(frozenset(p), 0)
                for p in [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
            )
            <= 1
        )
    assert set(counts.values()) == {100}
    assert len(sides) == 12  # every ordered pair appears: left/right is randomized
    assert 30 < sides[("a", "b")] < 70


def test_choose_pair_needs_two_models() -> None:
    with pytest.raises(ValueError, match="two models"):
        choose_pair(["a"], {}, random.Random(0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I am Gemma, a model trained by Google DeepMind.", ["Gemma", "Google", "DeepMind"]),
        ("As Qwen2.5 from Alibaba Cloud, I can help.", ["Qwen", "Alibaba"]),
        ("I'm ChatGLM, made by Zhipu AI.", ["GLM", "Zhipu"]),
        ("I am a LLaMA model by Meta AI.", ["Llama", "Meta"]),
        ("Hi! I'm SmolLM, built by Hugging Face.", ["SmolLM", "Hugging Face"]),
        ("I am ChatGPT by OpenAI.", ["OpenAI", "GPT"]),
        ("The answer is 4. Metadata and metallic objects are fine.", []),
        ("Paris is the capital of France.", []),
    ],
)
def test_identity_terms(text: str, expected: list[str]) -> None:
    assert identity_terms(text) == expected


def test_identity_terms_include_the_study_models() -> None:
    assert identity_terms("I am Smollm2-135M-instruct", ["smollm2-135m-instruct"])
    assert identity_terms("served as mymodel-7b here", ["mymodel-7b@127.0.0.1:9/v1"]) == [
        "mymodel-7b@127.0.0.1:9/v1"
    ] or identity_terms("mymodel", ["mymodel-7b"])


def test_pool_matches_prompt_and_settings() -> None:
    runs = pl.concat(
        [
            fake_runs(per=2),
            fake_runs(per=1, config=GenerationConfig(temperature=0.7, max_tokens=99)),
            fake_runs(models=["other-model"], per=1),
        ]
    )
    runs = runs.with_columns(
        pl.when(pl.col("row_id") == runs["row_id"][0])
        .then(pl.lit("boom"))
        .otherwise(pl.col("error"))
        .alias("error")
    )
    pool = AnswerPool.from_runs(runs, GEN, list(BUNDLED))
    first = PROMPTS[0]["prompt"]
    assert len(pool.answers(first, BUNDLED[0])) == 1  # one errored, other settings ignored
    assert len(pool.answers(first, BUNDLED[1])) == 2
    assert pool.answers(first, "other-model") == []
    assert len(pool) == 2 * 3 * 2 - 1
    assert (
        len(AnswerPool.from_runs(runs, GenerationConfig(temperature=0.2, max_tokens=12), BUNDLED))
        == 0
    )


def _arena(tmp_path: Path, runs: pl.DataFrame | None = None, **kw: object) -> Arena:
    need_models()
    study = load_study(write_study(tmp_path, **kw))  # type: ignore[arg-type]
    return Arena(study, runs=runs if runs is not None else fake_runs(), seed=0)


def test_battle_view_hides_identities_until_the_vote(tmp_path: Path) -> None:
    arena = _arena(tmp_path, pool_only=True, runs_root=tmp_path)
    alice = arena.authenticate("alice-secret-1")
    view = arena.new_battle(alice)
    shown = repr(view.as_dict())
    for name in BUNDLED:
        assert name not in shown
    assert len(view.battle_id) >= 24
    assert view.answer_a.startswith("Answer") and view.prompt in view.answer_a
    out = arena.vote(alice, view.battle_id, "tie", None)
    assert {out.model_a, out.model_b} == set(BUNDLED)
    with pytest.raises(VoteRejected, match="already"):
        arena.vote(alice, view.battle_id, "A", None)
    bob = arena.authenticate("bob-secret-22")
    with pytest.raises(VoteRejected, match="unknown battle"):
        arena.vote(bob, view.battle_id, "A", None)
    with pytest.raises(ArenaError, match="unknown token"):
        arena.authenticate("alice-secret-2")
    arena.close()


def test_sides_are_randomized_and_unseen_answers_preferred(tmp_path: Path) -> None:
    arena = _arena(tmp_path, pool_only=True, runs_root=tmp_path, max_open=9)
    alice = arena.authenticate("alice-secret-1")
    views = [arena.new_battle(alice) for _ in range(9)]
    battles = [arena.store.get_battle(v.battle_id) for v in views]
    lefts = Counter(b.model_a for b in battles)  # type: ignore[union-attr]
    assert set(lefts) == set(BUNDLED)
    # 3 prompts x 3 answers per model: nine battles never repeat an answer to alice
    ids = [b.response_a_id for b in battles] + [b.response_b_id for b in battles]  # type: ignore[union-attr]
    assert len(set(ids)) == 18
    assert len({v.battle_id for v in views}) == 9
    arena.close()


def test_flagged_answers_are_avoided_then_recorded(tmp_path: Path) -> None:
    clean = fake_runs(per=1)
    naming = fake_runs(per=2, text="I am Gemma by Google {i}")
    arena = _arena(
        tmp_path, runs=pl.concat([clean, naming]), pool_only=True, runs_root=tmp_path, max_open=4
    )
    alice = arena.authenticate("alice-secret-1")
    first = [arena.new_battle(alice) for _ in range(3)]
    assert all("Gemma" not in v.answer_a + v.answer_b for v in first)  # clean ones first
    flagged = arena.new_battle(alice)
    assert "Gemma" in flagged.answer_a + flagged.answer_b
    record = arena.store.get_battle(flagged.battle_id)
    assert record is not None and any("names Gemma" in f for f in record.flags)
    out = arena.vote(alice, flagged.battle_id, "A", None)
    assert out.flagged
    arena.vote(alice, first[0].battle_id, "B", None)
    assert arena.votes().height == 1
    assert arena.votes(include_flagged=True).height == 2
    arena.close()


def test_free_prompts_and_limits(tmp_path: Path) -> None:
    arena = _arena(tmp_path, pool_only=True, runs_root=tmp_path)
    alice = arena.authenticate("alice-secret-1")
    with pytest.raises(ArenaError, match="does not take your own prompts"):
        arena.new_battle(alice, "my own prompt")
    arena.close()


def test_pool_only_without_answers(tmp_path: Path) -> None:
    arena = _arena(
        tmp_path, runs=fake_runs(models=[BUNDLED[0]]), pool_only=True, runs_root=tmp_path
    )
    with pytest.raises(ArenaError, match="no prompt"):
        arena.new_battle(arena.authenticate("alice-secret-1"))
    assert arena.store.count_battles() == 0
    arena.close()


@pytest.mark.slow
def test_answers_generated_on_demand_join_the_pool(tmp_path: Path) -> None:
    runs_root = tmp_path / "runs-root"
    arena = _arena(
        tmp_path, runs=fake_runs(models=[]), runs_root=runs_root, free_prompts=True, max_tokens=8
    )
    alice = arena.authenticate("alice-secret-1")
    with pytest.raises(ArenaError, match="too long"):
        arena.new_battle(alice, "x" * 5000)
    view = arena.new_battle(alice, "Name a colour.")
    record = arena.store.get_battle(view.battle_id)
    assert record is not None and (record.source_a, record.source_b) == ("generated", "generated")
    assert view.answer_a.strip() and view.answer_b.strip()
    stored = load_runs(runs_root)
    assert set(stored["model"]) == set(BUNDLED) and set(stored["max_tokens"]) == {8}
    assert set(stored["row_id"]) == {record.response_a_id, record.response_b_id}
    arena.close()


def test_a_rater_who_has_seen_everything_gets_a_prompt_with_free_answers(tmp_path: Path) -> None:
    # One answer per prompt and model: once alice has seen them all, every prompt is
    # equally stale, and the prompt of her open battle has no free answer left. A new
    # battle takes another prompt instead of refusing her.
    arena = _arena(tmp_path, runs=fake_runs(per=1), pool_only=True, runs_root=tmp_path)
    alice = arena.authenticate("alice-secret-1")
    for _ in range(len(PROMPTS)):
        arena.vote(alice, arena.new_battle(alice).battle_id, "A", None)
    held = arena.new_battle(alice)
    for _ in range(24):
        view = arena.new_battle(alice)
        assert view.prompt != held.prompt
        arena.vote(alice, view.battle_id, "B", None)
    arena.close()
