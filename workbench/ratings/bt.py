"""Bradley-Terry by penalized maximum likelihood: point fit, bootstrap, sandwich errors.

Method (LMArena's published one). Bradley-Terry is fitted by maximum likelihood; a tie
counts as half a win for each side (``ties="drop"`` removes ties instead). The fit runs on
cell counts (:mod:`workbench.ratings.cells`), and a bootstrap round (resampling battles
with replacement) is a multinomial draw of the cell counts, which is exactly equivalent in
distribution to resampling rows. All rounds are then fitted at once by batched Newton
iterations in NumPy.

Regularization. The log-likelihood is penalized by ``reg / 2 * sum(theta_i ** 2)``, i.e.
a Gaussian prior N(0, 1 / reg) on each model's log-strength. The default ``reg = 0.01``
is a prior standard deviation of 10 natural units (about 1737 Elo points): negligible for
any model with more than a handful of battles (its Fisher information is about n / 4), yet
it makes the objective strictly concave, so a model that never lost (or never won), or
models linked only through ties, or disconnected groups of models, still get a finite,
unique rating. The penalty also fixes the free translation: at the optimum the mean
log-strength is exactly zero, so the mean rating is ``initial`` unless an anchor is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from workbench.ratings.cells import (
    Cells,
    Ties,
    as_rng,
    code_votes,
    length_feature,
    pair_cells,
    records,
    style_cells,
)
from workbench.ratings.scale import ELO_SCALE, Anchor, EloScale, anchor_index
from workbench.ratings.votes import validate_votes

DEFAULT_REG = 0.01
"""Default prior precision on log-strengths (natural units); see the module docstring."""

MAX_BATCH_ELEMENTS = 4_000_000
"""Bound on rounds x cells (and rounds x d^2) per batch of bootstrap rounds."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class Design:
    """Index arrays for scattering per-cell quantities into gradients and Hessians."""

    def __init__(self, cells: Cells) -> None:
        self.n = cells.n_models
        self.m = cells.x.shape[1]
        self.d = self.n + self.m
        self.i = cells.i
        self.j = cells.j
        self.x = cells.x
        d = self.d
        # Terms of X_c X_c^T, where X_c = e_i - e_j (+ covariates x_c at n..n+m).
        terms: list[tuple[np.ndarray, np.ndarray]] = [
            (self.i * d + self.i, np.ones(len(self.i))),
            (self.j * d + self.j, np.ones(len(self.i))),
            (self.i * d + self.j, -np.ones(len(self.i))),
            (self.j * d + self.i, -np.ones(len(self.i))),
        ]
        for k in range(self.m):
            col = self.n + k
            xk = self.x[:, k]
            terms += [
                (self.i * d + col, xk),
                (col * d + self.i, xk),
                (self.j * d + col, -xk),
                (col * d + self.j, -xk),
            ]
            for l in range(self.m):  # noqa: E741
                terms.append((np.full(len(self.i), col * d + self.n + l), xk * self.x[:, l]))
        self.terms = terms

    def eta(self, beta: np.ndarray) -> np.ndarray:
        eta = beta[:, self.i] - beta[:, self.j]
        if self.m:
            eta = eta + beta[:, self.n :] @ self.x.T
        return eta

    def gradient(self, r: np.ndarray) -> np.ndarray:
        """X^T r per round, r of shape (B, C) -> (B, d)."""
        bsz = r.shape[0]
        off = (np.arange(bsz) * self.n)[:, None]
        size = bsz * self.n
        g_theta = np.bincount((off + self.i).ravel(), r.ravel(), size) - np.bincount(
            (off + self.j).ravel(), r.ravel(), size
        )
        g = g_theta.reshape(bsz, self.n)
        if self.m:
            g = np.concatenate([g, r @ self.x], axis=1)
        return g

    def information(self, w: np.ndarray) -> np.ndarray:
        """sum_c w_c X_c X_c^T per round, w of shape (B, C) -> (B, d, d)."""
        bsz = w.shape[0]
        dd = self.d * self.d
        off = (np.arange(bsz) * dd)[:, None]
        size = bsz * dd
        out = np.zeros(size)
        for idx, coef in self.terms:
            out += np.bincount((off + idx).ravel(), (w * coef).ravel(), size)
        return out.reshape(bsz, self.d, self.d)


