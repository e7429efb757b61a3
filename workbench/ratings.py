"""Ratings from pairwise votes: online Elo, Bradley-Terry, confidence intervals, win rates.

Pure functions over a Polars votes frame with columns ``model_a``, ``model_b`` and
``winner`` (one of ``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``, the public arena
convention); extra columns (``category``, ``language``, ``len_a``, ``len_b``, ``tstamp``,
...) are carried along and used where asked. Nothing here prints.

Scale. Ratings are on the Elo scale: P(A beats B) = 1 / (1 + base ** ((R_B - R_A) / scale))
(base 10, scale 400). Internally the fit works in natural log-odds units
``theta = ln(base) / scale * (R - initial)``, so P(A beats B) = sigmoid(theta_A - theta_B).

Method (LMArena's published one). Bradley-Terry is fitted by maximum likelihood; a tie
counts as half a win for each side (``ties="drop"`` removes ties instead). Because 1M
votes among 20 models collapse to at most 190 pairs x 3 outcomes, the fit runs on those
cell counts, and a bootstrap round (resampling battles with replacement) is a multinomial
draw of the cell counts, which is exactly equivalent in distribution to resampling rows.
All rounds are then fitted at once by batched Newton iterations in NumPy.

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

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from workbench.errors import InputError

WINNERS: tuple[str, ...] = ("model_a", "model_b", "tie", "tie (bothbad)")
"""Allowed values of the ``winner`` column, in code order 0..3."""

REQUIRED_COLUMNS: tuple[str, ...] = ("model_a", "model_b", "winner")

DEFAULT_REG = 0.01
"""Default prior precision on log-strengths (natural units); see the module docstring."""

Ties = Literal["keep", "drop"]
CiMethod = Literal["bootstrap", "sandwich"]
Method = Literal["bt", "elo"]

_Z95 = 1.959963984540054  # standard normal 97.5% quantile
_MAX_BATCH_ELEMENTS = 4_000_000  # bound on rounds x cells (and rounds x d^2) per batch


class VotesFileError(InputError):
    """A votes file or frame is malformed; the message is one line naming row and column."""


# --------------------------------------------------------------------------------------
# Reading and validating votes
# --------------------------------------------------------------------------------------


def validate_votes(frame: pl.DataFrame, *, source: str | None = None) -> pl.DataFrame:
    """Checks a votes frame and returns it with string-typed model and winner columns.

    Rows are numbered from 1 (the first data row; a CSV header is not a row).

    Args:
        frame: Votes, one row per battle.
        source: Name to put in front of error messages (usually the file name).

    Returns:
        The frame, with ``model_a``, ``model_b`` and ``winner`` cast to strings; other
        columns untouched.

    Raises:
        VotesFileError: Missing column, empty or null model name, unknown winner, or a
            model battling itself. The message names the first offending row and column.
    """
    return _prepare(frame, source)[0]


def _prepare(frame: pl.DataFrame, source: str | None) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """validate_votes, also returning the sorted model names."""
    prefix = f"{source} " if source else ""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        found = ", ".join(frame.columns) or "none"
        raise VotesFileError(f"{prefix}missing column {missing[0]!r} (columns found: {found})")
    casts = []
    for col in REQUIRED_COLUMNS:
        dtype = frame.schema[col]
        if dtype == pl.String:
            continue
        if (
            dtype.is_numeric()
            or dtype in (pl.Categorical, pl.Boolean, pl.Null)
            or isinstance(dtype, pl.Enum)
        ):
            casts.append(pl.col(col).cast(pl.String))
        else:
            raise VotesFileError(f"{prefix}column {col}: expected text, found {dtype}")
    if casts:
        frame = frame.with_columns(casts)
    if frame.height == 0:
        raise VotesFileError(f"{prefix}no votes (the file has no rows)")
    return frame, _check_votes(frame, prefix)


def _check_votes(frame: pl.DataFrame, prefix: str) -> tuple[str, ...]:
    """Finds the first bad row, if any; returns the sorted model names."""

    def first_bad(mask: pl.Expr) -> int:
        return int(frame.select(mask.arg_true().first()).item())

    # Checks run on the distinct values (cheap); rows are searched only on failure.
    names = pl.concat([frame["model_a"], frame["model_b"]]).unique()
    if names.null_count() or (names.str.strip_chars() == "").any():
        for col in ("model_a", "model_b"):
            mask = pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")
            if frame.select(mask.any()).item():
                row = first_bad(mask)
                raise VotesFileError(f"{prefix}row {row + 1}, column {col}: missing model name")
    winners = frame["winner"].unique()
    if winners.null_count() or not winners.is_in(list(WINNERS)).all():
        row = first_bad(~pl.col("winner").is_in(list(WINNERS)).fill_null(False))
        value = frame["winner"][row]
        shown = "missing" if value is None else repr(value)
        raise VotesFileError(
            f"{prefix}row {row + 1}, column winner: {shown} is not one of {', '.join(WINNERS)}"
        )
    same = pl.col("model_a") == pl.col("model_b")
    if frame.select(same.any()).item():
        row = first_bad(same)
        raise VotesFileError(
            f"{prefix}row {row + 1}, column model_b: same model as model_a "
            f"({frame['model_a'][row]!r}); a model cannot battle itself"
        )
    return tuple(names.sort().to_list())


def read_votes(path: str | Path) -> pl.DataFrame:
    """Reads and validates a votes file: Parquet, CSV, JSON lines or a JSON array.

    The JSON array form is the public arena battle dump (``clean_battle_*.json``): its
    scalar fields become columns, nested ones are dropped, and where ``len_a`` / ``len_b``
    are absent they are taken from ``conv_metadata.sum_assistant_{a,b}_tokens``.

    Raises:
        VotesFileError: Unreadable or malformed file; the one-line message names the file
            and, where it can, the row and column.
        FileNotFoundError: No such file.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            frame = pl.read_csv(
                path,
                separator="\t" if suffix == ".tsv" else ",",
                schema_overrides={c: pl.String for c in REQUIRED_COLUMNS},
                infer_schema_length=10_000,
            )
        elif suffix in (".jsonl", ".ndjson", ".json"):
            frame = _read_json(path)
        else:
            raise VotesFileError(
                f"{name}: unknown file type {suffix or '(none)'!r}; "
                "expected .parquet, .csv, .jsonl or .json"
            )
    except VotesFileError:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VotesFileError(f"{name}: cannot read votes: {first_line}") from e
    return validate_votes(frame, source=name)


