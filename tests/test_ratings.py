"""Ratings engine: hand-computable cases, an independent cross-check (choix), calibration."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench import ratings as R

WINNERS = np.array(R.WINNERS)


def votes(rows: list[tuple[str, str, str]], **extra: list) -> pl.DataFrame:
    a, b, w = zip(*rows, strict=True)
    return pl.DataFrame({"model_a": a, "model_b": b, "winner": w, **extra})


def rating_of(frame: pl.DataFrame, model: str, col: str = "rating") -> float:
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


# ---------------------------------------------------------------- online Elo, by hand


def test_one_win_moves_elo_by_half_k() -> None:
    elo = R.online_elo(votes([("x", "y", "model_a")]))
    assert rating_of(elo, "x") == pytest.approx(1002.0)
    assert rating_of(elo, "y") == pytest.approx(998.0)
    elo32 = R.online_elo(votes([("x", "y", "model_b")]), k=32)
    assert rating_of(elo32, "y") == pytest.approx(1016.0)


def test_second_vote_uses_updated_expectation() -> None:
    elo = R.online_elo(votes([("x", "y", "model_a"), ("x", "y", "model_b")]))
    expected_y = 1.0 / (1.0 + 10.0 ** ((1002.0 - 998.0) / 400.0))
    assert rating_of(elo, "y") == pytest.approx(998.0 + 4.0 * (1.0 - expected_y))
    assert rating_of(elo, "x") + rating_of(elo, "y") == pytest.approx(2000.0)


def test_elo_tie_between_equals_changes_nothing() -> None:
    elo = R.online_elo(votes([("x", "y", "tie"), ("y", "x", "tie (bothbad)")]))
    assert elo["rating"].to_list() == pytest.approx([1000.0, 1000.0])


def test_elo_matches_fastchat_reference_loop() -> None:
    """An independent transcription of FastChat's compute_online_elo over dicts."""
    frame = simulate(np.array([1000.0, 1100.0, 900.0, 1050.0]), 2000, np.random.default_rng(3))
    rating: dict[str, float] = {}
    for model_a, model_b, winner in frame.iter_rows():
        ra = rating.setdefault(model_a, 1000.0)
        rb = rating.setdefault(model_b, 1000.0)
        ea = 1 / (1 + 10 ** ((rb - ra) / 400))
        eb = 1 / (1 + 10 ** ((ra - rb) / 400))
        sa = {"model_a": 1.0, "model_b": 0.0}.get(winner, 0.5)
        rating[model_a] += 4 * (sa - ea)
        rating[model_b] += 4 * (1 - sa - eb)
    ours = R.online_elo(frame)
    for model, value in rating.items():
        assert rating_of(ours, model) == pytest.approx(value, abs=1e-9)


def test_batched_elo_replays_the_sequential_loop_exactly() -> None:
    frame = simulate(np.array([1000.0, 1200.0, 900.0]), 500, np.random.default_rng(4))
    coded = R._code_votes(frame)
    score = R._elo_scores(coded)
    seq = R._elo_sequential(coded.a, coded.b, score, [1000.0] * 3, k=4, scale=400, base=10)
    total = len(coded.a)
    batched = R._elo_batched(
        lambda t0, t1: np.repeat(np.arange(t0, t1)[:, None], 2, axis=1),
        coded,
        score,
        2,
        k=4,
        scale=400,
        base=10,
        initial=1000,
    )
    assert total == 500
    np.testing.assert_allclose(batched, [seq, seq], atol=1e-9)


def test_elo_shuffle_median_is_order_free() -> None:
    frame = simulate(np.array([1000.0, 1150.0, 850.0]), 600, np.random.default_rng(5))
    a = R.online_elo(frame, shuffles=30, seed=1)
    b = R.online_elo(frame.reverse(), shuffles=30, seed=1)
    assert a["rating"].to_list() != pytest.approx(b["rating"].to_list(), abs=1e-6)
    medians = dict(zip(a["model"], a["rating_median"], strict=True))
    assert medians["model-01"] > medians["model-00"] > medians["model-02"]


# ---------------------------------------------------------------- Bradley-Terry, by hand


