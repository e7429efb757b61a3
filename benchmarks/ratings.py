"""Ratings at arena scale: 1,000,000 votes among 20 models, against the choix library.

Times, in one run and one process:
  * workbench: Bradley-Terry point fit, BT + 1,000 bootstrap rounds (leaderboard), online Elo;
  * choix (independent implementation, ``ilsr_pairwise_dense``): the point fit, and the
    same 1,000 bootstrap rounds two ways: LMArena-style (resample the 1M rows, count,
    fit: timed on a few rounds and extrapolated) and with the cell-count trick workbench
    uses (a multinomial draw of the pair x outcome counts, then fit: run in full);
  * online Elo against FastChat's compute_online_elo loop (rows and a dict); choix has
    no Elo.

Workbench starts from the Polars frame of strings (validation and encoding included);
the library is handed integer-coded arrays for free. Run:

    python benchmarks/ratings.py [--votes 1000000] [--models 20] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from workbench import ratings as R
from workbench.ratings.bt import fit_cells
from workbench.ratings.cells import code_votes, pair_cells
from workbench.schemas import VOTE_WINNERS


def generate(n_votes: int, n_models: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Votes from a Bradley-Terry model with 10% ties."""
    rng = np.random.default_rng(seed)
    strengths = rng.normal(1000.0, 100.0, n_models)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    p = 1.0 / (1.0 + 10.0 ** ((strengths[b] - strengths[a]) / 400.0))
    w = np.where(rng.random(n_votes) < p, 0, 1)
    w = np.where(rng.random(n_votes) < 0.1, rng.integers(2, 4, n_votes), w)
    names = np.array([f"model-{i:02d}" for i in range(n_models)])
    frame = pl.DataFrame(
        {"model_a": names[a], "model_b": names[b], "winner": np.array(VOTE_WINNERS)[w]}
    )
    return frame, strengths


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best = math.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def comp_matrix(a: np.ndarray, b: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """comp[i, j] = times i beat j, ties half each (choix's dense input)."""
    win = np.bincount(a[w == 0] * n + b[w == 0], minlength=n * n)
    win += np.bincount(b[w == 1] * n + a[w == 1], minlength=n * n)
    tie = w >= 2
    half = np.bincount(a[tie] * n + b[tie], minlength=n * n)
    comp = win.reshape(n, n).astype(float)
    half_m = half.reshape(n, n) * 0.5
    return comp + half_m + half_m.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--library-row-rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import choix

    n, rounds = args.models, args.rounds
    t_gen, (frame, _) = timed(lambda: generate(args.votes, n, args.seed))
    print(f"{args.votes:,} votes among {n} models (generated in {t_gen:.2f} s)")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    # ---- workbench
    t_fit, fit = timed(lambda: R.fit_bt(frame), repeat=3)
    t_boot, board = timed(lambda: R.leaderboard(frame, bootstrap=rounds, seed=0))
    t_elo, _ = timed(lambda: R.online_elo(frame))
    t_sand, _ = timed(lambda: R.leaderboard(frame, ci="sandwich"), repeat=3)

    # ---- choix, from integer codes (encoding not timed)
    coded = code_votes(frame)
    a, b, w = coded.a, coded.b, coded.w

    def lib_point() -> np.ndarray:
        return choix.ilsr_pairwise_dense(comp_matrix(a, b, w, n))

    t_lib_fit, _ = timed(lib_point, repeat=3)
    exact = choix.ilsr_pairwise_dense(comp_matrix(a, b, w, n), tol=1e-12, max_iter=10_000)
    lib_rating = 1000.0 + (exact - exact.mean()) * 400.0 / math.log(10.0)
    ours = dict(zip(fit["model"], fit["rating"], strict=True))
    max_diff = max(abs(ours[m] - lib_rating[i]) for i, m in enumerate(coded.models))

    rng = np.random.default_rng(1)
    total = len(a)

    def lib_row_round() -> np.ndarray:
        idx = rng.integers(0, total, total)
        return choix.ilsr_pairwise_dense(comp_matrix(a[idx], b[idx], w[idx], n))

    k = args.library_row_rounds
    t_row, _ = timed(lambda: [lib_row_round() for _ in range(k)])
    t_lib_rows = t_row / k * rounds

    cells = pair_cells(coded, "keep")
    flat = cells.counts.ravel()
    probs = flat / flat.sum()

    def lib_cell_rounds() -> None:
        draws = rng.multinomial(int(flat.sum()), probs, size=rounds).reshape(rounds, -1, 3)
        for d in draws:
            comp = np.zeros((n, n))
            comp[cells.i, cells.j] = d[:, 0] + 0.5 * d[:, 2]
            comp[cells.j, cells.i] = d[:, 1] + 0.5 * d[:, 2]
            choix.ilsr_pairwise_dense(comp)

    t_lib_cells, _ = timed(lib_cell_rounds)

    # ---- workbench from the same integer codes (solver against solver)
    fit_kw: dict[str, Any] = {
        "sandwich": False,
        "anchor": None,
        "elo": R.ELO_SCALE,
        "reg": R.DEFAULT_REG,
    }

    def our_codes_point() -> Any:
        return fit_cells(pair_cells(coded, "keep"), coded.models, bootstrap=0, rng=rng, **fit_kw)

    def our_cell_rounds() -> Any:
        return fit_cells(
            cells, coded.models, bootstrap=rounds, rng=np.random.default_rng(2), **fit_kw
        )

    t_codes_fit, _ = timed(our_codes_point, repeat=3)
    t_cell_rounds, _ = timed(our_cell_rounds)

    # ---- Elo baseline: FastChat's loop over rows
    def fastchat_elo() -> dict[str, float]:
        rating: dict[str, float] = {}
        for model_a, model_b, winner in frame.select("model_a", "model_b", "winner").iter_rows():
            ra = rating.setdefault(model_a, 1000.0)
            rb = rating.setdefault(model_b, 1000.0)
            ea = 1 / (1 + 10 ** ((rb - ra) / 400))
            eb = 1 / (1 + 10 ** ((ra - rb) / 400))
            sa = 1.0 if winner == "model_a" else 0.0 if winner == "model_b" else 0.5
            rating[model_a] += 4 * (sa - ea)
            rating[model_b] += 4 * (1 - sa - eb)
        return rating

    t_ref_elo, _ = timed(fastchat_elo)

    w1 = 30
    print()
    print(f"{'task':<{w1}}  {'workbench':>10}  {'baseline':>10}  {'ratio':>7}  baseline")
    rows = [
        ("BT point fit, frame in", t_fit, t_lib_fit, "choix ilsr_pairwise_dense, codes in"),
        (
            f"BT + {rounds} bootstrap rounds",
            t_boot,
            t_lib_rows,
            f"choix, resampling rows (extrapolated from {k} rounds)",
        ),
        (
            f"BT + {rounds} bootstrap rounds",
            t_boot,
            t_lib_fit + t_lib_cells,
            f"choix, cell-count resampling ({rounds} rounds run)",
        ),
        ("online Elo (K=4)", t_elo, t_ref_elo, "FastChat compute_online_elo loop"),
        ("BT point fit, integer codes in", t_codes_fit, t_lib_fit, "choix ilsr_pairwise_dense"),
        (
            f"{rounds} rounds from cell counts",
            t_cell_rounds,
            t_lib_cells,
            "choix, cell-count resampling (solver against solver)",
        ),
    ]
    for name, ours_t, base_t, label in rows:
        print(f"{name:<{w1}}  {ours_t:>9.3f}s  {base_t:>9.3f}s  {base_t / ours_t:>6.1f}x  {label}")
    print(f"{'BT + sandwich intervals':<{w1}}  {t_sand:>9.3f}s")
    print()
    print(f"max |workbench - choix| BT rating: {max_diff:.4f} Elo points")
    ci = board["ci_high"] - board["ci_low"]
    print(f"bootstrap 95% interval widths: {ci.min():.2f} .. {ci.max():.2f} Elo points")
    target_time = t_boot < 2.0
    target_ratio = t_lib_rows / t_boot >= 10.0
    print(
        f"targets: BT + {rounds} rounds < 2 s: {'met' if target_time else 'MISSED'} "
        f"({t_boot:.3f} s); >= 10x the library: {'met' if target_ratio else 'MISSED'} "
        f"({t_lib_rows / t_boot:.1f}x resampling rows, "
        f"{(t_lib_fit + t_lib_cells) / t_boot:.1f}x with the same cell trick)"
    )


if __name__ == "__main__":
    main()
