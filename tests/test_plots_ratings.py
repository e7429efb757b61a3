"""Ratings figures draw the frames the ratings make."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ratings.helpers import simulate
from workbench import ratings as R
from workbench.plots import ratings as plots


def test_figures_draw_the_frames() -> None:
    frame = simulate(np.array([1000.0, 1100.0, 900.0]), 600, np.random.default_rng(18))
    board = R.leaderboard(frame, bootstrap=50)
    fig = plots.ratings_figure(board)
    trace = fig.data[0]
    assert list(trace.x) == board["model"].to_list()
    assert trace.error_y.array[0] == pytest.approx(board["ci_high"][0] - board["rating"][0])
    heat = plots.win_rate_heatmap(R.win_matrix(frame))
    assert len(heat.data[0].z) == 3 and heat.data[0].z[0][0] is None
    hist = plots.rating_history_figure(R.rating_history(frame, points=4))
    assert len(hist.data) == 3 and list(hist.data[0].x) == [150, 300, 450, 600]