def test_two_models_closed_form() -> None:
    # A beat B 3 times out of 4: the MLE difference is 400 * log10(3).
    frame = votes([("A", "B", "model_a")] * 3 + [("A", "B", "model_b")])
    exact = R.fit_bt(frame, reg=1e-9)
    diff = rating_of(exact, "A") - rating_of(exact, "B")
    assert diff == pytest.approx(400 * math.log10(3), abs=1e-3)
    assert exact["rating"].mean() == pytest.approx(1000.0)
    # the default prior pulls four battles' worth of evidence in by about a point
    default = R.fit_bt(frame)
    assert 0 < 400 * math.log10(3) - (rating_of(default, "A") - rating_of(default, "B")) < 2.0


def test_ties_count_half_a_win() -> None:
    # 2 wins + 2 ties out of 4 = 3 points of 4, the same as 3 wins and a loss.
    with_ties = votes([("A", "B", "model_a")] * 2 + [("A", "B", "tie")] * 2)
    plain = votes([("A", "B", "model_a")] * 3 + [("B", "A", "model_a")])
    assert rating_of(R.fit_bt(with_ties), "A") == pytest.approx(rating_of(R.fit_bt(plain), "A"))
    dropped = R.fit_bt(with_ties, ties="drop")
    assert rating_of(dropped, "A") > rating_of(R.fit_bt(with_ties), "A")


def test_symmetric_records_give_equal_ratings() -> None:
    cycle = []
    for x, y in (("A", "B"), ("B", "C"), ("C", "A")):
        cycle += [(x, y, "model_a")] * 5 + [(y, x, "model_a")] * 2 + [(x, y, "tie")]
    fit = R.fit_bt(votes(cycle))
    assert fit["rating"].to_list() == pytest.approx([1000.0] * 3, abs=1e-9)
    mirror = votes([("A", "B", "model_a")] * 4 + [("A", "B", "model_b")] * 4)
    assert R.fit_bt(mirror)["rating"].to_list() == pytest.approx([1000.0, 1000.0], abs=1e-9)


def test_renaming_and_reordering_change_nothing() -> None:
    frame = simulate(
        np.array([1000.0, 1080.0, 930.0, 1010.0, 1200.0]), 3000, np.random.default_rng(7)
    )
    fit = R.fit_bt(frame)
    # names whose alphabetical order is reversed, rows in reverse order, seats swapped
    rename = {f"model-{i:02d}": f"{'zyxwv'[i]}-renamed" for i in range(5)}
    swapped = frame.select(
        pl.col("model_b").replace_strict(rename).alias("model_a"),
        pl.col("model_a").replace_strict(rename).alias("model_b"),
        pl.col("winner").replace({"model_a": "model_b", "model_b": "model_a"}),
    ).reverse()
    refit = R.fit_bt(swapped)
    for old, new in rename.items():
        assert rating_of(refit, new) == pytest.approx(rating_of(fit, old), abs=1e-8)
    board = R.leaderboard(frame, bootstrap=50, seed=1)
    assert board["model"].to_list() == [
        {v: k for k, v in rename.items()}[m] for m in R.leaderboard(swapped, bootstrap=50)["model"]
    ]


def test_model_with_only_wins_gets_a_finite_rating() -> None:
    rows = [("champ", "B", "model_a")] * 8 + [("C", "champ", "model_b")] * 5
    rows += [("B", "C", "model_a")] * 6 + [("B", "C", "model_b")] * 4
    board = R.leaderboard(votes(rows), bootstrap=200)
    for col in ("rating", "ci_low", "ci_high"):
        assert np.isfinite(board[col].to_numpy()).all()
    assert board["model"][0] == "champ"
    # a model that never won is finite too, and last
    assert np.isfinite(R.fit_bt(votes([("A", "B", "model_a")]))["rating"].to_numpy()).all()
    sandwich = R.leaderboard(votes(rows), ci="sandwich")
    assert np.isfinite(sandwich["ci_high"].to_numpy()).all()


