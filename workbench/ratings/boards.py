"""Leaderboards: ratings with 95% confidence intervals and interval-based ranks."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl

from workbench.ratings.bt import DEFAULT_REG, fit_cells
from workbench.ratings.cells import (
    Ties,
    as_rng,
    code_votes,
    length_feature,
    pair_cells,
    records,
    style_cells,
)
from workbench.ratings.elo import DEFAULT_K, elo_bootstrap, elo_in_order
from workbench.ratings.errors import RatingsError, VotesFileError
from workbench.ratings.scale import ELO_SCALE, Anchor, EloScale, anchor_index, shift_to_anchor
from workbench.ratings.votes import validate_votes

CiMethod = Literal["bootstrap", "sandwich"]
"""Bootstrap percentiles, or rating +- 1.96 robust (sandwich) standard errors."""
Method = Literal["bt", "elo"]
"""Bradley-Terry maximum likelihood, or online Elo."""

_Z95 = 1.959963984540054  # standard normal 97.5% quantile


def check_method(method: str) -> None:
    """Raises :class:`RatingsError` unless ``method`` is ``"bt"`` or ``"elo"``."""
    if method not in ("bt", "elo"):
        raise RatingsError(f"method must be 'bt' or 'elo', not {method!r}")


def ranks_from_intervals(ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """rank_i = 1 + number of models whose lower bound is above model i's upper bound."""
    low = np.asarray(ci_low, dtype=float)
    high = np.asarray(ci_high, dtype=float)
    return 1 + (low[None, :] > high[:, None]).sum(axis=1)


