"""One rater's concurrent battles never share an answer, and open battles are capped."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from workbench.arena.battles import Arena, ArenaError, BattleView
from workbench.arena.study import load_study

from .helpers import fake_runs, need_models, write_study


def _race(arena: Arena, token: str, n: int) -> tuple[list[BattleView], list[str]]:
    rater = arena.authenticate(token)
    barrier = threading.Barrier(n)
    views: list[BattleView] = []
    refused: list[str] = []
    lock = threading.Lock()

    def start() -> None:
        barrier.wait()
        try:
            view = arena.new_battle(rater)
            with lock:
                views.append(view)
        except ArenaError as e:
            with lock:
                refused.append(str(e))

    threads = [threading.Thread(target=start) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return views, refused


@pytest.mark.parametrize("per", [3, 1])
def test_six_concurrent_battles_never_repeat_an_answer(tmp_path: Path, per: int) -> None:
    """With 3 answers per model and prompt every battle gets fresh ones; with 1 the rater
    has seen them all after three battles, and still no two open battles share one."""
    need_models()
    for round_ in range(3):
        d = tmp_path / f"round{round_}"
        d.mkdir()
        study = load_study(write_study(d, pool_only=True, runs_root=d, max_open=6))
        arena = Arena(study, runs=fake_runs(per=per), seed=round_)
        views, refused = _race(arena, "alice-secret-1", 6)
        records = [arena.store.get_battle(v.battle_id) for v in views]
        shown = [(r.prompt, r.response_a_id) for r in records if r]
        shown += [(r.prompt, r.response_b_id) for r in records if r]
        assert len(shown) == len(set(shown)), f"an answer was repeated: {shown}"
        if per == 3:
            assert (len(views), refused) == (6, [])
        else:  # 3 prompts x 1 answer: at most three battles can be open at once
            assert len(views) == 3 and all("no answer is free" in e for e in refused)
        # votes and the next battles go on
        for v in views:
            arena.vote(arena.authenticate("alice-secret-1"), v.battle_id, "tie", None)
        assert arena.new_battle(arena.authenticate("alice-secret-1")).battle_id
        arena.close()


def test_open_battles_are_capped_per_rater(tmp_path: Path) -> None:
    need_models()
    study = load_study(write_study(tmp_path, pool_only=True, runs_root=tmp_path))
    assert study.max_open_battles == 2  # the default
    arena = Arena(study, runs=fake_runs(), seed=0)
    views, refused = _race(arena, "alice-secret-1", 6)
    assert len(views) == 2 and len(refused) == 4
    assert all("open battles" in e for e in refused)
    # another rater is not affected; skipping or voting frees a place
    bob = arena.authenticate("bob-secret-22")
    arena.new_battle(bob)
    alice = arena.authenticate("alice-secret-1")
    assert arena.skip(alice, views[0].battle_id)
    assert not arena.skip(alice, views[0].battle_id)  # once
    third = arena.new_battle(alice)
    with pytest.raises(ArenaError, match="open battles"):
        arena.new_battle(alice)
    arena.vote(alice, third.battle_id, "A", None)
    arena.new_battle(alice)
    with pytest.raises(ArenaError, match="skipped"):
        arena.vote(alice, views[0].battle_id, "A", None)
    arena.close()