def test_models_linked_only_by_ties_and_disconnected_groups_stay_finite() -> None:
    rows = [("A", "B", "tie")] * 4 + [("B", "C", "model_a")] * 3 + [("C", "B", "model_a")]
    rows += [("D", "E", "model_a")] * 2  # a second, disconnected group
    fit = R.fit_bt(votes(rows))
    assert np.isfinite(fit["rating"].to_numpy()).all()
    # four ties tie A to B (the weak prior keeps A a hair nearer the mean)
    assert 1000.0 < rating_of(fit, "A") <= rating_of(fit, "B")
    assert rating_of(fit, "B") - rating_of(fit, "A") < 2.0
    assert fit["rating"].mean() == pytest.approx(1000.0)
    dropped = R.fit_bt(votes(rows), ties="drop")  # A then has no decisive battle at all
    assert np.isfinite(dropped["rating"].to_numpy()).all()
    assert rating_of(dropped, "A") == pytest.approx(1000.0, abs=1e-6)


def test_anchor_pins_one_model_and_keeps_differences() -> None:
    frame = simulate(np.array([1000.0, 1100.0, 950.0]), 1500, np.random.default_rng(8))
    free = R.fit_bt(frame)
    pinned = R.fit_bt(frame, anchor=("model-00", 1200.0))
    assert rating_of(pinned, "model-00") == pytest.approx(1200.0)
    shift = rating_of(pinned, "model-01") - rating_of(free, "model-01")
    assert rating_of(pinned, "model-02") - rating_of(free, "model-02") == pytest.approx(shift)
    board = R.leaderboard(frame, anchor=("model-00", 1200.0), bootstrap=100)
    row = board.filter(pl.col("model") == "model-00")
    assert row["ci_low"].item() == pytest.approx(1200.0)
    assert row["ci_high"].item() == pytest.approx(1200.0)
    with pytest.raises(ValueError, match="nobody"):
        R.fit_bt(frame, anchor=("nobody", 1000.0))


def test_scale_and_base_are_honoured() -> None:
    frame = votes([("A", "B", "model_a")] * 3 + [("A", "B", "model_b")])
    fit = R.fit_bt(frame, scale=1.0, base=math.e, initial=0.0, reg=1e-9)
    assert rating_of(fit, "A") - rating_of(fit, "B") == pytest.approx(math.log(3), abs=1e-6)


# ---------------------------------------------------------------- against choix


def test_bradley_terry_agrees_with_choix() -> None:
    choix = pytest.importorskip("choix")
    rng = np.random.default_rng(11)
    strengths = rng.normal(1000, 150, 12)
    frame = simulate(strengths, 30_000, rng, tie_rate=0.15)
    for ties in ("keep", "drop"):
        ours = R.fit_bt(frame, ties=ties)
        models = sorted(ours["model"].to_list())
        idx = {m: i for i, m in enumerate(models)}
        comp = np.zeros((len(models), len(models)))
        for a, b, w in frame.iter_rows():
            if w == "model_a":
                comp[idx[a], idx[b]] += 1
            elif w == "model_b":
                comp[idx[b], idx[a]] += 1
            elif ties == "keep":
                comp[idx[a], idx[b]] += 0.5
                comp[idx[b], idx[a]] += 0.5
        params = choix.ilsr_pairwise_dense(comp, tol=1e-12, max_iter=10_000)
        theirs = 1000 + (params - params.mean()) * 400 / math.log(10)
        for m in models:
            assert rating_of(ours, m) == pytest.approx(theirs[idx[m]], abs=0.5)
        assert max(abs(rating_of(ours, m) - theirs[idx[m]]) for m in models) < 0.05


# ---------------------------------------------------------------- intervals and ranks


def test_rank_counts_models_clearly_above() -> None:
    low = np.array([1100.0, 1050.0, 990.0, 900.0])
    high = np.array([1200.0, 1120.0, 1060.0, 980.0])
    assert R.ranks_from_intervals(low, high).tolist() == [1, 1, 2, 4]


