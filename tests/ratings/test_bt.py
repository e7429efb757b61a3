"""Bradley-Terry: hand-computable cases, an independent cross-check (choix), the bootstrap
and its calibration."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from workbench import ratings as R
from workbench.ratings import bt
from workbench.ratings.cells import code_votes, pair_cells

from .helpers import rating_of, simulate, votes


def test_two_models_closed_form() -> None:
    # A beat B 3 times out of 4: the MLE difference is 400 * log10(3).
    frame = votes([("A", "B", "model_a")] * 3 + [("A", "B", "model_b")])
    exact = R.fit_bt(frame, reg=1e-9)
    diff = rating_of(exact, "A") - rating_of(exact, "B")
    assert diff == pytest.approx(400 * math.log10(3), abs=1e-3)
    assert exact["rating"].mean() == pytest.approx(1000.0)
    # the default prior pulls four battles' worth of evidence in by about a point
    default = R.fit_bt(frame)
    assert 0 < 400 * math.log10(3) - (rating_of(default, "A") - rating_of(default, "B")) < 2.0


def test_ties_count_half_a_win() -> None:
    # 2 wins + 2 ties out of 4 = 3 points of 4, the same as 3 wins and a loss.
    with_ties = votes([("A", "B", "model_a")] * 2 + [("A", "B", "tie")] * 2)
    plain = votes([("A", "B", "model_a")] * 3 + [("B", "A", "model_a")])
    assert rating_of(R.fit_bt(with_ties), "A") == pytest.approx(rating_of(R.fit_bt(plain), "A"))
    dropped = R.fit_bt(with_ties, ties="drop")
    assert rating_of(dropped, "A") > rating_of(R.fit_bt(with_ties), "A")


def test_symmetric_records_give_equal_ratings() -> None:
    cycle = []
    for x, y in (("A", "B"), ("B", "C"), ("C", "A")):
        cycle += [(x, y, "model_a")] * 5 + [(y, x, "model_a")] * 2 + [(x, y, "tie")]
    fit = R.fit_bt(votes(cycle))
    assert fit["rating"].to_list() == pytest.approx([1000.0] * 3, abs=1e-9)
    mirror = votes([("A", "B", "model_a")] * 4 + [("A", "B", "model_b")] * 4)
    assert R.fit_bt(mirror)["rating"].to_list() == pytest.approx([1000.0, 1000.0], abs=1e-9)


def test_renaming_and_reordering_change_nothing() -> None:
    frame = simulate(
        np.array([1000.0, 1080.0, 930.0, 1010.0, 1200.0]), 3000, np.random.default_rng(7)
    )
    fit = R.fit_bt(frame)
    # names whose alphabetical order is reversed, rows in reverse order, seats swapped
    rename = {f"model-{i:02d}": f"{'zyxwv'[i]}-renamed" for i in range(5)}
    swapped = frame.select(
        pl.col("model_b").replace_strict(rename).alias("model_a"),
        pl.col("model_a").replace_strict(rename).alias("model_b"),
        pl.col("winner").replace({"model_a": "model_b", "model_b": "model_a"}),
    ).reverse()
    refit = R.fit_bt(swapped)
    for old, new in rename.items():
        assert rating_of(refit, new) == pytest.approx(rating_of(fit, old), abs=1e-8)
    board = R.leaderboard(frame, bootstrap=50, seed=1)
    assert board["model"].to_list() == [
        {v: k for k, v in rename.items()}[m] for m in R.leaderboard(swapped, bootstrap=50)["model"]
    ]


def test_model_with_only_wins_gets_a_finite_rating() -> None:
    rows = [("champ", "B", "model_a")] * 8 + [("C", "champ", "model_b")] * 5
    rows += [("B", "C", "model_a")] * 6 + [("B", "C", "model_b")] * 4
    board = R.leaderboard(votes(rows), bootstrap=200)
    for col in ("rating", "ci_low", "ci_high"):
        assert np.isfinite(board[col].to_numpy()).all()
    assert board["model"][0] == "champ"
    # a model that never won is finite too, and last
    assert np.isfinite(R.fit_bt(votes([("A", "B", "model_a")]))["rating"].to_numpy()).all()
    sandwich = R.leaderboard(votes(rows), ci="sandwich")
    assert np.isfinite(sandwich["ci_high"].to_numpy()).all()


def test_models_linked_only_by_ties_and_disconnected_groups_stay_finite() -> None:
    rows = [("A", "B", "tie")] * 4 + [("B", "C", "model_a")] * 3 + [("C", "B", "model_a")]
    rows += [("D", "E", "model_a")] * 2  # a second, disconnected group
    fit = R.fit_bt(votes(rows))
    assert np.isfinite(fit["rating"].to_numpy()).all()
    # four ties tie A to B (the weak prior keeps A a hair nearer the mean)
    assert 1000.0 < rating_of(fit, "A") <= rating_of(fit, "B")
    assert rating_of(fit, "B") - rating_of(fit, "A") < 2.0
    assert fit["rating"].mean() == pytest.approx(1000.0)
    dropped = R.fit_bt(votes(rows), ties="drop")  # A then has no decisive battle at all
    assert np.isfinite(dropped["rating"].to_numpy()).all()
    assert rating_of(dropped, "A") == pytest.approx(1000.0, abs=1e-6)


def test_anchor_pins_one_model_and_keeps_differences() -> None:
    frame = simulate(np.array([1000.0, 1100.0, 950.0]), 1500, np.random.default_rng(8))
    free = R.fit_bt(frame)
    pinned = R.fit_bt(frame, anchor=("model-00", 1200.0))
    assert rating_of(pinned, "model-00") == pytest.approx(1200.0)
    shift = rating_of(pinned, "model-01") - rating_of(free, "model-01")
    assert rating_of(pinned, "model-02") - rating_of(free, "model-02") == pytest.approx(shift)
    board = R.leaderboard(frame, anchor=("model-00", 1200.0), bootstrap=100)
    row = board.filter(pl.col("model") == "model-00")
    assert row["ci_low"].item() == pytest.approx(1200.0)
    assert row["ci_high"].item() == pytest.approx(1200.0)
    with pytest.raises(R.RatingsError, match="anchor model 'nobody' has no votes"):
        R.fit_bt(frame, anchor=("nobody", 1000.0))


def test_scale_and_base_are_honoured() -> None:
    frame = votes([("A", "B", "model_a")] * 3 + [("A", "B", "model_b")])
    fit = R.fit_bt(frame, elo=R.EloScale(scale=1.0, base=math.e, initial=0.0), reg=1e-9)
    assert rating_of(fit, "A") - rating_of(fit, "B") == pytest.approx(math.log(3), abs=1e-6)


@pytest.mark.slow
def test_bradley_terry_agrees_with_choix() -> None:
    choix = pytest.importorskip("choix")
    rng = np.random.default_rng(11)
    strengths = rng.normal(1000, 150, 12)
    frame = simulate(strengths, 30_000, rng, tie_rate=0.15)
    for ties in ("keep", "drop"):
        ours = R.fit_bt(frame, ties=ties)
        models = sorted(ours["model"].to_list())
        idx = {m: i for i, m in enumerate(models)}
        comp = np.zeros((len(models), len(models)))
        for a, b, w in frame.iter_rows():
            if w == "model_a":
                comp[idx[a], idx[b]] += 1
            elif w == "model_b":
                comp[idx[b], idx[a]] += 1
            elif ties == "keep":
                comp[idx[a], idx[b]] += 0.5
                comp[idx[b], idx[a]] += 0.5
        params = choix.ilsr_pairwise_dense(comp, tol=1e-12, max_iter=10_000)
        theirs = 1000 + (params - params.mean()) * 400 / math.log(10)
        for m in models:
            assert rating_of(ours, m) == pytest.approx(theirs[idx[m]], abs=0.5)
        assert max(abs(rating_of(ours, m) - theirs[idx[m]]) for m in models) < 0.05


def test_bootstrap_equals_row_resampling_in_distribution() -> None:
    """Multinomial cell resampling has the spread of literal row resampling."""
    frame = simulate(np.array([1000.0, 1100.0, 900.0]), 1500, np.random.default_rng(12))
    fast = R.bootstrap_bt(frame, rounds=600, seed=0).samples
    assert fast is not None
    rng = np.random.default_rng(1)
    rows = [
        R.fit_bt(frame[rng.integers(0, frame.height, frame.height)]).sort("model")["rating"]
        for _ in range(150)
    ]
    slow = np.array(rows)
    np.testing.assert_allclose(fast.std(axis=0), slow.std(axis=0), rtol=0.2)


@pytest.mark.slow
def test_bootstrap_intervals_are_calibrated() -> None:
    """Over 200 simulated studies, 95% bootstrap intervals for the rating differences
    between every pair of models cover the true differences 92-98% of the time."""
    rng = np.random.default_rng(2024)
    covered = total = 0
    for study in range(200):
        strengths = rng.normal(1000, 80, 6)
        frame = simulate(strengths, 1500, rng, tie_rate=0.0)
        fit = R.bootstrap_bt(frame, rounds=400, seed=study)
        assert fit.samples is not None
        order = [int(m.split("-")[1]) for m in fit.models]
        true = strengths[order]
        i, j = np.triu_indices(len(true), 1)
        diffs = fit.samples[:, i] - fit.samples[:, j]
        low, high = np.percentile(diffs, [2.5, 97.5], axis=0)
        truth = true[i] - true[j]
        covered += int(((low <= truth) & (truth <= high)).sum())
        total += len(truth)
    coverage = covered / total
    assert 0.92 <= coverage <= 0.98, coverage


def test_bootstrap_refits_are_exact_optima() -> None:
    """Fast refits (fixed-Hessian chord steps, Newton fallback) land on each round's own
    maximum, including rounds where a rarely seen model is missing from the resample."""
    frame = pl.concat(
        [
            simulate(np.array([1000.0, 1100.0, 900.0, 1050.0]), 400, np.random.default_rng(19)),
            votes([("model-00", "rare", "model_b")]),
        ]
    )
    coded = code_votes(frame)
    cells = pair_cells(coded, "keep")
    design = bt.Design(cells)
    s, n = bt.wins_battles(cells.counts)
    beta0 = bt.newton(design, s[None], n[None], R.DEFAULT_REG)[0]
    rng = np.random.default_rng(0)
    flat = cells.counts.ravel()
    draws = rng.multinomial(int(flat.sum()), flat / flat.sum(), size=300).reshape(300, -1, 3)
    bs, bn = bt.wins_battles(draws)
    assert (bn[:, (cells.i == 4) | (cells.j == 4)].sum(axis=1) == 0).any()  # 'rare' missing
    h_inv = np.linalg.inv(bt.neg_hessian(design, beta0, n, R.DEFAULT_REG))
    fast = bt.refit(design, bs, bn, R.DEFAULT_REG, beta0, h_inv)
    exact = bt.newton(design, bs, bn, R.DEFAULT_REG)
    np.testing.assert_allclose(fast, exact, atol=1e-7)
