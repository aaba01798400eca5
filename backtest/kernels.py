"""Numeric kernels on dense ``[D, S]`` arrays (day x stock), numpy/scipy only.

Cross-sectional kernels work row by row (one row = one day's cross-section) without a
Python loop over days or stocks; time-series kernels run along axis 0 for every stock
at once. Missing values are NaN (or excluded by a boolean mask) throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SortedRows:
    """Each row of ``x`` [D, S] sorted once; average ranks within any mask in O(D S).

    ``ranks(mask)`` equals ``rank_rows(where(mask, x, nan))`` but reuses the sort: the
    ordinal rank of a masked entry is the running count of masked entries in sorted
    order, and a tie block's masked entries share the mean of their ordinal ranks (only
    entries inside tie blocks are touched for that).
    """

    def __init__(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.finite = np.isfinite(x)
        filled = np.where(self.finite, x, np.inf)  # non-finite sort last
        order = np.argsort(filled, axis=1)
        # flat positions of the sorted entries: 1-d take / put are 1.5-3x faster than
        # take_along_axis / put_along_axis on [2,400 x 3,800] (measured)
        d, n = filled.shape
        self.lin = (order + (np.arange(d, dtype=np.int64) * n)[:, None]).ravel()
        s = np.take(filled.ravel(), self.lin).reshape(d, n)
        tie = (s[:, 1:] == s[:, :-1]) & np.isfinite(s[:, 1:])
        self.tie_pos = self.tie_first = self.tie_last = None
        if tie.any():  # flat positions inside tie blocks, with their block's first / last
            in_block = np.zeros(s.shape, bool)
            in_block[:, 1:] = tie
            in_block[:, :-1] |= tie
            pos = np.flatnonzero(in_block)
            opens = np.ones(pos.size, bool)  # a tie entry opens a block unless it ties left
            opens[1:] = ~tie.ravel()[pos[1:] - 1 - (pos[1:] // s.shape[1])] \
                | (pos[1:] % s.shape[1] == 0)
            first = pos[opens]
            block = np.cumsum(opens) - 1
            last = np.append(pos[np.flatnonzero(opens)[1:] - 1], pos[-1])
            self.tie_pos, self.tie_first, self.tie_last = pos, first[block], last[block]

    def ranks(self, mask: np.ndarray | None = None) -> np.ndarray:
        """[D, S] average ranks (1..n) among the finite entries in ``mask``; NaN elsewhere."""
        m = self.finite if mask is None else self.finite & mask
        ms = np.take(np.ascontiguousarray(m).ravel(), self.lin).reshape(m.shape)
        flat = np.cumsum(ms.ravel(), dtype=np.int64)  # one 1-d scan, then row offsets
        base = np.concatenate([[0], flat[ms.shape[1] - 1::ms.shape[1]][:-1]])
        cum = (flat.reshape(ms.shape) - base[:, None]).astype(np.float64)
        if self.tie_pos is not None:
            c, mf = cum.ravel(), ms.ravel()
            f, last = self.tie_first, self.tie_last
            c[self.tie_pos] = (c[f] - mf[f] + 1.0 + c[last]) / 2.0
        out = np.empty(ms.shape)
        out.ravel()[self.lin] = np.where(ms, cum, np.nan).ravel()
        return out


def rank_rows(x: np.ndarray) -> np.ndarray:
    """[D, S] average ranks (1..n_d, ties share their mean rank) of each row's finite values.

    Non-finite entries get NaN and take no part in the ranking of their row.
    """
    return SortedRows(x).ranks()


def row_corr(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None,
             min_count: int = 3) -> np.ndarray:
    """[D] Pearson correlation of ``x`` and ``y`` within each row.

    Uses the entries where ``mask`` (default all) holds and both values are finite. A row
    with fewer than ``min_count`` such entries, or a constant side, gives NaN. Two-pass
    (centred) sums, so a large common offset does not cost precision.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = np.isfinite(x) & np.isfinite(y)
    if mask is not None:
        m &= mask
    n = m.sum(axis=1)
    safe_n = np.maximum(n, 1)
    mf = m.astype(np.float64)
    dx = np.where(m, x, 0.0)
    dy = np.where(m, y, 0.0)
    scale_x = np.einsum("ij,ij->i", dx, dx)
    scale_y = np.einsum("ij,ij->i", dy, dy)
    dx -= (dx.sum(axis=1) / safe_n)[:, None]
    dy -= (dy.sum(axis=1) / safe_n)[:, None]
    dx *= mf  # centred inside the mask, 0 outside
    dy *= mf
    vx, vy = np.einsum("ij,ij->i", dx, dx), np.einsum("ij,ij->i", dy, dy)
    cov = np.einsum("ij,ij->i", dx, dy)
    # a constant row has vx ~ 1e-32 * sum(x^2) from rounding, not 0: compare relatively
    ok = (n >= min_count) & (vx > 1e-20 * scale_x) & (vy > 1e-20 * scale_y)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cov / np.sqrt(vx * vy)
    return np.where(ok, np.clip(r, -1.0, 1.0), np.nan)