def test_leaderboard_columns_and_ranks() -> None:
    frame = simulate(np.array([1000.0, 1300.0, 1000.0, 700.0]), 4000, np.random.default_rng(2))
    board = R.leaderboard(frame, bootstrap=200, seed=3)
    assert board.columns == [
        "model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties", "rank",
    ]  # fmt: skip
    assert board["model"].to_list()[0] == "model-01"
    assert board["model"].to_list()[-1] == "model-03"
    assert board["rank"].to_list()[0] == 1 and board["rank"].to_list()[-1] == 4
    assert (board["ci_low"] <= board["rating"]).all() and (
        board["rating"] <= board["ci_high"]
    ).all()
    assert board["battles"].sum() == 2 * frame.height
    assert (board["wins"] + board["losses"] + board["ties"] == board["battles"]).all()
    again = R.leaderboard(frame, bootstrap=200, seed=3)
    assert again.equals(board)  # seeded
    other = R.leaderboard(frame, bootstrap=200, seed=4)
    assert not other["ci_low"].equals(board["ci_low"])
    no_ci = R.leaderboard(frame, bootstrap=0)
    assert no_ci["ci_low"].null_count() == 4 and no_ci["rank"].to_list() == [1, 2, 3, 4]


def test_sandwich_and_bootstrap_widths_agree() -> None:
    frame = simulate(
        np.array([1000.0, 1100.0, 950.0, 1040.0, 880.0]), 8000, np.random.default_rng(9)
    )
    boot = R.leaderboard(frame, bootstrap=1000, seed=0).sort("model")
    sand = R.leaderboard(frame, ci="sandwich").sort("model")
    wb = (boot["ci_high"] - boot["ci_low"]).to_numpy()
    ws = (sand["ci_high"] - sand["ci_low"]).to_numpy()
    np.testing.assert_allclose(ws, wb, rtol=0.15)
    assert sand["rating"].to_list() == pytest.approx(boot["rating"].to_list())


def test_bootstrap_equals_row_resampling_in_distribution() -> None:
    """Multinomial cell resampling has the spread of literal row resampling."""
    frame = simulate(np.array([1000.0, 1100.0, 900.0]), 1500, np.random.default_rng(12))
    fast = R.bootstrap_bt(frame, rounds=600, seed=0).samples
    assert fast is not None
    rng = np.random.default_rng(1)
    rows = [
        R.fit_bt(frame[rng.integers(0, frame.height, frame.height)]).sort("model")["rating"]
        for _ in range(150)
    ]
    slow = np.array(rows)
    np.testing.assert_allclose(fast.std(axis=0), slow.std(axis=0), rtol=0.2)


def test_bootstrap_intervals_are_calibrated() -> None:
    """Over 200 simulated studies, 95% bootstrap intervals for the rating differences
    between every pair of models cover the true differences 92-98% of the time."""
    rng = np.random.default_rng(2024)
    covered = total = 0
    for study in range(200):
        strengths = rng.normal(1000, 80, 6)
        frame = simulate(strengths, 1500, rng, tie_rate=0.0)
        fit = R.bootstrap_bt(frame, rounds=400, seed=study)
        assert fit.samples is not None
        order = [int(m.split("-")[1]) for m in fit.models]
        true = strengths[order]
        i, j = np.triu_indices(len(true), 1)
        diffs = fit.samples[:, i] - fit.samples[:, j]
        low, high = np.percentile(diffs, [2.5, 97.5], axis=0)
        truth = true[i] - true[j]
        covered += int(((low <= truth) & (truth <= high)).sum())
        total += len(truth)
    coverage = covered / total
    assert 0.92 <= coverage <= 0.98, coverage


# ---------------------------------------------------------------- win rates


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


# ---------------------------------------------------------------- groups, style, history


def test_leaderboard_by_category() -> None:
    rng = np.random.default_rng(13)
    code = simulate(np.array([1200.0, 1000.0, 800.0]), 1500, rng).with_columns(
        category=pl.lit("code")
    )
    chat = simulate(np.array([800.0, 1000.0, 1200.0]), 1000, rng).with_columns(
        category=pl.lit("chat")
    )
    board = R.leaderboard_by(pl.concat([code, chat]), "category", bootstrap=100)
    assert board.columns[0] == "category"
    assert board["category"].unique(maintain_order=True).to_list() == ["code", "chat"]
    top = board.group_by("category", maintain_order=True).first()
    assert dict(zip(top["category"], top["model"], strict=True)) == {
        "code": "model-00",
        "chat": "model-02",
    }
    with pytest.raises(R.VotesFileError, match="language"):
        R.leaderboard_by(code, "language")


