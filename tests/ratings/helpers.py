"""Votes for the ratings tests: by hand, or drawn from a Bradley-Terry model."""

from __future__ import annotations

import numpy as np
import polars as pl

from workbench.schemas import VOTE_WINNERS

WINNERS = np.array(VOTE_WINNERS)


def votes(rows: list[tuple[str, str, str]], **extra: list) -> pl.DataFrame:
    """A votes frame from (model_a, model_b, winner) rows."""
    a, b, w = zip(*rows, strict=True)
    return pl.DataFrame({"model_a": a, "model_b": b, "winner": w, **extra})


def rating_of(frame: pl.DataFrame, model: str, col: str = "rating") -> float:
    """One model's value in a per-model frame."""
    return frame.filter(pl.col("model") == model)[col].item()


def simulate(
    strengths: np.ndarray, n_votes: int, rng: np.random.Generator, tie_rate: float = 0.1
) -> pl.DataFrame:
    """Votes drawn from a Bradley-Terry model on the Elo scale, ties at random."""
    m = len(strengths)
    a = rng.integers(0, m, n_votes)
    b = (a + rng.integers(1, m, n_votes)) % m
    p = 1.0 / (1.0 + 10.0 ** ((strengths[b] - strengths[a]) / 400.0))
    w = np.where(rng.random(n_votes) < p, 0, 1)
    tie = rng.random(n_votes) < tie_rate
    w = np.where(tie, rng.integers(2, 4, n_votes), w)
    names = np.array([f"model-{i:02d}" for i in range(m)])
    return pl.DataFrame({"model_a": names[a], "model_b": names[b], "winner": WINNERS[w]})
