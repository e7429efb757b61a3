"""Win rates: observed (from the votes) and predicted (from ratings), as wide frames."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench.ratings.cells import code_votes
from workbench.ratings.errors import RatingsError
from workbench.ratings.scale import ELO_SCALE, EloScale


def _wide(models: Sequence[str], matrix: np.ndarray) -> pl.DataFrame:
    data: dict[str, Any] = {"model": list(models)}
    for c, name in enumerate(models):
        data[name] = [None if math.isnan(v) else float(v) for v in matrix[:, c]]
    return pl.DataFrame(data, schema={"model": pl.String, **{m: pl.Float64 for m in models}})


def win_matrix(votes: pl.DataFrame, *, order: Sequence[str] | None = None) -> pl.DataFrame:
    """Empirical win rates: cell (row, col) is the share of row's decisive battles against
    col that row won (ties excluded, both seat positions pooled); null where none.

    Returns:
        A wide frame: column ``model`` (the row model), then one column per opponent, rows
        and columns in the same order: ``order`` if given, else by mean win rate.
    """
    coded = code_votes(votes)
    n = len(coded.models)
    decisive = coded.w < 2
    a, b, w = coded.a[decisive], coded.b[decisive], coded.w[decisive]
    winner = np.where(w == 0, a, b)
    loser = np.where(w == 0, b, a)
    wins = np.bincount(winner * n + loser, minlength=n * n).reshape(n, n).astype(float)
    total = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(total > 0, wins / total, np.nan)
    np.fill_diagonal(rate, np.nan)
    models = list(coded.models)
    if order is None:
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(rate, axis=1)
        mean = np.nan_to_num(mean, nan=-1.0)
        idx = sorted(range(n), key=lambda i: (-mean[i], models[i]))
    else:
        unknown = [m for m in order if m not in models]
        if unknown:
            raise RatingsError(f"unknown model in order: {unknown[0]!r}")
        idx = [models.index(m) for m in order]
    return _wide([models[i] for i in idx], rate[np.ix_(idx, idx)])


def predicted_win_matrix(ratings: pl.DataFrame, *, elo: EloScale = ELO_SCALE) -> pl.DataFrame:
    """Win probabilities implied by ratings: P(row beats col) = 1 / (1 + base **
    ((R_col - R_row) / scale)), in the order of the ``ratings`` rows; diagonal null.

    Args:
        ratings: A frame with columns model and rating (e.g. from
            :func:`~workbench.ratings.leaderboard`).
        elo: The scale the ratings are on.
    """
    models = ratings["model"].to_list()
    r = ratings["rating"].cast(pl.Float64).to_numpy()
    prob = elo.win_probability(r[:, None], r[None, :])
    np.fill_diagonal(prob, np.nan)
    return _wide(models, prob)
