"""Training labels (SPEC 1): neutralized, per-day standardized forward returns.

``label[t, s]`` = the h-day forward return from the close of t+1 to the close of t+1+h
(:func:`market.returns.forward_returns`), residualized per day against log total market
cap and industry dummies by OLS over the day's eligible stocks, then per day either
ranked (mapped to uniform scores and z-scored; for the IC loss) or z-scored (for MSE).
Only prices after t enter the label of day t, and the split logic keeps every training
label's last price before the first validation day.

Forward returns come from :func:`market.returns.forward_returns` (compiled). The functions
below compute :mod:`market.returns`'s ``neutralize`` and ``cross_sectional_rank`` (the
plain reference, kept there) bit-identically: the same
floating-point operations with every sum accumulated in the same order, but row by row
on cache-sized arrays instead of scipy's rankdata, 2-D fancy indexing and index
accumulations over the whole ``[D, S]`` arrays (labels of the full A-share market: 4.6 s
-> under 1 s, docs/speed.md). ``tests/test_data_speed_equivalence.py`` checks them against
the reference; the z-score transform (not the default) is the reference's own.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from market.panel import Panel
from market.returns import cross_sectional_zscore, forward_returns


def log_market_cap(panel: Panel) -> np.ndarray:
    """[D, S] log total market cap, NaN where unknown or non-positive."""
    mcap = panel.market_cap()
    out = np.full(mcap.shape, np.nan)
    with np.errstate(invalid="ignore"):  # NaN market caps compare False: stay NaN
        return np.log(mcap, out=out, where=mcap > 0)


def ols_residuals(y: np.ndarray, exposure: np.ndarray, groups: np.ndarray,
                  mask: np.ndarray) -> np.ndarray:
    """Per-day OLS residual of ``y`` on ``[industry dummies, exposure]`` over ``mask``:
    :func:`market.returns.neutralize` (Frisch-Waugh-Lovell, see there), bit-identical.

    One pass over the days on each day's regression stocks (cache-sized arrays instead of
    ``[D, S]`` gathers): every ``bincount`` sum takes the same terms in the same order as
    the reference's (its flat stock-days are row-major, so within a day and industry they
    come in stock order too).
    """
    m = mask & np.isfinite(y) & np.isfinite(exposure)
    n_groups = int(groups.max()) + 1 if groups.size else 1
    out = np.full(y.shape, np.nan)
    for day in range(len(y)):
        idx = np.flatnonzero(m[day])
        if not len(idx):
            continue
        g = groups[day, idx]
        yv = y[day, idx].astype(np.float64, copy=False)
        xv = exposure[day, idx].astype(np.float64, copy=False)
        cnt = np.maximum(np.bincount(g, minlength=n_groups), 1)
        yt = yv - (np.bincount(g, yv, n_groups) / cnt)[g]
        xt = xv - (np.bincount(g, xv, n_groups) / cnt)[g]
        one = np.zeros(len(idx), np.intp)  # a sequential sum, as the reference's per-day one
        sxy = np.bincount(one, xt * yt, 1)[0]
        sxx = np.bincount(one, xt * xt, 1)[0]
        beta = sxy / sxx if sxx > 1e-12 else 0.0
        out[day, idx] = yt - beta * xt
    return out


def cross_sectional_rank(y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """:func:`market.returns.cross_sectional_rank`, bit-identical: per-day average ranks
    (ties averaged, as ``scipy.stats.rankdata``) mapped to uniform scores
    ``(r - 0.5) / n - 0.5``, then z-scored (std with ddof=0; a constant day -> 0); NaN
    outside ``mask`` / non-finite.

    One pass over the days: each day sorts only its own finite values (numpy's SIMD sort,
    no NaN handling) and standardizes them with the reference's own sums (``nanmean`` /
    ``nanstd`` = sums over the whole day row with 0 outside the mask, in the same order),
    instead of scipy's rankdata and four ``[D, S]`` nan-reductions (5x faster).
    """
    m = np.isfinite(y) if mask is None else mask & np.isfinite(y)
    d, s = y.shape
    out = np.full((d, s), np.nan)
    full = np.zeros(s)
    for day in range(d):
        inside = m[day]
        idx = np.flatnonzero(inside)
        k = len(idx)
        if k == 0:
            continue
        order = np.argsort(y[day, idx])
        ranked = y[day, idx[order]]
        r = np.arange(1.0, k + 1)  # rank of the j-th smallest, unless tied
        tied = ranked[1:] == ranked[:-1]
        if tied.any():  # every tied run gets its mean rank
            start = np.flatnonzero(np.r_[True, ~tied])
            end = np.r_[start[1:], k]  # exclusive
            r = np.repeat((start + 1 + end) / 2.0, end - start)
        r -= 0.5
        r /= k
        r -= 0.5
        full[:] = 0.0  # the reference's nan-reductions: 0 outside the mask, row order
        full[idx[order]] = r
        dev = full - full.sum() / k
        dev[~inside] = 0.0
        sd = np.sqrt((dev * dev).sum() / k)
        out[day, idx] = dev[idx] / sd if sd > 1e-12 else 0.0
    return out


def make_labels(panel: Panel, horizon: int, eligible: np.ndarray,
                transform: Literal["rank", "zscore", "raw"] = "rank",
                neutralize: bool = True, log_mcap: np.ndarray | None = None) -> np.ndarray:
    """[D, S] float32 labels, NaN where the stock is not eligible or the return is unknown.

    ``log_mcap``: :func:`log_market_cap` of ``panel`` when the caller has it already.
    """
    fwd = forward_returns(panel, horizon)
    mask = eligible & np.isfinite(fwd)
    if neutralize:
        lmc = log_market_cap(panel) if log_mcap is None else log_mcap
        mask &= np.isfinite(lmc)
        y = ols_residuals(fwd, lmc, panel.industry, mask)
    else:
        y = np.where(mask, fwd, np.nan)
    if transform == "rank":
        y = cross_sectional_rank(y, mask)
    elif transform == "zscore":
        y = cross_sectional_zscore(y, mask)
    elif transform != "raw":
        raise ValueError(f"label transform must be 'rank', 'zscore' or 'raw', got {transform!r}")
    return y.astype(np.float32)
