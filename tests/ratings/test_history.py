"""Ratings over time: checkpoints end at the full fit; models appear when first seen."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench import ratings as R

from .helpers import rating_of, simulate, votes


def test_rating_history_ends_at_the_full_fit() -> None:
    frame = simulate(np.array([1000.0, 1100.0, 900.0, 1050.0]), 2000, np.random.default_rng(15))
    frame = frame.with_columns(tstamp=pl.Series(np.arange(frame.height, dtype=np.float64) + 1e9))
    hist = R.rating_history(frame, points=5)
    assert hist.columns == ["votes", "time", "model", "rating"]
    assert hist["votes"].unique().sort().to_list() == [400, 800, 1200, 1600, 2000]
    last = hist.filter(pl.col("votes") == 2000)
    full = R.fit_bt(frame)
    for m in full["model"]:
        assert rating_of(last, m) == pytest.approx(rating_of(full, m), abs=1e-6)
    assert last["time"][0] == pytest.approx(1e9 + 1999)
    elo_hist = R.rating_history(frame, method="elo", points=4)
    final = elo_hist.filter(pl.col("votes") == 2000)
    online = R.online_elo(frame)
    for m in online["model"]:
        assert rating_of(final, m) == pytest.approx(rating_of(online, m))


def test_history_lists_a_model_only_after_its_first_battle() -> None:
    rows = [("A", "B", "model_a")] * 10 + [("C", "A", "model_b")] * 10
    hist = R.rating_history(votes(rows), points=4)
    first = hist.group_by("model").agg(pl.col("votes").min()).sort("model")
    assert first["votes"].to_list() == [5, 5, 15]


def test_anchored_history_keeps_the_anchor_fixed() -> None:
    frame = simulate(np.array([1000.0, 1100.0, 900.0]), 900, np.random.default_rng(20))
    for method in ("bt", "elo"):
        hist = R.rating_history(frame, method=method, points=3, anchor=("model-02", 900.0))
        pinned = hist.filter(pl.col("model") == "model-02")["rating"].to_list()
        assert pinned == pytest.approx([900.0] * 3)
    with pytest.raises(R.RatingsError, match="method must be"):
        R.rating_history(frame, method="glicko")  # type: ignore[arg-type]
