"""Ratings over time: the leaderboard as it stood after each share of the votes."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from workbench.ratings.boards import Method, check_method
from workbench.ratings.bt import DEFAULT_REG, Design, newton, wins_battles
from workbench.ratings.cells import Ties, canonical, code_votes, pair_cells
from workbench.ratings.elo import DEFAULT_K, elo_scores, elo_sequential
from workbench.ratings.scale import ELO_SCALE, Anchor, EloScale, anchor_index, shift_to_anchor
from workbench.ratings.votes import validate_votes


def rating_history(
    votes: pl.DataFrame,
    *,
    method: Method = "bt",
    points: int = 20,
    time_column: str = "tstamp",
    ties: Ties = "keep",
    anchor: Anchor | None = None,
    k: float = DEFAULT_K,
    elo: EloScale = ELO_SCALE,
    reg: float = DEFAULT_REG,
) -> pl.DataFrame:
    """Ratings as the votes came in, at ``points`` evenly spaced checkpoints.

    Votes are taken in ``time_column`` order when that column exists, else in row order.
    For ``"bt"`` each checkpoint is a fit on all votes up to it (all checkpoints solved
    together); for ``"elo"`` it is the online rating at that moment.

    Returns:
        Long frame: votes (number of votes so far), time (the checkpoint vote's
        ``time_column`` value, null without one), model, rating. A model appears from the
        first checkpoint after its first battle.
    """
    check_method(method)
    votes = validate_votes(votes)
    has_time = time_column in votes.columns
    if has_time:
        votes = votes.sort(time_column, maintain_order=True, nulls_last=True)
    coded = code_votes(votes)
    k_anchor = None if anchor is None else anchor_index(coded.models, anchor)
    total = len(coded.a)
    points = max(1, min(points, total))
    marks = np.unique(np.ceil(np.linspace(0, total, points + 1)[1:]).astype(np.int64))
    n = len(coded.models)
    first_seen = np.full(n, total + 1)
    order = np.arange(total)
    np.minimum.at(first_seen, coded.a, order + 1)
    np.minimum.at(first_seen, coded.b, order + 1)

    if method == "elo":
        score = elo_scores(coded)
        r = [float(elo.initial)] * n
        snaps = []
        prev = 0
        for m in marks:
            elo_sequential(coded.a[prev:m], coded.b[prev:m], score[prev:m], r, k=k, elo=elo)
            snaps.append(np.array(r))
            prev = m
        table = shift_to_anchor(np.array(snaps), coded.models, anchor)
    else:
        cells = pair_cells(coded, ties)
        lo, hi, out, _ = canonical(coded.a, coded.b, coded.w)
        cell_keys = cells.i * n + cells.j  # ascending
        key = lo * n + hi
        pos = np.minimum(np.searchsorted(cell_keys, key), max(len(cell_keys) - 1, 0))
        found = cell_keys[pos] == key if len(cell_keys) else np.zeros(total, bool)
        keep = found if ties == "keep" else found & (out != 2)
        flat = np.where(keep, pos * 3 + out, -1)
        counts = np.zeros((len(marks), len(cells.i) * 3))
        for row, m in enumerate(marks):
            f = flat[:m]
            counts[row] = np.bincount(f[f >= 0], minlength=len(cells.i) * 3)
        design = Design(cells)
        s, nn = wins_battles(counts.reshape(len(marks), -1, 3))
        theta = newton(design, s, nn, reg)[:, :n]
        # centre on the models seen so far, so newcomers do not shift everyone else
        table = np.empty_like(theta)
        alpha = elo.alpha
        for row, m in enumerate(marks):
            t = theta[row]
            if anchor is not None and k_anchor is not None:
                table[row] = anchor[1] + (t - t[k_anchor]) / alpha
            else:
                table[row] = elo.initial + (t - t[first_seen <= m].mean()) / alpha

    times: list[Any]
    if has_time:
        col = votes[time_column]
        times = [col[int(m) - 1] for m in marks]
    else:
        times = [None] * len(marks)
    rows_votes, rows_time, rows_model, rows_rating = [], [], [], []
    for row, m in enumerate(marks):
        for c, name in enumerate(coded.models):
            if first_seen[c] <= m:
                rows_votes.append(int(m))
                rows_time.append(times[row])
                rows_model.append(name)
                rows_rating.append(float(table[row, c]))
    time_dtype = votes.schema[time_column] if has_time else pl.Null
    return pl.DataFrame(
        {
            "votes": pl.Series(rows_votes, dtype=pl.Int64),
            "time": pl.Series(rows_time, dtype=time_dtype),
            "model": pl.Series(rows_model, dtype=pl.String),
            "rating": pl.Series(rows_rating, dtype=pl.Float64),
        }
    )