def _intervals(
    rating: np.ndarray, samples: np.ndarray | None, sd: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if samples is not None:
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
        return low, high
    if sd is not None:
        return rating - _Z95 * sd, rating + _Z95 * sd
    return rating.copy(), rating.copy()


def leaderboard(
    votes: pl.DataFrame,
    *,
    method: Method = "bt",
    bootstrap: int = 1000,
    seed: int | np.random.Generator = 0,
    ci: CiMethod = "bootstrap",
    ties: Ties = "keep",
    anchor: Anchor | None = None,
    style_control: bool = False,
    k: float = DEFAULT_K,
    elo: EloScale = ELO_SCALE,
    reg: float = DEFAULT_REG,
) -> pl.DataFrame:
    """A leaderboard with 95% confidence intervals and interval-based ranks.

    Args:
        votes: Votes frame.
        method: ``"bt"`` (Bradley-Terry MLE) or ``"elo"`` (online Elo; the rating is then
            the median over ``bootstrap`` resampled, hence reshuffled, replays, or the
            rating in row order when ``bootstrap`` is 0).
        bootstrap: Bootstrap rounds (``ci="bootstrap"``); 0 gives no interval.
        seed: Seed (or Generator) for the bootstrap.
        ci: ``"bootstrap"`` (percentiles 2.5 / 97.5) or ``"sandwich"`` (rating
            +- 1.96 robust standard errors; Bradley-Terry only).
        ties: ``"keep"`` (half a win each) or ``"drop"``. Elo always keeps ties.
        anchor: ``(model, value)`` pins that model's rating (its interval is then a point).
        style_control: Also fit with answer-length difference as a covariate (needs len_a,
            len_b) and add rating_sc, ci_low_sc, ci_high_sc, rank_sc.
        k: Elo update step (``method="elo"``).
        elo: The rating scale; its ``initial`` is the mean rating (Bradley-Terry) or the
            starting rating (Elo).
        reg: Bradley-Terry prior precision (:mod:`workbench.ratings.bt`).

    Returns:
        One row per model, best first: model, rating, ci_low, ci_high, battles, wins,
        losses, ties, rank; rank = 1 + the number of models whose ci_low is above this
        model's ci_high. Without an interval, ci_low and ci_high are null and the rank
        comes from the ratings alone.

    Raises:
        RatingsError: An option out of range, or an anchor model without votes.
        VotesFileError: Malformed votes (or, for style control, no answer lengths).
    """
    check_method(method)
    if ci not in ("bootstrap", "sandwich"):
        raise RatingsError(f"ci must be 'bootstrap' or 'sandwich', not {ci!r}")
    if ties not in ("keep", "drop"):
        raise RatingsError(f"ties must be 'keep' or 'drop', not {ties!r}")
    if bootstrap < 0:
        raise RatingsError("bootstrap must be >= 0")
    rng = as_rng(seed)
    coded = code_votes(votes)
    models = coded.models
    if anchor is not None:
        anchor_index(models, anchor)
    n_boot = bootstrap if ci == "bootstrap" else 0
    has_ci = ci == "sandwich" or n_boot > 0

    if method == "elo":
        if ci == "sandwich":
            raise RatingsError("the sandwich interval exists for Bradley-Terry only (method='bt')")
        if style_control:
            raise RatingsError("style control needs method='bt'")
        if n_boot > 0:
            samples = shift_to_anchor(
                elo_bootstrap(coded, n_boot, rng, k=k, elo=elo), models, anchor
            )
            rating = np.median(samples, axis=0)
            low, high = _intervals(rating, samples, None)
        else:
            rating = shift_to_anchor(elo_in_order(coded, k=k, elo=elo), models, anchor)
            low, high = rating.copy(), rating.copy()
        columns = {"rating": rating, "ci_low": low, "ci_high": high}
    else:
        fit_kw: dict[str, Any] = {
            "bootstrap": n_boot,
            "rng": rng,
            "sandwich": ci == "sandwich",
            "anchor": anchor,
            "elo": elo,
            "reg": reg,
        }
        fit = fit_cells(pair_cells(coded, ties), models, **fit_kw)
        low, high = _intervals(fit.rating, fit.samples, fit.sd)
        columns = {"rating": fit.rating, "ci_low": low, "ci_high": high}
        if style_control:
            cells, _ = style_cells(coded, length_feature(votes), ties)
            sfit = fit_cells(cells, models, **fit_kw)
            slow, shigh = _intervals(sfit.rating, sfit.samples, sfit.sd)
            columns |= {
                "rating_sc": sfit.rating,
                "ci_low_sc": slow,
                "ci_high_sc": shigh,
                "rank_sc": ranks_from_intervals(slow, shigh),
            }
    rank = ranks_from_intervals(columns["ci_low"], columns["ci_high"])
    frame = pl.DataFrame({"model": list(models), **columns, "rank": rank})
    if not has_ci:
        frame = frame.with_columns(
            pl.lit(None, pl.Float64).alias("ci_low"), pl.lit(None, pl.Float64).alias("ci_high")
        )
        if "ci_low_sc" in frame.columns:
            frame = frame.with_columns(
                pl.lit(None, pl.Float64).alias("ci_low_sc"),
                pl.lit(None, pl.Float64).alias("ci_high_sc"),
            )
    order = ["model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties", "rank"]
    order += [c for c in ("rating_sc", "ci_low_sc", "ci_high_sc", "rank_sc") if c in frame.columns]
    ranks = [pl.col(c).cast(pl.Int64) for c in ("rank", "rank_sc") if c in order]
    return (
        frame.join(records(coded), on="model")
        .select(order)
        .with_columns(ranks)
        .sort(["rating", "model"], descending=[True, False])
    )


def leaderboard_by(votes: pl.DataFrame, by: str, **kw: Any) -> pl.DataFrame:
    """One leaderboard per value of column ``by`` (e.g. category, language), stacked.

    Args:
        votes: Votes frame with a column ``by``.
        by: Grouping column; null values form the group ``"(missing)"``.
        **kw: Passed to :func:`leaderboard`.

    Returns:
        The leaderboard columns with ``by`` in front, groups ordered by size (largest
        first), each group's models best first.
    """
    votes = validate_votes(votes)
    if by not in votes.columns:
        raise VotesFileError(f"cannot group by {by!r}: no such column")
    keyed = votes.with_columns(pl.col(by).cast(pl.String).fill_null("(missing)").alias(by))
    sizes = keyed.group_by(by).len().sort(["len", by], descending=[True, False])
    frames = []
    for value in sizes[by].to_list():
        part = keyed.filter(pl.col(by) == value)
        board = leaderboard(part, **kw)
        frames.append(board.select(pl.lit(value).alias(by), pl.all()))
    return pl.concat(frames, how="vertical")
