"""Win rates: observed from votes, predicted from ratings."""

from __future__ import annotations

import math

import polars as pl
import pytest

from workbench import ratings as R

from .helpers import votes


def test_win_matrix_by_hand() -> None:
    frame = votes(
        [
            ("A", "B", "model_a"),
            ("B", "A", "model_b"),
            ("B", "A", "model_a"),
            ("A", "B", "tie"),
            ("A", "C", "model_a"),
        ]
    )
    m = R.win_matrix(frame)
    assert m.columns == ["model", *m["model"].to_list()]
    cell = {(r["model"], c): r[c] for r in m.to_dicts() for c in m["model"]}
    assert cell[("A", "B")] == pytest.approx(2 / 3)
    assert cell[("B", "A")] == pytest.approx(1 / 3)
    assert cell[("A", "C")] == 1.0 and cell[("C", "A")] == 0.0
    assert cell[("A", "A")] is None and cell[("B", "C")] is None
    assert m["model"].to_list() == ["A", "B", "C"]


def test_predicted_win_matrix() -> None:
    ratings = pl.DataFrame({"model": ["hi", "lo"], "rating": [1400.0, 1000.0]})
    m = R.predicted_win_matrix(ratings)
    assert m.filter(pl.col("model") == "hi")["lo"].item() == pytest.approx(10 / 11)
    assert m.filter(pl.col("model") == "lo")["hi"].item() == pytest.approx(1 / 11)
    assert m["hi"][0] is None


def test_predicted_win_matrix_on_another_scale() -> None:
    ratings = pl.DataFrame({"model": ["hi", "lo"], "rating": [1.0, 0.0]})
    m = R.predicted_win_matrix(ratings, elo=R.EloScale(scale=1.0, base=math.e, initial=0.0))
    assert m.filter(pl.col("model") == "hi")["lo"].item() == pytest.approx(1 / (1 + math.e**-1))


def test_win_matrix_order_names_only_known_models() -> None:
    frame = votes([("A", "B", "model_a")])
    assert R.win_matrix(frame, order=["B", "A"])["model"].to_list() == ["B", "A"]
    with pytest.raises(R.RatingsError, match="unknown model in order: 'C'"):
        R.win_matrix(frame, order=["A", "C"])
