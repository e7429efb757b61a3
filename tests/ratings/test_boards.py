"""Leaderboards: columns, intervals and ranks, groups, style control, option errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench import ratings as R

from .helpers import rating_of, simulate, votes


def test_rank_counts_models_clearly_above() -> None:
    low = np.array([1100.0, 1050.0, 990.0, 900.0])
    high = np.array([1200.0, 1120.0, 1060.0, 980.0])
    assert R.ranks_from_intervals(low, high).tolist() == [1, 1, 2, 4]


def test_leaderboard_columns_and_ranks() -> None:
    frame = simulate(np.array([1000.0, 1300.0, 1000.0, 700.0]), 4000, np.random.default_rng(2))
    board = R.leaderboard(frame, bootstrap=200, seed=3)
    assert board.columns == [
        "model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties", "rank",
    ]  # fmt: skip
    assert board["model"].to_list()[0] == "model-01"
    assert board["model"].to_list()[-1] == "model-03"
    assert board["rank"].to_list()[0] == 1 and board["rank"].to_list()[-1] == 4
    assert (board["ci_low"] <= board["rating"]).all() and (
        board["rating"] <= board["ci_high"]
    ).all()
    assert board["battles"].sum() == 2 * frame.height
    assert (board["wins"] + board["losses"] + board["ties"] == board["battles"]).all()
    again = R.leaderboard(frame, bootstrap=200, seed=3)
    assert again.equals(board)  # seeded
    other = R.leaderboard(frame, bootstrap=200, seed=4)
    assert not other["ci_low"].equals(board["ci_low"])
    no_ci = R.leaderboard(frame, bootstrap=0)
    assert no_ci["ci_low"].null_count() == 4 and no_ci["rank"].to_list() == [1, 2, 3, 4]


def test_sandwich_and_bootstrap_widths_agree() -> None:
    frame = simulate(
        np.array([1000.0, 1100.0, 950.0, 1040.0, 880.0]), 8000, np.random.default_rng(9)
    )
    boot = R.leaderboard(frame, bootstrap=1000, seed=0).sort("model")
    sand = R.leaderboard(frame, ci="sandwich").sort("model")
    wb = (boot["ci_high"] - boot["ci_low"]).to_numpy()
    ws = (sand["ci_high"] - sand["ci_low"]).to_numpy()
    np.testing.assert_allclose(ws, wb, rtol=0.15)
    assert sand["rating"].to_list() == pytest.approx(boot["rating"].to_list())


def test_leaderboard_by_category() -> None:
    rng = np.random.default_rng(13)
    code = simulate(np.array([1200.0, 1000.0, 800.0]), 1500, rng).with_columns(
        category=pl.lit("code")
    )
    chat = simulate(np.array([800.0, 1000.0, 1200.0]), 1000, rng).with_columns(
        category=pl.lit("chat")
    )
    board = R.leaderboard_by(pl.concat([code, chat]), "category", bootstrap=100)
    assert board.columns[0] == "category"
    assert board["category"].unique(maintain_order=True).to_list() == ["code", "chat"]
    top = board.group_by("category", maintain_order=True).first()
    assert dict(zip(top["category"], top["model"], strict=True)) == {
        "code": "model-00",
        "chat": "model-02",
    }
    with pytest.raises(R.VotesFileError, match="language"):
        R.leaderboard_by(code, "language")


def test_style_control_removes_a_length_bias() -> None:
    """Equal models; raters prefer the longer answer and model-00 writes long ones."""
    rng = np.random.default_rng(14)
    n = 6000
    names = np.array(["model-00", "model-01", "model-02"])
    a = rng.integers(0, 3, n)
    b = (a + rng.integers(1, 3, n)) % 3
    length = lambda m: np.where(m == 0, 600, 300) * rng.uniform(0.7, 1.3, n)  # noqa: E731
    la, lb = length(a), length(b)
    x = (la - lb) / (la + lb)
    p = 1 / (1 + np.exp(-4.0 * x))
    w = np.where(rng.random(n) < p, "model_a", "model_b")
    frame = pl.DataFrame(
        {"model_a": names[a], "model_b": names[b], "winner": w, "len_a": la, "len_b": lb}
    )
    board = R.leaderboard(frame, bootstrap=100, style_control=True)
    assert {"rating_sc", "ci_low_sc", "ci_high_sc", "rank_sc"} <= set(board.columns)
    plain_gap = rating_of(board, "model-00") - rating_of(board, "model-01")
    sc_gap = rating_of(board, "model-00", "rating_sc") - rating_of(board, "model-01", "rating_sc")
    assert plain_gap > 60
    assert abs(sc_gap) < 25
    assert board["rank_sc"].to_list() == [1, 1, 1]
    fit = R.fit_bt_style(frame)
    assert fit.length_coef is not None and fit.length_coef > 100
    with pytest.raises(R.VotesFileError, match="len_a"):
        R.leaderboard(frame.drop("len_a"), style_control=True)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"method": "glicko"}, "method must be 'bt' or 'elo'"),
        ({"ci": "wald"}, "ci must be 'bootstrap' or 'sandwich'"),
        ({"ties": "half"}, "ties must be 'keep' or 'drop'"),
        ({"bootstrap": -1}, "bootstrap must be >= 0"),
        ({"method": "elo", "ci": "sandwich"}, "Bradley-Terry only"),
        ({"method": "elo", "style_control": True}, "style control needs method='bt'"),
        ({"anchor": ("nobody", 1000.0)}, "anchor model 'nobody' has no votes"),
    ],
)
def test_bad_options_are_input_errors(kw: dict, message: str) -> None:
    frame = votes([("A", "B", "model_a"), ("B", "A", "tie")])
    with pytest.raises(R.RatingsError, match=message):
        R.leaderboard(frame, **kw)
