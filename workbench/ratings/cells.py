"""Votes as integer codes and as cell counts, the sufficient statistics of the fits.

Model names are coded in sorted order, so codes do not depend on row order. Because 1M
votes among 20 models collapse to at most 190 pairs x 3 outcomes, Bradley-Terry fits and
their bootstrap run on those cell counts (:class:`Cells`), never on rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from workbench.ratings.errors import VotesFileError
from workbench.ratings.votes import prepare
from workbench.schemas import VOTE_WINNERS as WINNERS

Ties = Literal["keep", "drop"]
"""``"keep"``: a tie is half a win for each side; ``"drop"``: ties are left out."""


def as_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """A Generator: ``seed`` itself when it is one, else a new one seeded with it."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


@dataclass(frozen=True)
class Coded:
    """Votes as integer arrays."""

    models: tuple[str, ...]
    """Model names; code i is models[i] (sorted, so codes do not depend on row order)."""
    a: np.ndarray
    """Code of model_a, per vote."""
    b: np.ndarray
    """Code of model_b, per vote."""
    w: np.ndarray
    """Winner code per vote: 0 model_a, 1 model_b, 2 tie, 3 tie (bothbad)."""
    combos: np.ndarray
    """Distinct (a, b, w) rows with their vote counts, shape (k, 4)."""


@dataclass(frozen=True)
class Cells:
    """Sufficient statistics: each cell is a pair (i < j) and covariate value."""

    n_models: int
    """Number of models coded."""
    i: np.ndarray
    """First model of the cell's pair."""
    j: np.ndarray
    """Second model (i < j)."""
    x: np.ndarray
    """Covariates, shape (cells, m); m = 0 without style control."""
    counts: np.ndarray
    """Shape (cells, 3): battles won by i, won by j, tied."""


def code_votes(votes: pl.DataFrame) -> Coded:
    """Validates a votes frame and codes it (raises :class:`VotesFileError` if malformed)."""
    votes, models = prepare(votes, None)
    enum = pl.Enum(models)
    codes = votes.select(
        pl.col("model_a").cast(enum).to_physical().cast(pl.Int64).alias("a"),
        pl.col("model_b").cast(enum).to_physical().cast(pl.Int64).alias("b"),
        pl.col("winner").cast(pl.Enum(list(WINNERS))).to_physical().cast(pl.Int64).alias("w"),
    )
    a, b, w = codes["a"].to_numpy(), codes["b"].to_numpy(), codes["w"].to_numpy()
    n = len(models)
    key = (a * n + b) * 4 + w
    if n * n * 4 <= 16_000_000:
        cnt = np.bincount(key, minlength=n * n * 4)
        keys = np.flatnonzero(cnt)
        counts = cnt[keys]
    else:
        keys, counts = np.unique(key, return_counts=True)
    combos = np.column_stack([keys // 4 // n, keys // 4 % n, keys % 4, counts])
    return Coded(models, a, b, w, combos)


def canonical(
    a: np.ndarray, b: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, outcome, swapped): outcome 0 = lo won, 1 = hi won, 2 = tie."""
    swapped = a > b
    lo = np.where(swapped, b, a)
    hi = np.where(swapped, a, b)
    lo_won = (w == 0) ^ swapped
    out = np.where(w >= 2, 2, np.where(lo_won, 0, 1)).astype(np.int64)
    return lo, hi, out, swapped


def pair_cells(coded: Coded, ties: Ties) -> Cells:
    """Cells per pair, from the distinct (a, b, winner) combinations."""
    n = len(coded.models)
    a, b, w, count = coded.combos.T
    lo, hi, out, _ = canonical(a, b, w)
    if ties == "drop":
        keep = out != 2
        lo, hi, out, count = lo[keep], hi[keep], out[keep], count[keep]
    key = lo * n + hi
    pairs, inv = np.unique(key, return_inverse=True)
    counts = np.zeros((len(pairs), 3))
    np.add.at(counts, (inv, out), count)
    return Cells(n_models=n, i=pairs // n, j=pairs % n, x=np.zeros((len(pairs), 0)), counts=counts)


def length_feature(votes: pl.DataFrame) -> np.ndarray:
    """(len_a - len_b) / (len_a + len_b) per vote, as LMArena's style control uses it."""
    for col in ("len_a", "len_b"):
        if col not in votes.columns:
            raise VotesFileError(
                f"style control needs columns len_a and len_b (answer lengths); "
                f"column {col} is missing"
            )
        dtype = votes.schema[col]
        if not dtype.is_numeric():
            raise VotesFileError(f"column {col}: expected numbers, found {dtype}")
        bad = votes.select((pl.col(col).is_null() | (pl.col(col) < 0)).arg_true().first()).item()
        if bad is not None:
            raise VotesFileError(
                f"row {bad + 1}, column {col}: answer length must be a number >= 0, "
                f"found {votes[col][bad]!r}"
            )
    la = votes["len_a"].cast(pl.Float64).to_numpy()
    lb = votes["len_b"].cast(pl.Float64).to_numpy()
    total = la + lb
    return np.divide(la - lb, total, out=np.zeros_like(total), where=total > 0)


def style_cells(coded: Coded, feature: np.ndarray, ties: Ties) -> tuple[Cells, float]:
    """Cells keyed by (pair, length feature); returns them and the feature's scale (std)."""
    n = len(coded.models)
    lo, hi, out, swapped = canonical(coded.a, coded.b, coded.w)
    x = np.where(swapped, -feature, feature)
    if ties == "drop":
        keep = out != 2
        lo, hi, out, x = lo[keep], hi[keep], out[keep], x[keep]
    sd = float(np.std(feature)) or 1.0
    xs = x / sd
    frame = pl.DataFrame({"key": lo * n + hi, "x": xs, "out": out})
    cells = (
        frame.group_by("key", "x")
        .agg(
            (pl.col("out") == 0).sum().alias("c0"),
            (pl.col("out") == 1).sum().alias("c1"),
            (pl.col("out") == 2).sum().alias("c2"),
        )
        .sort("key", "x")
    )
    key = cells["key"].to_numpy()
    counts = np.column_stack(
        [cells["c0"].to_numpy(), cells["c1"].to_numpy(), cells["c2"].to_numpy()]
    ).astype(np.float64)
    return (
        Cells(n, key // n, key % n, cells["x"].to_numpy().reshape(-1, 1), counts),
        sd,
    )


def records(coded: Coded) -> pl.DataFrame:
    """Per-model battles, wins, losses, ties (all votes, whatever ``ties`` says)."""
    n = len(coded.models)
    a, b, w, count = coded.combos.T
    as_a = np.zeros((n, 4))
    as_b = np.zeros((n, 4))
    np.add.at(as_a, (a, w), count)
    np.add.at(as_b, (b, w), count)
    wins = as_a[:, 0] + as_b[:, 1]
    losses = as_a[:, 1] + as_b[:, 0]
    ties = as_a[:, 2:].sum(1) + as_b[:, 2:].sum(1)
    return pl.DataFrame(
        {
            "model": list(coded.models),
            "battles": (wins + losses + ties).astype(np.int64),
            "wins": wins.astype(np.int64),
            "losses": losses.astype(np.int64),
            "ties": ties.astype(np.int64),
        }
    )