def _read_json(path: Path) -> pl.DataFrame:
    name = path.name
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    if not head:
        raise VotesFileError(f"{name}: no votes (the file is empty)")
    if head[:1] == b"[":
        try:
            records = json.loads(path.read_bytes())
        except json.JSONDecodeError as e:
            raise VotesFileError(f"{name}: invalid JSON at line {e.lineno}: {e.msg}") from e
        return _records_frame(records, name)
    # JSON lines: parse ourselves so that an error names the row.
    records = []
    with path.open("r", encoding="utf-8") as f:
        row = 0
        for line in f:
            if not line.strip():
                continue
            row += 1
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise VotesFileError(f"{name} row {row}: invalid JSON ({e.msg})") from e
    return _records_frame(records, name)


def _records_frame(records: Any, name: str) -> pl.DataFrame:
    if not isinstance(records, list):
        raise VotesFileError(f"{name}: expected a list of vote objects")
    scalar = (str, int, float, bool, type(None))
    columns: dict[str, list[Any]] = {}
    n = len(records)
    for row, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise VotesFileError(f"{name} row {row + 1}: expected an object, found {rec!r:.40}")
        meta = rec.get("conv_metadata")
        if isinstance(meta, dict):
            for key, src in (
                ("len_a", "sum_assistant_a_tokens"),
                ("len_b", "sum_assistant_b_tokens"),
            ):
                if key not in rec and src in meta:
                    columns.setdefault(key, [None] * n)[row] = meta[src]
        for key, value in rec.items():
            if isinstance(value, scalar):
                columns.setdefault(key, [None] * n)[row] = value
    for col in REQUIRED_COLUMNS:
        if col in columns:
            columns[col] = [None if v is None else str(v) for v in columns[col]]
    frame = pl.DataFrame(columns, strict=False, infer_schema_length=None) if columns else None
    if frame is None:
        return pl.DataFrame()
    return frame


# --------------------------------------------------------------------------------------
# Encoding votes as integer codes and cell counts
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Coded:
    """Votes as integer arrays."""

    models: tuple[str, ...]
    """Model names; code i is models[i] (sorted, so codes do not depend on row order)."""
    a: np.ndarray
    """Code of model_a, per vote."""
    b: np.ndarray
    """Code of model_b, per vote."""
    w: np.ndarray
    """Winner code per vote: 0 model_a, 1 model_b, 2 tie, 3 tie (bothbad)."""
    combos: np.ndarray
    """Distinct (a, b, w) rows with their vote counts, shape (k, 4)."""


@dataclass(frozen=True)
class _Cells:
    """Sufficient statistics: each cell is a pair (i < j) and covariate value."""

    n_models: int
    i: np.ndarray
    """First model of the cell's pair."""
    j: np.ndarray
    """Second model (i < j)."""
    x: np.ndarray
    """Covariates, shape (cells, m); m = 0 without style control."""
    counts: np.ndarray
    """Shape (cells, 3): battles won by i, won by j, tied."""

    @property
    def n_battles(self) -> int:
        return int(self.counts.sum())


