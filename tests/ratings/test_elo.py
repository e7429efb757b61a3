"""Online Elo: by hand, against FastChat's loop, batched replays, shuffles."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import ratings as R
from workbench.ratings import elo
from workbench.ratings.cells import code_votes

from .helpers import rating_of, simulate, votes


def test_one_win_moves_elo_by_half_k() -> None:
    board = R.online_elo(votes([("x", "y", "model_a")]))
    assert rating_of(board, "x") == pytest.approx(1002.0)
    assert rating_of(board, "y") == pytest.approx(998.0)
    elo32 = R.online_elo(votes([("x", "y", "model_b")]), k=32)
    assert rating_of(elo32, "y") == pytest.approx(1016.0)


def test_second_vote_uses_updated_expectation() -> None:
    board = R.online_elo(votes([("x", "y", "model_a"), ("x", "y", "model_b")]))
    expected_y = 1.0 / (1.0 + 10.0 ** ((1002.0 - 998.0) / 400.0))
    assert rating_of(board, "y") == pytest.approx(998.0 + 4.0 * (1.0 - expected_y))
    assert rating_of(board, "x") + rating_of(board, "y") == pytest.approx(2000.0)


def test_elo_tie_between_equals_changes_nothing() -> None:
    board = R.online_elo(votes([("x", "y", "tie"), ("y", "x", "tie (bothbad)")]))
    assert board["rating"].to_list() == pytest.approx([1000.0, 1000.0])


def test_elo_matches_fastchat_reference_loop() -> None:
    """An independent transcription of FastChat's compute_online_elo over dicts."""
    frame = simulate(np.array([1000.0, 1100.0, 900.0, 1050.0]), 2000, np.random.default_rng(3))
    rating: dict[str, float] = {}
    for model_a, model_b, winner in frame.iter_rows():
        ra = rating.setdefault(model_a, 1000.0)
        rb = rating.setdefault(model_b, 1000.0)
        ea = 1 / (1 + 10 ** ((rb - ra) / 400))
        eb = 1 / (1 + 10 ** ((ra - rb) / 400))
        sa = {"model_a": 1.0, "model_b": 0.0}.get(winner, 0.5)
        rating[model_a] += 4 * (sa - ea)
        rating[model_b] += 4 * (1 - sa - eb)
    ours = R.online_elo(frame)
    for model, value in rating.items():
        assert rating_of(ours, model) == pytest.approx(value, abs=1e-9)


def test_batched_elo_replays_the_sequential_loop_exactly() -> None:
    frame = simulate(np.array([1000.0, 1200.0, 900.0]), 500, np.random.default_rng(4))
    coded = code_votes(frame)
    score = elo.elo_scores(coded)
    seq = elo.elo_sequential(coded.a, coded.b, score, [1000.0] * 3, k=4, elo=R.ELO_SCALE)
    total = len(coded.a)
    batched = elo.elo_batched(
        lambda t0, t1: np.repeat(np.arange(t0, t1)[:, None], 2, axis=1),
        coded,
        score,
        2,
        k=4,
        elo=R.ELO_SCALE,
    )
    assert total == 500
    np.testing.assert_allclose(batched, [seq, seq], atol=1e-9)


def test_elo_shuffle_median_is_order_free() -> None:
    frame = simulate(np.array([1000.0, 1150.0, 850.0]), 600, np.random.default_rng(5))
    a = R.online_elo(frame, shuffles=30, seed=1)
    b = R.online_elo(frame.reverse(), shuffles=30, seed=1)
    assert a["rating"].to_list() != pytest.approx(b["rating"].to_list(), abs=1e-6)
    medians = dict(zip(a["model"], a["rating_median"], strict=True))
    assert medians["model-01"] > medians["model-00"] > medians["model-02"]


def test_elo_scale_sets_start_and_step() -> None:
    """On base e and scale 1, one win between equals moves each side by k / 2 from the
    chosen start, and the second vote's step follows the logistic expectation."""
    scale = R.EloScale(scale=1.0, base=np.e, initial=0.0)
    board = R.online_elo(votes([("x", "y", "model_a"), ("x", "y", "model_a")]), k=1.0, elo=scale)
    first = 0.5
    second = 1.0 - 1.0 / (1.0 + np.exp(-2 * first))
    assert rating_of(board, "x") == pytest.approx(first + second)
    assert rating_of(board, "y") == pytest.approx(-(first + second))
