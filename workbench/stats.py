"""Small statistics shared by the speed figures: a median with a distribution-free
confidence interval."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MedianInterval", "median_interval"]


@dataclass(frozen=True)
class MedianInterval:
    """A sample's median and an interval that holds the true median with the asked
    confidence, for any distribution of the values."""

    median: float
    """The sample median (nan for no values)."""
    low: float
    """Lower end of the interval (nan when there are too few values for one)."""
    high: float
    """Upper end of the interval (nan when there are too few values for one)."""
    n: int
    """Number of values."""


def median_interval(values: Sequence[float], confidence: float = 0.95) -> MedianInterval:
    """The median of ``values`` with a distribution-free ``confidence`` interval.

    The interval runs from the ``k``-th smallest to the ``k``-th largest value, with the
    largest ``k`` such that P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2 (the sign
    test's interval). At 95% it needs at least 6 values; with fewer, low and high are nan.
    """
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        return MedianInterval(math.nan, math.nan, math.nan, 0)
    mid = n // 2
    median = xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2
    alpha = (1 - confidence) / 2
    k, tail = 0, 0.0
    while True:
        tail += math.comb(n, k) / 2**n  # P(X <= k)
        if tail > alpha:
            break
        k += 1
    if k == 0:
        return MedianInterval(median, math.nan, math.nan, n)
    return MedianInterval(median, xs[k - 1], xs[n - k], n)