def test_style_control_removes_a_length_bias() -> None:
    """Equal models; raters prefer the longer answer and model-00 writes long ones."""
    rng = np.random.default_rng(14)
    n = 6000
    names = np.array(["model-00", "model-01", "model-02"])
    a = rng.integers(0, 3, n)
    b = (a + rng.integers(1, 3, n)) % 3
    length = lambda m: np.where(m == 0, 600, 300) * rng.uniform(0.7, 1.3, n)  # noqa: E731
    la, lb = length(a), length(b)
    x = (la - lb) / (la + lb)
    p = 1 / (1 + np.exp(-4.0 * x))
    w = np.where(rng.random(n) < p, "model_a", "model_b")
    frame = pl.DataFrame(
        {"model_a": names[a], "model_b": names[b], "winner": w, "len_a": la, "len_b": lb}
    )
    board = R.leaderboard(frame, bootstrap=100, style_control=True)
    assert {"rating_sc", "ci_low_sc", "ci_high_sc", "rank_sc"} <= set(board.columns)
    plain_gap = rating_of(board, "model-00") - rating_of(board, "model-01")
    sc_gap = rating_of(board, "model-00", "rating_sc") - rating_of(board, "model-01", "rating_sc")
    assert plain_gap > 60
    assert abs(sc_gap) < 25
    assert board["rank_sc"].to_list() == [1, 1, 1]
    fit = R.fit_bt_style(frame)
    assert fit.length_coef is not None and fit.length_coef > 100
    with pytest.raises(R.VotesFileError, match="len_a"):
        R.leaderboard(frame.drop("len_a"), style_control=True)


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
    elo = R.rating_history(frame, method="elo", points=4)
    final = elo.filter(pl.col("votes") == 2000)
    online = R.online_elo(frame)
    for m in online["model"]:
        assert rating_of(final, m) == pytest.approx(rating_of(online, m))


def test_history_lists_a_model_only_after_its_first_battle() -> None:
    rows = [("A", "B", "model_a")] * 10 + [("C", "A", "model_b")] * 10
    hist = R.rating_history(votes(rows), points=4)
    first = hist.group_by("model").agg(pl.col("votes").min()).sort("model")
    assert first["votes"].to_list() == [5, 5, 15]


# ---------------------------------------------------------------- reading votes


def write_all(frame: pl.DataFrame, tmp_path: Path) -> list[Path]:
    paths = [tmp_path / f"votes.{ext}" for ext in ("csv", "parquet", "jsonl", "json")]
    frame.write_csv(paths[0])
    frame.write_parquet(paths[1])
    frame.write_ndjson(paths[2])
    paths[3].write_text(json.dumps(frame.to_dicts()))
    return paths


def test_read_votes_all_formats_agree(tmp_path: Path) -> None:
    frame = simulate(np.array([1000.0, 1100.0]), 50, np.random.default_rng(16)).with_columns(
        language=pl.lit("English")
    )
    for path in write_all(frame, tmp_path):
        back = R.read_votes(path)
        assert back.select("model_a", "model_b", "winner", "language").equals(frame), path


def test_read_arena_battle_dump(tmp_path: Path) -> None:
    """The public dump: a JSON array of objects with nested fields and extra columns."""
    dump = [
        {
            "question_id": "q1",
            "model_a": "gpt-4",
            "model_b": "claude-v1",
            "winner": "tie (bothbad)",
            "judge": "arena_user_1",
            "conversation_a": [{"role": "user", "content": "hi"}],
            "turn": 1,
            "anony": True,
            "language": "English",
            "tstamp": 1682351591.1322,
            "conv_metadata": {"sum_assistant_a_tokens": 120, "sum_assistant_b_tokens": 80},
        },
        {
            "question_id": "q2",
            "model_a": "claude-v1",
            "model_b": "gpt-4",
            "winner": "model_b",
            "judge": "arena_user_2",
            "turn": 1,
            "anony": True,
            "language": "German",
            "tstamp": 1682351600.5,
            "conv_metadata": {"sum_assistant_a_tokens": 50, "sum_assistant_b_tokens": 70},
        },
    ]
    path = tmp_path / "clean_battle_20230430.json"
    path.write_text(json.dumps(dump, indent=1))
    frame = R.read_votes(path)
    assert frame.height == 2
    assert frame["winner"].to_list() == ["tie (bothbad)", "model_b"]
    assert frame["len_a"].to_list() == [120, 50]
    assert "conversation_a" not in frame.columns
    assert R.leaderboard(frame, bootstrap=10)["model"][0] == "gpt-4"


