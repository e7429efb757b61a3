"""Online Elo: LMArena's original compute_online_elo, in vote order or over replays.

Each vote moves the two ratings by ``k * (S_A - E_A)`` in opposite directions, with
S_A = 1, 0 or 1/2 and E_A = 1 / (1 + base ** ((R_B - R_A) / scale)). Online Elo depends
on the order of the votes, so replays in random orders (shuffles, bootstrap resamples)
are stepped all together.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from workbench.ratings.cells import Coded, as_rng, code_votes, records
from workbench.ratings.scale import ELO_SCALE, EloScale

DEFAULT_K = 4.0
"""LMArena's update step."""

Order = Callable[[int, int], np.ndarray]
"""``order(t0, t1)``: vote indices of shape (t1 - t0, rounds) for steps t0..t1."""


def elo_scores(coded: Coded) -> np.ndarray:
    """Score of model_a per vote: 1 win, 0 loss, 0.5 tie."""
    return np.array([1.0, 0.0, 0.5, 0.5])[coded.w]


def elo_sequential(
    a: np.ndarray,
    b: np.ndarray,
    score: np.ndarray,
    ratings: list[float],
    *,
    k: float,
    elo: EloScale,
) -> list[float]:
    """FastChat's compute_online_elo, exactly, as a tight loop over int codes (in place)."""
    r = ratings
    scale, base = elo.scale, elo.base
    for ai, bi, sa in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        ra = r[ai]
        rb = r[bi]
        delta = k * (sa - 1.0 / (1.0 + base ** ((rb - ra) / scale)))
        r[ai] = ra + delta
        r[bi] = rb - delta
    return r


def elo_batched(
    order: Order,
    coded: Coded,
    score: np.ndarray,
    rounds: int,
    *,
    k: float,
    elo: EloScale,
) -> np.ndarray:
    """Online Elo for many vote sequences at once, stepping all rounds together.

    Returns ratings (rounds, models). Same arithmetic as :func:`elo_sequential`.
    """
    n = len(coded.models)
    total = len(coded.a)
    scale, base = elo.scale, elo.base
    r = np.full(rounds * n, float(elo.initial))
    off = np.arange(rounds) * n
    chunk = max(1, 2_000_000 // rounds)
    for t0 in range(0, total, chunk):
        t1 = min(total, t0 + chunk)
        idx = order(t0, t1)
        ia = coded.a[idx] + off
        ib = coded.b[idx] + off
        sa = score[idx]
        for t in range(t1 - t0):
            x, y = ia[t], ib[t]
            ra = r[x]
            rb = r[y]
            delta = k * (sa[t] - 1.0 / (1.0 + base ** ((rb - ra) / scale)))
            r[x] = ra + delta
            r[y] = rb - delta
    return r.reshape(rounds, n)


def elo_in_order(coded: Coded, *, k: float, elo: EloScale) -> np.ndarray:
    """Online Elo ratings after the votes in row order, shape (models,)."""
    start = [float(elo.initial)] * len(coded.models)
    return np.array(elo_sequential(coded.a, coded.b, elo_scores(coded), start, k=k, elo=elo))


def elo_bootstrap(
    coded: Coded, rounds: int, rng: np.random.Generator, *, k: float, elo: EloScale
) -> np.ndarray:
    """Online Elo on ``rounds`` resamples (with replacement, so in random order)."""
    total = len(coded.a)

    def order(t0: int, t1: int) -> np.ndarray:
        return rng.integers(0, total, size=(t1 - t0, rounds))

    return elo_batched(order, coded, elo_scores(coded), rounds, k=k, elo=elo)


def online_elo(
    votes: pl.DataFrame,
    *,
    k: float = DEFAULT_K,
    elo: EloScale = ELO_SCALE,
    shuffles: int = 0,
    seed: int | np.random.Generator = 0,
) -> pl.DataFrame:
    """Online Elo in the order of the rows (LMArena's original compute_online_elo).

    Args:
        votes: Votes frame, in the order they were cast.
        k: Update step.
        elo: The rating scale; everyone starts at its ``initial``.
        shuffles: If > 0, also replay the votes in that many random orders and report
            the median rating (``rating_median``), since online Elo depends on order.
        seed: Seed (or Generator) for the shuffles.

    Returns:
        One row per model, best first: model, rating, battles, wins, losses, ties
        (+ rating_median).
    """
    coded = code_votes(votes)
    frame = pl.DataFrame(
        {"model": list(coded.models), "rating": elo_in_order(coded, k=k, elo=elo).tolist()}
    )
    if shuffles > 0:
        rng = as_rng(seed)
        score = elo_scores(coded)
        total = len(coded.a)
        per_batch = max(1, min(shuffles, 20_000_000 // max(total, 1)))
        runs = []
        done = 0
        while done < shuffles:
            size = min(per_batch, shuffles - done)
            perms = np.stack([rng.permutation(total) for _ in range(size)])

            def order(t0: int, t1: int, perms: np.ndarray = perms) -> np.ndarray:
                return np.ascontiguousarray(perms[:, t0:t1].T)

            runs.append(elo_batched(order, coded, score, size, k=k, elo=elo))
            done += size
        medians = np.median(np.concatenate(runs), axis=0)
        frame = frame.with_columns(pl.Series("rating_median", medians))
    return frame.join(records(coded), on="model").sort(
        ["rating", "model"], descending=[True, False]
    )
