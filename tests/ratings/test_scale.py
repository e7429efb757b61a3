"""The Elo scale: win probabilities, and values it refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench import ratings as R


def test_default_scale_is_400_points_for_odds_of_ten() -> None:
    scale = R.ELO_SCALE
    p = scale.win_probability(np.array([1400.0]), np.array([1000.0]))
    assert p[0] == pytest.approx(10 / 11)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"scale": 0.0}, "scale must be a positive number"),
        ({"scale": math.inf}, "scale must be a positive number"),
        ({"base": 1.0}, "base must be a number above 1"),
        ({"initial": math.nan}, "initial rating must be finite"),
    ],
)
def test_bad_scale_is_refused(kw: dict, message: str) -> None:
    with pytest.raises(R.RatingsError, match=message):
        R.EloScale(**kw)