def _code_votes(votes: pl.DataFrame) -> _Coded:
    votes, models = _prepare(votes, None)
    enum = pl.Enum(models)
    codes = votes.select(
        pl.col("model_a").cast(enum).to_physical().cast(pl.Int64).alias("a"),
        pl.col("model_b").cast(enum).to_physical().cast(pl.Int64).alias("b"),
        pl.col("winner").cast(pl.Enum(list(WINNERS))).to_physical().cast(pl.Int64).alias("w"),
    )
    a, b, w = codes["a"].to_numpy(), codes["b"].to_numpy(), codes["w"].to_numpy()
    n = len(models)
    key = (a * n + b) * 4 + w
    if n * n * 4 <= 16_000_000:
        cnt = np.bincount(key, minlength=n * n * 4)
        keys = np.flatnonzero(cnt)
        counts = cnt[keys]
    else:
        keys, counts = np.unique(key, return_counts=True)
    combos = np.column_stack([keys // 4 // n, keys // 4 % n, keys % 4, counts])
    return _Coded(models, a, b, w, combos)


def _canonical(
    a: np.ndarray, b: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, outcome, swapped): outcome 0 = lo won, 1 = hi won, 2 = tie."""
    swapped = a > b
    lo = np.where(swapped, b, a)
    hi = np.where(swapped, a, b)
    lo_won = (w == 0) ^ swapped
    out = np.where(w >= 2, 2, np.where(lo_won, 0, 1)).astype(np.int64)
    return lo, hi, out, swapped


def _pair_cells(coded: _Coded, ties: Ties) -> _Cells:
    """Cells per pair, from the distinct (a, b, winner) combinations."""
    n = len(coded.models)
    a, b, w, count = coded.combos.T
    lo, hi, out, _ = _canonical(a, b, w)
    if ties == "drop":
        keep = out != 2
        lo, hi, out, count = lo[keep], hi[keep], out[keep], count[keep]
    key = lo * n + hi
    pairs, inv = np.unique(key, return_inverse=True)
    counts = np.zeros((len(pairs), 3))
    np.add.at(counts, (inv, out), count)
    return _Cells(n_models=n, i=pairs // n, j=pairs % n, x=np.zeros((len(pairs), 0)), counts=counts)


def _length_feature(votes: pl.DataFrame) -> np.ndarray:
    """(len_a - len_b) / (len_a + len_b) per vote, as LMArena's style control uses it."""
    for col in ("len_a", "len_b"):
        if col not in votes.columns:
            raise VotesFileError(
                f"style control needs columns len_a and len_b (answer lengths); "
                f"column {col} is missing"
            )
        dtype = votes.schema[col]
        if not dtype.is_numeric():
            raise VotesFileError(f"column {col}: expected numbers, found {dtype}")
        bad = votes.select((pl.col(col).is_null() | (pl.col(col) < 0)).arg_true().first()).item()
        if bad is not None:
            raise VotesFileError(
                f"row {bad + 1}, column {col}: answer length must be a number >= 0, "
                f"found {votes[col][bad]!r}"
            )
    la = votes["len_a"].cast(pl.Float64).to_numpy()
    lb = votes["len_b"].cast(pl.Float64).to_numpy()
    total = la + lb
    return np.divide(la - lb, total, out=np.zeros_like(total), where=total > 0)


def _style_cells(coded: _Coded, feature: np.ndarray, ties: Ties) -> tuple[_Cells, float]:
    """Cells keyed by (pair, length feature); returns them and the feature's scale (std)."""
    n = len(coded.models)
    lo, hi, out, swapped = _canonical(coded.a, coded.b, coded.w)
    x = np.where(swapped, -feature, feature)
    if ties == "drop":
        keep = out != 2
        lo, hi, out, x = lo[keep], hi[keep], out[keep], x[keep]
    sd = float(np.std(feature)) or 1.0
    xs = x / sd
    frame = pl.DataFrame({"key": lo * n + hi, "x": xs, "out": out})
    cells = (
        frame.group_by("key", "x")
        .agg(
            (pl.col("out") == 0).sum().alias("c0"),
            (pl.col("out") == 1).sum().alias("c1"),
            (pl.col("out") == 2).sum().alias("c2"),
        )
        .sort("key", "x")
    )
    key = cells["key"].to_numpy()
    counts = np.column_stack(
        [cells["c0"].to_numpy(), cells["c1"].to_numpy(), cells["c2"].to_numpy()]
    ).astype(np.float64)
    return (
        _Cells(n, key // n, key % n, cells["x"].to_numpy().reshape(-1, 1), counts),
        sd,
    )


def _records(coded: _Coded) -> pl.DataFrame:
    """Per-model battles, wins, losses, ties (all votes, whatever ``ties`` says)."""
    n = len(coded.models)
    a, b, w, count = coded.combos.T
    as_a = np.zeros((n, 4))
    as_b = np.zeros((n, 4))
    np.add.at(as_a, (a, w), count)
    np.add.at(as_b, (b, w), count)
    wins = as_a[:, 0] + as_b[:, 1]
    losses = as_a[:, 1] + as_b[:, 0]
    ties = as_a[:, 2:].sum(1) + as_b[:, 2:].sum(1)
    return pl.DataFrame(
        {
            "model": list(coded.models),
            "battles": (wins + losses + ties).astype(np.int64),
            "wins": wins.astype(np.int64),
            "losses": losses.astype(np.int64),
            "ties": ties.astype(np.int64),
        }
    )


# --------------------------------------------------------------------------------------
# Batched penalized Newton for Bradley-Terry (optionally with covariates)
# --------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class _Design:
    """Index arrays for scattering per-cell quantities into gradients and Hessians."""

    def __init__(self, cells: _Cells) -> None:
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
    design: _Design, beta: np.ndarray, s: np.ndarray, n: np.ndarray, reg: float
) -> np.ndarray:
    """Penalized log-likelihood per round."""
    eta = design.eta(beta)
    theta = beta[:, : design.n]
    return (s * eta - n * np.logaddexp(0.0, eta)).sum(axis=1) - 0.5 * reg * (theta**2).sum(1)


def _newton(
    design: _Design,
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


def _neg_hessian(design: _Design, beta: np.ndarray, n: np.ndarray, reg: float) -> np.ndarray:
    """Negative Hessian of the penalized log-likelihood at ``beta`` (d,), one data set."""
    p = _sigmoid(design.eta(beta[None]))[0]
    h = design.information((n * p * (1.0 - p))[None])[0]
    h[np.arange(design.n), np.arange(design.n)] += reg
    h[np.arange(design.n, design.d), np.arange(design.n, design.d)] += 1e-12
    return h


def _refit(
    design: _Design,
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
    per_batch = max(1, _MAX_BATCH_ELEMENTS // max(design.d * design.d, s.shape[1]))
    for k in range(0, len(bad), per_batch):
        idx = bad[k : k + per_batch]
        beta[idx] = _newton(design, s[idx], n[idx], reg, beta0)
    return beta


def _s_n(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wins of the first model (ties half) and battles, from (..., 3) counts."""
    return counts[..., 0] + 0.5 * counts[..., 2], counts.sum(axis=-1)


def _to_elo(
    theta: np.ndarray,
    models: Sequence[str],
    *,
    anchor: tuple[str, float] | None,
    scale: float,
    base: float,
    initial: float,
) -> np.ndarray:
    """Natural log-strengths (..., n) to Elo-scale ratings, centred or anchored."""
    alpha = math.log(base) / scale
    if anchor is None:
        return initial + (theta - theta.mean(axis=-1, keepdims=True)) / alpha
    k = _anchor_index(models, anchor)
    return anchor[1] + (theta - theta[..., k : k + 1]) / alpha


def _anchor_index(models: Sequence[str], anchor: tuple[str, float]) -> int:
    try:
        return list(models).index(anchor[0])
    except ValueError:
        raise ValueError(f"anchor model {anchor[0]!r} has no votes") from None


# --------------------------------------------------------------------------------------
# Bradley-Terry: point fit, bootstrap, sandwich
# --------------------------------------------------------------------------------------


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


def _fit_cells(
    cells: _Cells,
    models: Sequence[str],
    *,
    bootstrap: int,
    rng: np.random.Generator,
    sandwich: bool,
    anchor: tuple[str, float] | None,
    scale: float,
    base: float,
    initial: float,
    reg: float,
) -> BTFit:
    design = _Design(cells)
    s, n = _s_n(cells.counts)
    beta = _newton(design, s[None], n[None], reg)[0]
    theta = beta[: design.n]
    kw: dict[str, Any] = {"anchor": anchor, "scale": scale, "base": base, "initial": initial}
    rating = _to_elo(theta, models, **kw)
    alpha = math.log(base) / scale
    length_coef = float(beta[design.n] / alpha) if design.m else None

    samples = None
    if bootstrap > 0:
        flat = cells.counts.ravel()
        nz = np.flatnonzero(flat)
        total = int(flat.sum())
        probs = flat[nz] / total
        h_inv = np.linalg.inv(_neg_hessian(design, beta, n, reg))
        batch = max(1, _MAX_BATCH_ELEMENTS // max(len(cells.i), design.d))
        out = []
        done = 0
        while done < bootstrap:
            size = min(batch, bootstrap - done)
            draws = np.zeros((size, flat.size))
            draws[:, nz] = rng.multinomial(total, probs, size=size)
            bs, bn = _s_n(draws.reshape(size, -1, 3))
            bb = _refit(design, bs, bn, reg, beta, h_inv)
            out.append(_to_elo(bb[:, : design.n], models, **kw))
            done += size
        samples = np.concatenate(out, axis=0)

    sd = None
    if sandwich:
        sd = _sandwich_sd(design, cells, beta, reg, models, anchor) / alpha
    return BTFit(tuple(models), rating, samples, sd, length_coef)


def _sandwich_sd(
    design: _Design,
    cells: _Cells,
    beta: np.ndarray,
    reg: float,
    models: Sequence[str],
    anchor: tuple[str, float] | None,
) -> np.ndarray:
    """Robust (sandwich) standard errors H^-1 J H^-1 of the log-strengths.

    H is the negative Hessian of the penalized log-likelihood; J the sum over battles of
    the outer product of each battle's score, (y - p)^2 X X^T, with y = 1, 0 or 1/2.
    Without an anchor the errors are those of the centred log-strengths; with one, of the
    differences to the anchor model.
    """
    p = _sigmoid(design.eta(beta[None]))[0]
    c = cells.counts
    h = _neg_hessian(design, beta, c.sum(axis=1), reg)
    score_sq = c[:, 0] * (1.0 - p) ** 2 + c[:, 1] * p**2 + c[:, 2] * (0.5 - p) ** 2
    j = design.information(score_sq[None])[0]
    h_inv = np.linalg.inv(h)
    cov = (h_inv @ j @ h_inv)[: design.n, : design.n]
    nm = design.n
    if anchor is None:
        centre = np.eye(nm) - 1.0 / nm
        cov = centre @ cov @ centre
    else:
        k = _anchor_index(models, anchor)
        contrast = np.eye(nm)
        contrast[:, k] -= 1.0
        cov = contrast @ cov @ contrast.T
    return np.sqrt(np.clip(np.diag(cov), 0.0, None))


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def bootstrap_bt(
    votes: pl.DataFrame,
    *,
    rounds: int = 1000,
    seed: int | np.random.Generator = 0,
    ties: Ties = "keep",
    anchor: tuple[str, float] | None = None,
    sandwich: bool = False,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    reg: float = DEFAULT_REG,
) -> BTFit:
    """Bradley-Terry point fit plus ``rounds`` bootstrap refits, as arrays.

    Each round resamples the battles with replacement (as a multinomial draw of the
    pair x outcome counts, which is the same distribution) and refits; all rounds are
    solved together. Use :func:`leaderboard` for a frame; this is for callers that need
    the raw samples (e.g. intervals for rating differences).
    """
    coded = _code_votes(votes)
    cells = _pair_cells(coded, ties)
    return _fit_cells(
        cells,
        coded.models,
        bootstrap=rounds,
        rng=_rng(seed),
        sandwich=sandwich,
        anchor=anchor,
        scale=scale,
        base=base,
        initial=initial,
        reg=reg,
    )


def fit_bt(
    votes: pl.DataFrame,
    *,
    ties: Ties = "keep",
    anchor: tuple[str, float] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    reg: float = DEFAULT_REG,
) -> pl.DataFrame:
    """Bradley-Terry maximum-likelihood ratings on the Elo scale.

    Args:
        votes: Votes frame (model_a, model_b, winner).
        ties: ``"keep"``: a tie is half a win for each side; ``"drop"``: ties are ignored.
        anchor: ``(model, value)`` pins that model's rating; otherwise the mean is
            ``initial``.
        scale: Elo scale (400): a difference of ``scale`` means odds of ``base`` to 1.
        base: Elo base (10).
        initial: Mean rating when no anchor is given.
        reg: Gaussian prior precision on log-strengths (see the module docstring).

    Returns:
        One row per model, best first: model, rating, battles, wins, losses, ties.
    """
    coded = _code_votes(votes)
    fit = _fit_cells(
        _pair_cells(coded, ties),
        coded.models,
        bootstrap=0,
        rng=np.random.default_rng(0),
        sandwich=False,
        anchor=anchor,
        scale=scale,
        base=base,
        initial=initial,
        reg=reg,
    )
    return (
        pl.DataFrame({"model": list(coded.models), "rating": fit.rating})
        .join(_records(coded), on="model")
        .sort(["rating", "model"], descending=[True, False])
    )


def fit_bt_style(
    votes: pl.DataFrame,
    *,
    bootstrap: int = 0,
    seed: int | np.random.Generator = 0,
    sandwich: bool = False,
    ties: Ties = "keep",
    anchor: tuple[str, float] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
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
    coded = _code_votes(votes)
    cells, _ = _style_cells(coded, _length_feature(validate_votes(votes)), ties)
    return _fit_cells(
        cells,
        coded.models,
        bootstrap=bootstrap,
        rng=_rng(seed),
        sandwich=sandwich,
        anchor=anchor,
        scale=scale,
        base=base,
        initial=initial,
        reg=reg,
    )


# --------------------------------------------------------------------------------------
# Online Elo
# --------------------------------------------------------------------------------------


def _elo_scores(coded: _Coded) -> np.ndarray:
    """Score of model_a per vote: 1 win, 0 loss, 0.5 tie."""
    return np.array([1.0, 0.0, 0.5, 0.5])[coded.w]


def _elo_sequential(
    a: np.ndarray,
    b: np.ndarray,
    score: np.ndarray,
    ratings: list[float],
    *,
    k: float,
    scale: float,
    base: float,
) -> list[float]:
    """FastChat's compute_online_elo, exactly, as a tight loop over int codes (in place)."""
    r = ratings
    for ai, bi, sa in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        ra = r[ai]
        rb = r[bi]
        delta = k * (sa - 1.0 / (1.0 + base ** ((rb - ra) / scale)))
        r[ai] = ra + delta
        r[bi] = rb - delta
    return r


def _elo_batched(
    order: Any,
    coded: _Coded,
    score: np.ndarray,
    rounds: int,
    *,
    k: float,
    scale: float,
    base: float,
    initial: float,
) -> np.ndarray:
    """Online Elo for many vote sequences at once, stepping all rounds together.

    ``order(t0, t1)`` returns vote indices of shape (t1 - t0, rounds) for steps t0..t1.
    Returns ratings (rounds, models). Same arithmetic as the sequential loop.
    """
    n = len(coded.models)
    total = len(coded.a)
    r = np.full(rounds * n, float(initial))
    off = np.arange(rounds) * n
    chunk = max(1, 2_000_000 // rounds)
    for t0 in range(0, total, chunk):
        t1 = min(total, t0 + chunk)
        idx = order(t0, t1)
        ia = coded.a[idx] + off
        ib = coded.b[idx] + off
        sa = score[idx]
        for t in range(t1 - t0):
            x, y = ia[t], ib[t]
            ra = r[x]
            rb = r[y]
            delta = k * (sa[t] - 1.0 / (1.0 + base ** ((rb - ra) / scale)))
            r[x] = ra + delta
            r[y] = rb - delta
    return r.reshape(rounds, n)


def online_elo(
    votes: pl.DataFrame,
    *,
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    shuffles: int = 0,
    seed: int | np.random.Generator = 0,
) -> pl.DataFrame:
    """Online Elo in the order of the rows (LMArena's original compute_online_elo).

    Each vote moves the two ratings by ``k * (S_A - E_A)`` in opposite directions, with
    S_A = 1, 0 or 1/2 and E_A = 1 / (1 + base ** ((R_B - R_A) / scale)).

    Args:
        votes: Votes frame, in the order they were cast.
        k: Update step.
        scale: Elo scale.
        base: Elo base.
        initial: Everyone's starting rating.
        shuffles: If > 0, also replay the votes in that many random orders and report
            the median rating (``rating_median``), since online Elo depends on order.
        seed: Seed (or Generator) for the shuffles.

    Returns:
        One row per model, best first: model, rating, battles, wins, losses, ties
        (+ rating_median).
    """
    coded = _code_votes(votes)
    score = _elo_scores(coded)
    ratings = _elo_sequential(
        coded.a, coded.b, score, [float(initial)] * len(coded.models), k=k, scale=scale, base=base
    )
    frame = pl.DataFrame({"model": list(coded.models), "rating": ratings})
    if shuffles > 0:
        rng = _rng(seed)
        total = len(coded.a)
        medians = []
        per_batch = max(1, min(shuffles, 20_000_000 // max(total, 1)))
        runs = []
        done = 0
        while done < shuffles:
            size = min(per_batch, shuffles - done)
            perms = np.stack([rng.permutation(total) for _ in range(size)])

            def order(t0: int, t1: int, perms: np.ndarray = perms) -> np.ndarray:
                return np.ascontiguousarray(perms[:, t0:t1].T)

            runs.append(
                _elo_batched(
                    order, coded, score, size, k=k, scale=scale, base=base, initial=initial
                )
            )
            done += size
        medians = np.median(np.concatenate(runs), axis=0)
        frame = frame.with_columns(pl.Series("rating_median", medians))
    return frame.join(_records(coded), on="model").sort(
        ["rating", "model"], descending=[True, False]
    )


def _elo_bootstrap(
    coded: _Coded,
    rounds: int,
    rng: np.random.Generator,
    *,
    k: float,
    scale: float,
    base: float,
    initial: float,
) -> np.ndarray:
    """Online Elo on ``rounds`` resamples (with replacement, so in random order)."""
    total = len(coded.a)

    def order(t0: int, t1: int) -> np.ndarray:
        return rng.integers(0, total, size=(t1 - t0, rounds))

    return _elo_batched(
        order, coded, _elo_scores(coded), rounds, k=k, scale=scale, base=base, initial=initial
    )


# --------------------------------------------------------------------------------------
# Leaderboards
# --------------------------------------------------------------------------------------


def ranks_from_intervals(ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """rank_i = 1 + number of models whose lower bound is above model i's upper bound."""
    low = np.asarray(ci_low, dtype=float)
    high = np.asarray(ci_high, dtype=float)
    return 1 + (low[None, :] > high[:, None]).sum(axis=1)


def _intervals(
    rating: np.ndarray, samples: np.ndarray | None, sd: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if samples is not None:
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
        return low, high
    if sd is not None:
        return rating - _Z95 * sd, rating + _Z95 * sd
    return rating.copy(), rating.copy()


def leaderboard(
    votes: pl.DataFrame,
    *,
    method: Method = "bt",
    bootstrap: int = 1000,
    seed: int | np.random.Generator = 0,
    ci: CiMethod = "bootstrap",
    ties: Ties = "keep",
    anchor: tuple[str, float] | None = None,
    style_control: bool = False,
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    reg: float = DEFAULT_REG,
) -> pl.DataFrame:
    """A leaderboard with 95% confidence intervals and interval-based ranks.

    Args:
        votes: Votes frame.
        method: ``"bt"`` (Bradley-Terry MLE) or ``"elo"`` (online Elo; the rating is then
            the median over ``bootstrap`` resampled, hence reshuffled, replays, or the
            rating in row order when ``bootstrap`` is 0).
        bootstrap: Bootstrap rounds (``ci="bootstrap"``); 0 gives no interval.
        seed: Seed (or Generator) for the bootstrap.
        ci: ``"bootstrap"`` (percentiles 2.5 / 97.5) or ``"sandwich"`` (rating
            +- 1.96 robust standard errors; Bradley-Terry only).
        ties: ``"keep"`` (half a win each) or ``"drop"``. Elo always keeps ties.
        anchor: ``(model, value)`` pins that model's rating (its interval is then a point).
        style_control: Also fit with answer-length difference as a covariate (needs len_a,
            len_b) and add rating_sc, ci_low_sc, ci_high_sc, rank_sc.
        k: Elo update step (``method="elo"``).
        scale: Elo scale.
        base: Elo base.
        initial: Mean rating (Bradley-Terry) or starting rating (Elo).
        reg: Bradley-Terry prior precision (module docstring).

    Returns:
        One row per model, best first: model, rating, ci_low, ci_high, battles, wins,
        losses, ties, rank; rank = 1 + the number of models whose ci_low is above this
        model's ci_high. Without an interval, ci_low and ci_high are null and the rank
        comes from the ratings alone.
    """
    if method not in ("bt", "elo"):
        raise ValueError(f"method must be 'bt' or 'elo', not {method!r}")
    if ci not in ("bootstrap", "sandwich"):
        raise ValueError(f"ci must be 'bootstrap' or 'sandwich', not {ci!r}")
    if ties not in ("keep", "drop"):
        raise ValueError(f"ties must be 'keep' or 'drop', not {ties!r}")
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    rng = _rng(seed)
    coded = _code_votes(votes)
    models = coded.models
    if anchor is not None:
        _anchor_index(models, anchor)
    n_boot = bootstrap if ci == "bootstrap" else 0
    has_ci = ci == "sandwich" or n_boot > 0
    common: dict[str, Any] = {"anchor": anchor, "scale": scale, "base": base, "initial": initial}

    if method == "elo":
        if ci == "sandwich":
            raise ValueError("the sandwich interval exists for Bradley-Terry only (method='bt')")
        if style_control:
            raise ValueError("style control needs method='bt'")
        if n_boot > 0:
            samples = _elo_bootstrap(
                coded, n_boot, rng, k=k, scale=scale, base=base, initial=initial
            )
            if anchor is not None:
                idx = _anchor_index(models, anchor)
                samples = anchor[1] + samples - samples[:, idx : idx + 1]
            rating = np.median(samples, axis=0)
            low, high = _intervals(rating, samples, None)
        else:
            rating = np.array(
                _elo_sequential(
                    coded.a,
                    coded.b,
                    _elo_scores(coded),
                    [float(initial)] * len(models),
                    k=k,
                    scale=scale,
                    base=base,
                )
            )
            if anchor is not None:
                rating = anchor[1] + rating - rating[_anchor_index(models, anchor)]
            low, high = rating.copy(), rating.copy()
        columns = {"rating": rating, "ci_low": low, "ci_high": high}
    else:
        fit = _fit_cells(
            _pair_cells(coded, ties),
            models,
            bootstrap=n_boot,
            rng=rng,
            sandwich=ci == "sandwich",
            reg=reg,
            **common,
        )
        low, high = _intervals(fit.rating, fit.samples, fit.sd)
        columns = {"rating": fit.rating, "ci_low": low, "ci_high": high}
        if style_control:
            cells, _ = _style_cells(coded, _length_feature(votes), ties)
            sfit = _fit_cells(
                cells,
                models,
                bootstrap=n_boot,
                rng=rng,
                sandwich=ci == "sandwich",
                reg=reg,
                **common,
            )
            slow, shigh = _intervals(sfit.rating, sfit.samples, sfit.sd)
            columns |= {
                "rating_sc": sfit.rating,
                "ci_low_sc": slow,
                "ci_high_sc": shigh,
                "rank_sc": ranks_from_intervals(slow, shigh),
            }
    rank = ranks_from_intervals(columns["ci_low"], columns["ci_high"])
    frame = pl.DataFrame({"model": list(models), **columns, "rank": rank})
    if not has_ci:
        frame = frame.with_columns(
            pl.lit(None, pl.Float64).alias("ci_low"), pl.lit(None, pl.Float64).alias("ci_high")
        )
        if "ci_low_sc" in frame.columns:
            frame = frame.with_columns(
                pl.lit(None, pl.Float64).alias("ci_low_sc"),
                pl.lit(None, pl.Float64).alias("ci_high_sc"),
            )
    order = ["model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties", "rank"]
    order += [c for c in ("rating_sc", "ci_low_sc", "ci_high_sc", "rank_sc") if c in frame.columns]
    ranks = [pl.col(c).cast(pl.Int64) for c in ("rank", "rank_sc") if c in order]
    return (
        frame.join(_records(coded), on="model")
        .select(order)
        .with_columns(ranks)
        .sort(["rating", "model"], descending=[True, False])
    )


def leaderboard_by(votes: pl.DataFrame, by: str, **kw: Any) -> pl.DataFrame:
    """One leaderboard per value of column ``by`` (e.g. category, language), stacked.

    Args:
        votes: Votes frame with a column ``by``.
        by: Grouping column; null values form the group ``"(missing)"``.
        **kw: Passed to :func:`leaderboard`.

    Returns:
        The leaderboard columns with ``by`` in front, groups ordered by size (largest
        first), each group's models best first.
    """
    votes = validate_votes(votes)
    if by not in votes.columns:
        raise VotesFileError(f"cannot group by {by!r}: no such column")
    keyed = votes.with_columns(pl.col(by).cast(pl.String).fill_null("(missing)").alias(by))
    sizes = keyed.group_by(by).len().sort(["len", by], descending=[True, False])
    frames = []
    for value in sizes[by].to_list():
        part = keyed.filter(pl.col(by) == value)
        board = leaderboard(part, **kw)
        frames.append(board.select(pl.lit(value).alias(by), pl.all()))
    return pl.concat(frames, how="vertical")


# --------------------------------------------------------------------------------------
# Win rates
# --------------------------------------------------------------------------------------


def _wide(models: Sequence[str], matrix: np.ndarray) -> pl.DataFrame:
    data: dict[str, Any] = {"model": list(models)}
    for c, name in enumerate(models):
        data[name] = [None if math.isnan(v) else float(v) for v in matrix[:, c]]
    return pl.DataFrame(data, schema={"model": pl.String, **{m: pl.Float64 for m in models}})


def win_matrix(votes: pl.DataFrame, *, order: Sequence[str] | None = None) -> pl.DataFrame:
    """Empirical win rates: cell (row, col) is the share of row's decisive battles against
    col that row won (ties excluded, both seat positions pooled); null where none.

    Returns:
        A wide frame: column ``model`` (the row model), then one column per opponent, rows
        and columns in the same order: ``order`` if given, else by mean win rate.
    """
    coded = _code_votes(votes)
    n = len(coded.models)
    decisive = coded.w < 2
    a, b, w = coded.a[decisive], coded.b[decisive], coded.w[decisive]
    winner = np.where(w == 0, a, b)
    loser = np.where(w == 0, b, a)
    wins = np.bincount(winner * n + loser, minlength=n * n).reshape(n, n).astype(float)
    total = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(total > 0, wins / total, np.nan)
    np.fill_diagonal(rate, np.nan)
    models = list(coded.models)
    if order is None:
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(np.where(np.isnan(rate), np.nan, rate), axis=1)
        mean = np.nan_to_num(mean, nan=-1.0)
        idx = sorted(range(n), key=lambda i: (-mean[i], models[i]))
    else:
        unknown = [m for m in order if m not in models]
        if unknown:
            raise ValueError(f"unknown model in order: {unknown[0]!r}")
        idx = [models.index(m) for m in order]
    return _wide([models[i] for i in idx], rate[np.ix_(idx, idx)])


def predicted_win_matrix(
    ratings: pl.DataFrame, *, scale: float = 400.0, base: float = 10.0
) -> pl.DataFrame:
    """Win probabilities implied by ratings: P(row beats col) = 1 / (1 + base **
    ((R_col - R_row) / scale)), in the order of the ``ratings`` rows; diagonal null.

    Args:
        ratings: A frame with columns model and rating (e.g. from :func:`leaderboard`).
    """
    models = ratings["model"].to_list()
    r = ratings["rating"].cast(pl.Float64).to_numpy()
    prob = 1.0 / (1.0 + base ** ((r[None, :] - r[:, None]) / scale))
    np.fill_diagonal(prob, np.nan)
    return _wide(models, prob)


# --------------------------------------------------------------------------------------
# Rating over time
# --------------------------------------------------------------------------------------


def rating_history(
    votes: pl.DataFrame,
    *,
    method: Method = "bt",
    points: int = 20,
    time_column: str = "tstamp",
    ties: Ties = "keep",
    anchor: tuple[str, float] | None = None,
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    initial: float = 1000.0,
    reg: float = DEFAULT_REG,
) -> pl.DataFrame:
    """Ratings as the votes came in, at ``points`` evenly spaced checkpoints.

    Votes are taken in ``time_column`` order when that column exists, else in row order.
    For ``"bt"`` each checkpoint is a fit on all votes up to it (all checkpoints solved
    together); for ``"elo"`` it is the online rating at that moment.

    Returns:
        Long frame: votes (number of votes so far), time (the checkpoint vote's
        ``time_column`` value, null without one), model, rating. A model appears from the
        first checkpoint after its first battle.
    """
    votes = validate_votes(votes)
    has_time = time_column in votes.columns
    if has_time:
        votes = votes.sort(time_column, maintain_order=True, nulls_last=True)
    coded = _code_votes(votes)
    total = len(coded.a)
    points = max(1, min(points, total))
    marks = np.unique(np.ceil(np.linspace(0, total, points + 1)[1:]).astype(np.int64))
    n = len(coded.models)
    first_seen = np.full(n, total + 1)
    order = np.arange(total)
    np.minimum.at(first_seen, coded.a, order + 1)
    np.minimum.at(first_seen, coded.b, order + 1)

    if method == "elo":
        score = _elo_scores(coded)
        r = [float(initial)] * n
        snaps = []
        prev = 0
        for m in marks:
            _elo_sequential(
                coded.a[prev:m], coded.b[prev:m], score[prev:m], r, k=k, scale=scale, base=base
            )
            snaps.append(np.array(r))
            prev = m
        table = np.array(snaps)
        if anchor is not None:
            idx = _anchor_index(coded.models, anchor)
            table = anchor[1] + table - table[:, idx : idx + 1]
    elif method == "bt":
        cells = _pair_cells(coded, ties)
        lo, hi, out, _ = _canonical(coded.a, coded.b, coded.w)
        cell_keys = cells.i * n + cells.j  # ascending
        key = lo * n + hi
        pos = np.minimum(np.searchsorted(cell_keys, key), max(len(cell_keys) - 1, 0))
        found = cell_keys[pos] == key if len(cell_keys) else np.zeros(total, bool)
        keep = found if ties == "keep" else found & (out != 2)
        flat = np.where(keep, pos * 3 + out, -1)
        counts = np.zeros((len(marks), len(cells.i) * 3))
        for row, m in enumerate(marks):
            f = flat[:m]
            counts[row] = np.bincount(f[f >= 0], minlength=len(cells.i) * 3)
        design = _Design(cells)
        s, nn = _s_n(counts.reshape(len(marks), -1, 3))
        theta = _newton(design, s, nn, reg)[:, :n]
        if anchor is not None:
            _anchor_index(coded.models, anchor)
        # centre on the models seen so far, so newcomers do not shift everyone else
        table = np.empty_like(theta)
        alpha = math.log(base) / scale
        for row, m in enumerate(marks):
            seen = first_seen <= m
            t = theta[row]
            if anchor is not None:
                k_idx = _anchor_index(coded.models, anchor)
                table[row] = anchor[1] + (t - t[k_idx]) / alpha
            else:
                table[row] = initial + (t - t[seen].mean()) / alpha
    else:
        raise ValueError(f"method must be 'bt' or 'elo', not {method!r}")

    times: list[Any]
    if has_time:
        col = votes[time_column]
        times = [col[int(m) - 1] for m in marks]
    else:
        times = [None] * len(marks)
    rows_votes, rows_time, rows_model, rows_rating = [], [], [], []
    for row, m in enumerate(marks):
        for c, name in enumerate(coded.models):
            if first_seen[c] <= m:
                rows_votes.append(int(m))
                rows_time.append(times[row])
                rows_model.append(name)
                rows_rating.append(float(table[row, c]))
    time_dtype = votes.schema[time_column] if has_time else pl.Null
    return pl.DataFrame(
        {
            "votes": pl.Series(rows_votes, dtype=pl.Int64),
            "time": pl.Series(rows_time, dtype=time_dtype),
            "model": pl.Series(rows_model, dtype=pl.String),
            "rating": pl.Series(rows_rating, dtype=pl.Float64),
        }
    )
