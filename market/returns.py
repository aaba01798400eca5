"""Forward returns and cross-sectional neutralization on dense ``[D, S]`` arrays (numpy only).

Forward return convention (SPEC 1): the signal computed after the close of day t is
traded at the close of t+1, so the h-day label of day t is
``adj_close[t+1+h] / adj_close[t+1] - 1``. It is NaN when the stock has no bar at t+1
(cannot be bought), when t+1+h is past the data end, or when the stock delisted
before t+1+h. A suspension at t+1+h uses the last traded adjusted close (the holding
is still worth its last price), which is the forward-filled adjusted close.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np

from market.panel import Panel


def forward_fill(a: np.ndarray, have: np.ndarray, parallel: bool = False) -> np.ndarray:
    """Forward-fill ``a`` [D, S] along days from rows where ``have`` is True.

    Day t gets ``a`` at the last day <= t where ``have`` holds; NaN before the first one.
    Same dtype as ``a`` (floating). One compiled pass (:func:`_forward_fill_rows`;
    ``parallel``: blocks of stocks on every core, same values).
    """
    a = np.asarray(a)
    if a.shape != have.shape or a.ndim != 2:
        raise ValueError(f"forward_fill needs two [D, S] arrays, got {a.shape}, {have.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"forward_fill needs floating values (NaN fill), got {a.dtype}")
    kernel = _forward_fill_rows_parallel if parallel else _forward_fill_rows
    return kernel(np.ascontiguousarray(a), np.ascontiguousarray(have, dtype=bool))


@numba.njit(cache=True, nogil=True, inline="always")
def _forward_fill_block(a, have, lo, hi, out):  # pragma: no cover - compiled
    for j in range(lo, hi):
        out[0, j] = a[0, j] if have[0, j] else np.nan
    for i in range(1, a.shape[0]):
        for j in range(lo, hi):
            out[i, j] = a[i, j] if have[i, j] else out[i - 1, j]


@numba.njit(cache=True, nogil=True)
def _forward_fill_rows(a, have):  # pragma: no cover - compiled
    out = np.empty_like(a)
    if a.shape[0]:
        _forward_fill_block(a, have, 0, a.shape[1], out)
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _forward_fill_rows_parallel(a, have):  # pragma: no cover - compiled
    out = np.empty_like(a)
    s = a.shape[1]
    if a.shape[0]:
        for blk in numba.prange((s + 255) // 256):  # stocks are independent
            _forward_fill_block(a, have, blk * 256, min(blk * 256 + 256, s), out)
    return out


def forward_returns(panel: Panel, horizon: int, entry_lag: int = 1) -> np.ndarray:
    """[D, S] float64 return from close of t+entry_lag to close of t+entry_lag+horizon.

    Adjusted closes forward-filled over suspensions; the entry needs a bar on day
    t+entry_lag, the exit a listed stock on day t+entry_lag+horizon (after delisting the
    exit is unknown); NaN otherwise and for the last days. The one definition of forward
    returns: labels, the backtest and the rolling summaries all come here.
    """
    adj = np.asarray(panel["adj_close"], dtype=np.float64)
    return forward_returns_from_price(forward_fill(adj, ~np.isnan(adj)), panel.listed,
                                      panel.valid, horizon, entry_lag)


def forward_returns_from_price(price: np.ndarray, listed: np.ndarray, valid: np.ndarray,
                               horizon: int, entry_lag: int = 1,
                               parallel: bool = False) -> np.ndarray:
    """:func:`forward_returns` from an already forward-filled float64 price [D, S]:
    ``price[t+e+h] / price[t+e] - 1`` where ``valid[t+e]``, ``listed[t+e]`` and
    ``listed[t+e+h]`` hold (one compiled pass; ``parallel``: rows on every core, for the
    backtest, which runs parallel kernels anyway; the same row function either way)."""
    if horizon < 1 or entry_lag < 0:
        raise ValueError(f"horizon must be >= 1 and entry_lag >= 0, got {horizon}, {entry_lag}")
    c = np.ascontiguousarray
    kernel = _forward_rows_parallel if parallel else _forward_rows
    return kernel(c(price, dtype=np.float64), c(listed, dtype=bool), c(valid, dtype=bool),
                  horizon, entry_lag)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _forward_row(price, listed, valid, horizon, lag, t, row):  # pragma: no cover - compiled
    """Day ``t``'s forward returns into ``row`` (NaN where undefined)."""
    row[:] = np.nan
    e = t + lag
    if e + horizon >= price.shape[0]:
        return
    for j in range(price.shape[1]):
        if valid[e, j] and listed[e, j] and listed[e + horizon, j]:
            row[j] = price[e + horizon, j] / price[e, j] - 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _forward_rows(price, listed, valid, horizon, lag):  # pragma: no cover - compiled
    # one thread: a memory-bound pass (~0.05 s on the full market), and no thread pool to
    # start in processes (the DataModule's) that use no other parallel kernel
    out = np.empty(price.shape)
    for t in range(price.shape[0]):
        _forward_row(price, listed, valid, horizon, lag, t, out[t])
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def forward_returns_block(price, listed, valid, horizon, lag, lo, hi,
                          out):  # pragma: no cover - compiled
    """Rows ``lo:hi`` of :func:`forward_returns_from_price` into ``out`` [D, S] float64
    (compiled, frees the GIL: for computing blocks while they are sorted)."""
    for t in range(lo, hi):
        _forward_row(price, listed, valid, horizon, lag, t, out[t])


@numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def _forward_rows_parallel(price, listed, valid, horizon, lag):  # pragma: no cover
    out = np.empty(price.shape)
    for t in numba.prange(price.shape[0]):
        _forward_row(price, listed, valid, horizon, lag, t, out[t])
    return out


def neutralize(y: np.ndarray, exposure: np.ndarray, groups: np.ndarray,
               mask: np.ndarray) -> np.ndarray:
    """Per-day OLS residual of ``y`` on ``[industry dummies, exposure]`` over ``mask``.

    y, exposure: [D, S] float; groups: [D, S] int industry ids (>= 0); mask: [D, S] bool
    (stocks entering the regression: finite y and exposure required too). Returns [D, S]
    residuals, NaN outside the mask. Exact OLS via Frisch-Waugh-Lovell: demean y and the
    exposure within (day, industry), then regress the demeaned y on the demeaned
    exposure per day. Vectorized over all days (no loop over days or stocks).
    """
    m = mask & np.isfinite(y) & np.isfinite(exposure)
    d_idx, s_idx = np.nonzero(m)
    n_groups = int(groups.max()) + 1 if groups.size else 1
    key = d_idx * n_groups + groups[d_idx, s_idx]
    yv, xv = y[d_idx, s_idx].astype(np.float64), exposure[d_idx, s_idx].astype(np.float64)
    size = len(y) * n_groups
    cnt = np.bincount(key, minlength=size)
    cnt = np.maximum(cnt, 1)
    yt = yv - (np.bincount(key, yv, size) / cnt)[key]
    xt = xv - (np.bincount(key, xv, size) / cnt)[key]
    sxy = np.bincount(d_idx, xt * yt, len(y))
    sxx = np.bincount(d_idx, xt * xt, len(y))
    beta = np.divide(sxy, sxx, out=np.zeros_like(sxy), where=sxx > 1e-12)
    out = np.full(y.shape, np.nan)
    out[d_idx, s_idx] = yt - beta[d_idx] * xt
    return out


def cross_sectional_rank(y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-day rank of ``y`` mapped to [-0.5, 0.5]-centred uniform scores, then z-scored.

    Average ranks for ties; NaN outside ``mask``/non-finite. Returns [D, S].
    """
    from scipy.stats import rankdata

    m = np.isfinite(y) if mask is None else mask & np.isfinite(y)
    filled = np.where(m, y, np.nan)
    r = rankdata(filled, axis=1, method="average", nan_policy="omit")
    n = m.sum(axis=1, keepdims=True)
    u = (r - 0.5) / np.maximum(n, 1) - 0.5
    return cross_sectional_zscore(np.where(m, u, np.nan))


def cross_sectional_zscore(y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-day (row) z-score over finite entries in ``mask``; std with ddof=0; constant day -> 0."""
    m = np.isfinite(y) if mask is None else mask & np.isfinite(y)
    v = np.where(m, y, np.nan)
    with warnings.catch_warnings():  # days without stocks give NaN statistics, masked below
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(v, axis=1, keepdims=True)
        sd = np.nanstd(v, axis=1, keepdims=True)
    z = np.divide(v - mu, sd, out=np.zeros_like(v), where=sd > 1e-12)
    return np.where(m, z, np.nan)


def daily_rank_ic(score: np.ndarray, label: np.ndarray, mask: np.ndarray | None = None,
                  min_stocks: int = 2) -> np.ndarray:
    """[D] Spearman correlation per day over ``mask`` & finite score & finite label.

    Both sides are ranked (average ties) among the same stocks; NaN on days with fewer
    than ``min_stocks`` stocks or a constant side.
    """
    m = np.isfinite(score) & np.isfinite(label)
    if mask is not None:
        m &= mask
    with warnings.catch_warnings():  # days without stocks: NaN, on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        zs, zl = cross_sectional_rank(score, m), cross_sectional_rank(label, m)
        ic = np.nanmean(zs * zl, axis=1)
    return np.where(m.sum(axis=1) >= min_stocks, ic, np.nan)
