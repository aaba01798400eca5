"""Compiled portfolio kernels: the rebalanced-portfolio simulation, adjusted trade prices
and the equal-weight market benchmark."""

from __future__ import annotations

import math

import numba
import numpy as np

from backtest.jit._options import JIT


@numba.njit(inline="always", **JIT)
def _growth(num, den):  # pragma: no cover - compiled
    """``nan_to_num(num / den)`` as numpy computes it (NaN -> 0, +-inf -> +-max float)."""
    r = num / den
    if math.isnan(r):
        return 0.0
    if math.isinf(r):
        return 1.7976931348623157e308 if r > 0 else -1.7976931348623157e308
    return r


@numba.njit(parallel=True, **JIT)
def simulate_rows(price, trade_price, t, nxt, last_mark, idx, counts, fee):  # pragma: no cover
    """Compiled core of :func:`backtest.portfolio.simulate` (same model and outputs).

    Per period i (parallel): the value relative to the entry at every marked day
    ``rel[l] = w sum nan_to_num(price[t_i + l] / X[t_i]) + cash`` (l = 0..last_mark_i),
    the value at the next trade price ``v_exit``, and the one-sided turnover against the
    previous period's drifted weights. Then the daily returns are chained in order.
    Returns (gross [D], net [D], turnover [T]) with gross / net NaN outside the periods.
    """
    d, s = price.shape
    n_trades = t.shape[0]
    first = np.empty(n_trades)  # rel[i, 0]
    at_last = np.empty(n_trades)  # rel[i, last_mark_i]
    v_exit = np.empty(n_trades)
    turnover = np.empty(n_trades)
    gross = np.full(d, np.nan)
    net = np.full(d, np.nan)
    for i in numba.prange(n_trades):
        c = counts[i]
        ti = t[i]
        cash = 1.0 if c == 0 else 0.0
        w = 1.0 / c if c > 0 else 0.0
        cols = idx[i, :c]
        x0 = np.empty(c)  # entry prices, gathered once per period
        for q in range(c):
            x0[q] = trade_price[ti, cols[q]]
        prev = 0.0
        for l in range(last_mark[i] + 1):
            row = ti + l
            acc = 0.0
            for q in range(c):
                acc += _growth(price[row, cols[q]], x0[q])
            rel = acc * w + cash
            if l == 0:
                first[i] = rel
            else:
                gross[row] = rel / prev - 1.0
                net[row] = gross[row]
            prev = rel
        at_last[i] = prev
        acc = 0.0
        for q in range(c):
            acc += _growth(trade_price[nxt[i], cols[q]], x0[q])
        v_exit[i] = acc * w + cash
        # turnover at trade i: new weights vs period i-1's weights drifted to X[t_i]
        new_sum = w * c
        if i == 0:
            turnover[i] = max(new_sum, 0.0) / 2.0
            continue
        cp = counts[i - 1]
        tp = t[i - 1]
        wp = 1.0 / cp if cp > 0 else 0.0
        vp = 0.0
        for q in range(cp):
            j = idx[i - 1, q]
            vp += _growth(trade_price[ti, j], trade_price[tp, j]) * wp
        vp += 1.0 if cp == 0 else 0.0
        old = np.zeros(s)
        old_sum = 0.0
        for q in range(cp):
            j = idx[i - 1, q]
            dw = _growth(trade_price[ti, j], trade_price[tp, j]) / vp * wp
            if dw > 0:
                old[j] = dw
                old_sum += dw
        common = 0.0
        for q in range(c):
            j = idx[i, q]
            if old[j] > 0:
                common += min(w, old[j])
        turnover[i] = max(new_sum + old_sum - 2.0 * common, 0.0) / 2.0
    for i in range(n_trades):
        exit_leg = 1.0 if i == 0 else v_exit[i - 1] / at_last[i - 1]
        gross[t[i]] = exit_leg * first[i] - 1.0
        net[t[i]] = exit_leg * (1.0 - turnover[i] * fee) * first[i] - 1.0
    return gross, net, turnover


@numba.njit(parallel=True, **JIT)
def adjusted_price_rows(raw, close, adj_close, price):  # pragma: no cover - compiled
    """[D, S] ``raw x (adj_close / close)`` in float64 where finite and > 0, else ``price``."""
    d, s = price.shape
    out = np.empty((d, s))
    for i in numba.prange(d):
        for j in range(s):
            a = np.float64(raw[i, j]) * (np.float64(adj_close[i, j]) / np.float64(close[i, j]))
            out[i, j] = a if math.isfinite(a) and a > 0 else price[i, j]
    return out


@numba.njit(parallel=True, **JIT)
def market_mean_rows(price, universe, valid, listed):  # pragma: no cover - compiled
    """[D] mean of ``price[t] / price[t-1] - 1`` over yesterday's universe members with a bar
    yesterday and still listed today (a non-finite return counts 0); NaN without members."""
    d, s = price.shape
    out = np.full(d, np.nan)
    for t in numba.prange(1, d):
        n = 0
        total = 0.0
        for j in range(s):
            if universe[t - 1, j] and valid[t - 1, j] and listed[t, j]:
                n += 1
                r = price[t, j] / price[t - 1, j] - 1.0
                if math.isfinite(r):
                    total += r
        if n:
            out[t] = total / n
    return out


__all__ = ["simulate_rows", "adjusted_price_rows", "market_mean_rows"]