def _objective(
    design: Design, beta: np.ndarray, s: np.ndarray, n: np.ndarray, reg: float
) -> np.ndarray:
    """Penalized log-likelihood per round."""
    eta = design.eta(beta)
    theta = beta[:, : design.n]
    return (s * eta - n * np.logaddexp(0.0, eta)).sum(axis=1) - 0.5 * reg * (theta**2).sum(1)


def newton(
    design: Design,
    s: np.ndarray,
    n: np.ndarray,
    reg: float,
    beta0: np.ndarray | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> np.ndarray:
    """Maximizes the penalized log-likelihood for each row of ``s`` / ``n`` (B, C).

    ``s`` is the number of wins of the cell's first model (ties count half), ``n`` the
    number of battles. Returns beta of shape (B, d). Damped Newton (step halving) keeps
    every iteration an ascent step; the objective is strictly concave, so this converges.
    """
    bsz = s.shape[0]
    d = design.d
    beta = np.zeros((bsz, d)) if beta0 is None else np.array(np.broadcast_to(beta0, (bsz, d)))
    ridge = np.zeros(d)
    ridge[: design.n] = reg
    ridge[design.n :] = 1e-12  # keeps a constant covariate from making H singular
    f = _objective(design, beta, s, n, reg)
    for _ in range(max_iter):
        eta = design.eta(beta)
        p = _sigmoid(eta)
        g = design.gradient(s - n * p)
        g[:, : design.n] -= reg * beta[:, : design.n]
        h = design.information(n * p * (1.0 - p))
        h[:, np.arange(d), np.arange(d)] += ridge
        step = np.linalg.solve(h, g[..., None])[..., 0]
        t = np.ones(bsz)
        for _ in range(60):
            cand = beta + t[:, None] * step
            f_new = _objective(design, cand, s, n, reg)
            worse = f_new < f - 1e-12 * (1.0 + np.abs(f))
            if not worse.any():
                break
            t[worse] *= 0.5
        beta, f = cand, f_new
        # Newton decrement g.H^-1.g, relative to the objective: a step-size test alone
        # would never pass on big data, where rounding noise in the gradient moves the
        # weakly determined common offset (precision ``reg``) by more than ``tol``.
        decrement = np.einsum("bd,bd->b", g, step)
        if np.all(decrement <= 1e-15 * (1.0 + np.abs(f))):
            break
        if np.max(np.abs(t[:, None] * step)) < tol:
            break
    return beta


def neg_hessian(design: Design, beta: np.ndarray, n: np.ndarray, reg: float) -> np.ndarray:
    """Negative Hessian of the penalized log-likelihood at ``beta`` (d,), one data set."""
    p = _sigmoid(design.eta(beta[None]))[0]
    h = design.information((n * p * (1.0 - p))[None])[0]
    h[np.arange(design.n), np.arange(design.n)] += reg
    h[np.arange(design.n, design.d), np.arange(design.n, design.d)] += 1e-12
    return h


def refit(
    design: Design,
    s: np.ndarray,
    n: np.ndarray,
    reg: float,
    beta0: np.ndarray,
    h_inv: np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 50,
) -> np.ndarray:
    """Fits many resampled data sets near the full-data optimum ``beta0``.

    Chord iterations beta += H0^-1 g(beta) with the full-data Hessian H0 fixed: every
    bootstrap data set has nearly the same curvature, so this converges (linearly, fast)
    to the exact optimum of each round without building or factorizing a Hessian per
    round. Rounds that have not converged after ``max_iter`` steps (say a model absent
    from the resample) are finished by damped Newton.
    """
    bsz = s.shape[0]
    beta = np.array(np.broadcast_to(beta0, (bsz, design.d)))
    ok = np.zeros(bsz, bool)
    for _ in range(max_iter):
        g = design.gradient(s - n * _sigmoid(design.eta(beta)))
        g[:, : design.n] -= reg * beta[:, : design.n]
        step = g @ h_inv
        finite = np.isfinite(step).all(axis=1)
        beta += np.where(finite[:, None], step, 0.0)
        # The common offset is measured out: rounding noise moves it (precision ``reg``)
        # and ratings are centred or anchored anyway.
        moved = step.copy()
        moved[:, : design.n] -= step[:, : design.n].mean(axis=1, keepdims=True)
        ok = finite & (np.abs(moved).max(axis=1) < tol)
        if ok.all():
            return beta
    bad = np.flatnonzero(~ok)
    per_batch = max(1, MAX_BATCH_ELEMENTS // max(design.d * design.d, s.shape[1]))
    for k in range(0, len(bad), per_batch):
        idx = bad[k : k + per_batch]
        beta[idx] = newton(design, s[idx], n[idx], reg, beta0)
    return beta


def wins_battles(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wins of the first model (ties half) and battles, from (..., 3) counts."""
    return counts[..., 0] + 0.5 * counts[..., 2], counts.sum(axis=-1)


@dataclass(frozen=True)
class BTFit:
    """A Bradley-Terry fit on the Elo scale."""

    models: tuple[str, ...]
    """Model names, in code (alphabetical) order."""
    rating: np.ndarray
    """Point ratings, shape (models,)."""
    samples: np.ndarray | None
    """Bootstrap ratings, shape (rounds, models); None without bootstrap."""
    sd: np.ndarray | None
    """Sandwich standard errors of the ratings (Elo points); None unless asked."""
    length_coef: float | None = None
    """Style control only: Elo points a one-standard-deviation length advantage is worth."""


def fit_cells(
    cells: Cells,
    models: Sequence[str],
    *,
    bootstrap: int,
    rng: np.random.Generator,
    sandwich: bool,
    anchor: Anchor | None,
    elo: EloScale,
    reg: float,
) -> BTFit:
    """Fits the cells (point fit, then ``bootstrap`` multinomial resamples, and sandwich
    errors if asked), reporting on ``elo``'s scale."""
    design = Design(cells)
    s, n = wins_battles(cells.counts)
    beta = newton(design, s[None], n[None], reg)[0]
    theta = beta[: design.n]
    rating = elo.ratings(theta, models, anchor)
    alpha = elo.alpha
    length_coef = float(beta[design.n] / alpha) if design.m else None

    samples = None
    if bootstrap > 0:
        flat = cells.counts.ravel()
        nz = np.flatnonzero(flat)
        total = int(flat.sum())
        probs = flat[nz] / total
        h_inv = np.linalg.inv(neg_hessian(design, beta, n, reg))
        batch = max(1, MAX_BATCH_ELEMENTS // max(len(cells.i), design.d))
        out = []
        done = 0
        while done < bootstrap:
            size = min(batch, bootstrap - done)
            draws = np.zeros((size, flat.size))
            draws[:, nz] = rng.multinomial(total, probs, size=size)
            bs, bn = wins_battles(draws.reshape(size, -1, 3))
            bb = refit(design, bs, bn, reg, beta, h_inv)
            out.append(elo.ratings(bb[:, : design.n], models, anchor))
            done += size
        samples = np.concatenate(out, axis=0)

    sd = None
    if sandwich:
        sd = _sandwich_sd(design, cells, beta, reg, models, anchor) / alpha
    return BTFit(tuple(models), rating, samples, sd, length_coef)


def _sandwich_sd(
    design: Design,
    cells: Cells,
    beta: np.ndarray,
    reg: float,
    models: Sequence[str],
    anchor: Anchor | None,
) -> np.ndarray:
    """Robust (sandwich) standard errors H^-1 J H^-1 of the log-strengths.

    H is the negative Hessian of the penalized log-likelihood; J the sum over battles of
    the outer product of each battle's score, (y - p)^2 X X^T, with y = 1, 0 or 1/2.
    Without an anchor the errors are those of the centred log-strengths; with one, of the
    differences to the anchor model.
    """
    p = _sigmoid(design.eta(beta[None]))[0]
    c = cells.counts
    h = neg_hessian(design, beta, c.sum(axis=1), reg)
    score_sq = c[:, 0] * (1.0 - p) ** 2 + c[:, 1] * p**2 + c[:, 2] * (0.5 - p) ** 2
    j = design.information(score_sq[None])[0]
    h_inv = np.linalg.inv(h)
    cov = (h_inv @ j @ h_inv)[: design.n, : design.n]
    nm = design.n
    if anchor is None:
        centre = np.eye(nm) - 1.0 / nm
        cov = centre @ cov @ centre
    else:
        k = anchor_index(models, anchor)
        contrast = np.eye(nm)
        contrast[:, k] -= 1.0
        cov = contrast @ cov @ contrast.T
    return np.sqrt(np.clip(np.diag(cov), 0.0, None))


def bootstrap_bt(
    votes: pl.DataFrame,
    *,
    rounds: int = 1000,
    seed: int | np.random.Generator = 0,
    ties: Ties = "keep",
    anchor: Anchor | None = None,
    sandwich: bool = False,
    elo: EloScale = ELO_SCALE,
    reg: float = DEFAULT_REG,
) -> BTFit:
    """Bradley-Terry point fit plus ``rounds`` bootstrap refits, as arrays.

    Each round resamples the battles with replacement (as a multinomial draw of the
    pair x outcome counts, which is the same distribution) and refits; all rounds are
    solved together. Use :func:`~workbench.ratings.leaderboard` for a frame; this is for
    callers that need the raw samples (e.g. intervals for rating differences).
    """
    coded = code_votes(votes)
    cells = pair_cells(coded, ties)
    return fit_cells(
        cells,
        coded.models,
        bootstrap=rounds,
        rng=as_rng(seed),
        sandwich=sandwich,
        anchor=anchor,
        elo=elo,
        reg=reg,
    )


def fit_bt(
    votes: pl.DataFrame,
    *,
    ties: Ties = "keep",
    anchor: Anchor | None = None,
    elo: EloScale = ELO_SCALE,
    reg: float = DEFAULT_REG,
) -> pl.DataFrame:
    """Bradley-Terry maximum-likelihood ratings on the Elo scale.

    Args:
        votes: Votes frame (model_a, model_b, winner).
        ties: ``"keep"``: a tie is half a win for each side; ``"drop"``: ties are ignored.
        anchor: ``(model, value)`` pins that model's rating; otherwise the mean is
            ``initial``.
        elo: The rating scale; its ``initial`` is the mean rating when no anchor is given.
        reg: Gaussian prior precision on log-strengths (see the module docstring).

    Returns:
        One row per model, best first: model, rating, battles, wins, losses, ties.
    """
    coded = code_votes(votes)
    fit = fit_cells(
        pair_cells(coded, ties),
        coded.models,
        bootstrap=0,
        rng=np.random.default_rng(0),
        sandwich=False,
        anchor=anchor,
        elo=elo,
        reg=reg,
    )
    return (
        pl.DataFrame({"model": list(coded.models), "rating": fit.rating})
        .join(records(coded), on="model")
        .sort(["rating", "model"], descending=[True, False])
    )


def fit_bt_style(
    votes: pl.DataFrame,
    *,
    bootstrap: int = 0,
    seed: int | np.random.Generator = 0,
    sandwich: bool = False,
    ties: Ties = "keep",
    anchor: Anchor | None = None,
    elo: EloScale = ELO_SCALE,
    reg: float = DEFAULT_REG,
) -> BTFit:
    """Bradley-Terry with style control: answer-length difference as a covariate.

    The model is logit P(A beats B) = theta_A - theta_B + gamma * x, with
    x = (len_a - len_b) / (len_a + len_b) divided by its standard deviation over the
    votes (LMArena's length feature). The ratings then say how models compare at equal
    answer length; ``length_coef`` is gamma on the Elo scale. Needs columns len_a, len_b.
    The bootstrap works on (pair, x) cells, so its cost grows with the number of distinct
    length ratios rather than being bounded by the number of pairs.
    """
    coded = code_votes(votes)
    cells, _ = style_cells(coded, length_feature(validate_votes(votes)), ties)
    return fit_cells(
        cells,
        coded.models,
        bootstrap=bootstrap,
        rng=as_rng(seed),
        sandwich=sandwich,
        anchor=anchor,
        elo=elo,
        reg=reg,
    )
