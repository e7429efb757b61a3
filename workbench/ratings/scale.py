"""The Elo scale ratings are reported on, and anchoring.

P(A beats B) = 1 / (1 + base ** ((R_B - R_A) / scale)). Fits work in natural log-odds
units ``theta = ln(base) / scale * (R - initial)``, so P(A beats B) =
sigmoid(theta_A - theta_B); :meth:`EloScale.ratings` turns them back into ratings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.ratings.errors import RatingsError

Anchor = tuple[str, float]
"""``(model, value)``: pins that model's rating at ``value``."""


@dataclass(frozen=True)
class EloScale:
    """How ratings map to win probabilities, and where they are centred."""

    scale: float = 400.0
    """Rating points for odds of ``base`` to 1."""
    base: float = 10.0
    """Odds that a difference of ``scale`` points means."""
    initial: float = 1000.0
    """Mean rating (Bradley-Terry, without an anchor) or everyone's start (online Elo)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise RatingsError(f"Elo scale must be a positive number, not {self.scale!r}")
        if not (math.isfinite(self.base) and self.base > 1):
            raise RatingsError(f"Elo base must be a number above 1, not {self.base!r}")
        if not math.isfinite(self.initial):
            raise RatingsError(f"initial rating must be finite, not {self.initial!r}")

    @property
    def alpha(self) -> float:
        """Natural log-odds per rating point: ln(base) / scale."""
        return math.log(self.base) / self.scale

    def win_probability(self, r_a: np.ndarray, r_b: np.ndarray) -> np.ndarray:
        """P(A beats B) for ratings ``r_a`` and ``r_b`` (broadcast)."""
        return 1.0 / (1.0 + self.base ** ((r_b - r_a) / self.scale))

    def ratings(
        self, theta: np.ndarray, models: Sequence[str], anchor: Anchor | None
    ) -> np.ndarray:
        """Natural log-strengths (..., models) to ratings: centred on ``initial``, or with
        the anchor model at its value."""
        if anchor is None:
            return self.initial + (theta - theta.mean(axis=-1, keepdims=True)) / self.alpha
        k = anchor_index(models, anchor)
        return anchor[1] + (theta - theta[..., k : k + 1]) / self.alpha


ELO_SCALE = EloScale()
"""The usual scale: 400 points for odds of 10 to 1, mean (or start) 1000."""


def anchor_index(models: Sequence[str], anchor: Anchor) -> int:
    """Position of the anchor model among ``models``.

    Raises:
        RatingsError: The anchor model has no votes.
    """
    try:
        return list(models).index(anchor[0])
    except ValueError:
        raise RatingsError(f"anchor model {anchor[0]!r} has no votes") from None


def shift_to_anchor(
    ratings: np.ndarray, models: Sequence[str], anchor: Anchor | None
) -> np.ndarray:
    """Ratings (..., models) moved so that the anchor model sits at its value."""
    if anchor is None:
        return ratings
    k = anchor_index(models, anchor)
    return anchor[1] + ratings - ratings[..., k : k + 1]