def row_rank_corr(x: np.ndarray | SortedRows, y: np.ndarray | SortedRows,
                  mask: np.ndarray | None = None, min_count: int = 3) -> np.ndarray:
    """[D] Spearman correlation per row: Pearson of average ranks taken over the joint mask.

    ``x`` / ``y`` may be :class:`SortedRows` built beforehand (to share one sort between
    several masks or partners).
    """
    sx = x if isinstance(x, SortedRows) else SortedRows(x)
    sy = y if isinstance(y, SortedRows) else SortedRows(y)
    m = sx.finite & sy.finite
    if mask is not None:
        m &= mask
    return row_corr(sx.ranks(m), sy.ranks(m), m, min_count)


def ewm_window_sum(x: np.ndarray, window: int, halflife: float | None = None,
                   lag: int = 0) -> np.ndarray:
    """[D, S] sum_{k=0}^{window-1} lam^k * x[t - lag - k] along axis 0, NaN counted as 0.

    ``lam = 0.5 ** (1 / halflife)`` (``halflife=None``: lam = 1, a plain rolling sum).
    Only rows ``<= t - lag`` enter row t (no look-ahead); rows before the start count as 0.
    Computed exactly as ``E[t] - lam^window * E[t - window]`` with the infinite EWMA
    ``E[t] = x[t] + lam * E[t-1]`` (:func:`decay_scan`, O(D S)).
    """
    if window < 1 or lag < 0:
        raise ValueError(f"window must be >= 1 and lag >= 0, got {window}, {lag}")
    x0 = np.asarray(x, dtype=np.float64)
    out = np.where(np.isfinite(x0), x0, 0.0)
    lam = 1.0 if halflife is None else 0.5 ** (1.0 / halflife)
    decay_scan(out, lam)
    out[window:] -= lam ** window * out[:-window]  # the right side is evaluated first
    if lag:
        out = np.vstack([np.zeros((lag, *out.shape[1:])), out[:-lag]])
    return out


def decay_scan(x: np.ndarray, lam: float = 1.0) -> np.ndarray:
    """In place along axis 0: ``x[t] += lam * x[t-1]`` (lam = 1: a cumulative sum).

    A loop over days with whole-row vector operations: rows are contiguous, so this is
    several times faster than ``scipy.signal.lfilter`` or ``cumsum`` along axis 0 of a
    C-ordered [D, S] array (measured 0.07 s vs 0.55 s / 0.35 s at 2,500 x 4,000).
    """
    if lam == 1.0:
        for t in range(1, x.shape[0]):
            np.add(x[t], x[t - 1], out=x[t])
    else:
        for t in range(1, x.shape[0]):
            x[t] += lam * x[t - 1]
    return x


def ewm_weight_sum(have: np.ndarray, window: int, halflife: float | None = None,
                   lag: int = 0) -> np.ndarray:
    """[D, S] sum of the weights ``lam^k`` over observed rows (``have`` True) in the window."""
    return ewm_window_sum(have.astype(np.float64), window, halflife, lag)


def cross_sectional_residual(y: np.ndarray, regressors: Sequence[np.ndarray], mask: np.ndarray,
                             weights: np.ndarray | None = None) -> np.ndarray:
    """[D, S] per-day (weighted) OLS residual of ``y`` on ``[1, *regressors]``.

    Fitted per row over ``mask`` & all inputs finite (& weight > 0); NaN elsewhere. Days
    with no more stocks than coefficients give NaN. The K x K normal equations of every
    day are assembled from row sums of 2-d products (no [D, S, K] array) and solved at once.
    """
    m = mask & np.isfinite(y)
    for r in regressors:
        m &= np.isfinite(r)
    if weights is not None:
        m &= np.isfinite(weights) & (weights > 0)
    w = m.astype(np.float64) if weights is None else np.where(m, weights, 0.0)
    cols = [w, *(np.where(m, r, 0.0) * w for r in regressors)]  # weighted columns w * x_k
    raw = [np.ones(1), *(np.where(m, r, 0.0) for r in regressors)]
    k = len(cols)
    y0 = np.where(m, y, 0.0)
    xtx = np.empty((y.shape[0], k, k))
    for a in range(k):
        for b in range(a, k):
            xtx[:, a, b] = xtx[:, b, a] = (np.einsum("ij,ij->i", cols[a], raw[b]) if b
                                           else cols[a].sum(axis=1))
    xty = np.stack([np.einsum("ij,ij->i", c, y0) for c in cols], axis=1)  # [D, K]
    ok = m.sum(axis=1) > k
    xtx[~ok] = np.eye(k)
    xty[~ok] = 0.0
    ridge = 1e-12 * np.trace(xtx, axis1=1, axis2=2)[:, None, None] * np.eye(k)
    beta = np.linalg.solve(xtx + ridge, xty[..., None])[..., 0]  # [D, K]
    resid = y - beta[:, :1]
    for j in range(1, k):
        resid = resid - beta[:, j:j + 1] * raw[j]
    return np.where(m & ok[:, None], resid, np.nan)