def test_bad_winner_names_row_and_column(tmp_path: Path) -> None:
    frame = simulate(np.array([1000.0, 1100.0]), 30, np.random.default_rng(17))
    frame = frame.with_columns(
        winner=pl.when(pl.int_range(pl.len()) == 16).then(pl.lit("modle_a")).otherwise("winner")
    )
    for path in write_all(frame, tmp_path):
        with pytest.raises(R.VotesFileError) as err:
            R.read_votes(path)
        assert str(err.value) == (
            f"{path.name} row 17, column winner: 'modle_a' is not one of "
            "model_a, model_b, tie, tie (bothbad)"
        )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("model_a,model_b\nx,y\n", "votes.csv missing column 'winner'"),
        ("model_a,model_b,winner\nx,,model_a\n", "votes.csv row 1, column model_b: missing"),
        ("model_a,model_b,winner\nx,y,tie\nx,x,tie\n", "votes.csv row 2, column model_b: same"),
        ("model_a,model_b,winner\nx,y,\n", "votes.csv row 1, column winner: missing is not"),
        ("model_a,model_b,winner\n", "votes.csv no votes"),
    ],
)
def test_malformed_csv(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "votes.csv"
    path.write_text(content)
    with pytest.raises(R.VotesFileError, match="^" + message.replace("(", r"\(")):
        R.read_votes(path)


def test_malformed_json_lines_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "votes.jsonl"
    good = json.dumps({"model_a": "x", "model_b": "y", "winner": "tie"})
    path.write_text(f"{good}\n{good}\n{{not json\n")
    with pytest.raises(R.VotesFileError, match=r"^votes.jsonl row 3: invalid JSON"):
        R.read_votes(path)
    other = tmp_path / "votes.txt"
    other.write_text(good)
    with pytest.raises(R.VotesFileError, match="unknown file type"):
        R.read_votes(other)
    with pytest.raises(FileNotFoundError):
        R.read_votes(tmp_path / "missing.csv")


def test_votes_file_error_is_a_value_error() -> None:
    assert issubclass(R.VotesFileError, ValueError)
    numeric = pl.DataFrame({"model_a": [1, 2], "model_b": [2, 3], "winner": ["tie", "model_a"]})
    assert R.validate_votes(numeric)["model_a"].dtype == pl.String


# ---------------------------------------------------------------- figures


def test_figures_draw_the_frames() -> None:
    from workbench.plots import ratings as plots

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


def test_bootstrap_refits_are_exact_optima() -> None:
    """Fast refits (fixed-Hessian chord steps, Newton fallback) land on each round's own
    maximum, including rounds where a rarely seen model is missing from the resample."""
    frame = pl.concat(
        [
            simulate(np.array([1000.0, 1100.0, 900.0, 1050.0]), 400, np.random.default_rng(19)),
            votes([("model-00", "rare", "model_b")]),
        ]
    )
    coded = R._code_votes(frame)
    cells = R._pair_cells(coded, "keep")
    design = R._Design(cells)
    s, n = R._s_n(cells.counts)
    beta0 = R._newton(design, s[None], n[None], R.DEFAULT_REG)[0]
    rng = np.random.default_rng(0)
    flat = cells.counts.ravel()
    draws = rng.multinomial(int(flat.sum()), flat / flat.sum(), size=300).reshape(300, -1, 3)
    bs, bn = R._s_n(draws)
    assert (bn[:, (cells.i == 4) | (cells.j == 4)].sum(axis=1) == 0).any()  # 'rare' missing
    h_inv = np.linalg.inv(R._neg_hessian(design, beta0, n, R.DEFAULT_REG))
    fast = R._refit(design, bs, bn, R.DEFAULT_REG, beta0, h_inv)
    exact = R._newton(design, bs, bn, R.DEFAULT_REG)
    np.testing.assert_allclose(fast, exact, atol=1e-7)
