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
def simulate_rows(price, trade_prices, t, nxt, last_mark, idx, counts,
                  fee):  # pragma: no cover - compiled
    """Compiled core of :func:`backtest.portfolio.simulate_many` (same model and outputs).

    ``trade_prices``: a tuple of K [D, S] trade prices, simulated together: the holdings
    and trade days are the same, so each marked day's closes are gathered once for all K
    (the bulk of the work), each with its own entry prices.

    Per period i (parallel): the value relative to the entry at every marked day
    ``rel[l] = w sum nan_to_num(price[t_i + l] / X[t_i]) + cash`` (l = 0..last_mark_i),
    the value at the next trade price ``v_exit``, and the one-sided turnover against the
    previous period's drifted weights. Then the daily returns are chained in order.
    Returns (gross [K, D], net [K, D], turnover [K, T]) with gross / net NaN outside the
    periods; each k is what a separate run on ``trade_prices[k]`` alone gives, bit for bit.
    """
    d, s = price.shape
    n_k = len(trade_prices)
    n_trades = t.shape[0]
    first = np.empty((n_k, n_trades))  # rel[i, 0]
    at_last = np.empty((n_k, n_trades))  # rel[i, last_mark_i]
    v_exit = np.empty((n_k, n_trades))
    turnover = np.empty((n_k, n_trades))
    gross = np.full((n_k, d), np.nan)
    net = np.full((n_k, d), np.nan)
    for i in numba.prange(n_trades):
        c = counts[i]
        ti = t[i]
        cash = 1.0 if c == 0 else 0.0
        w = 1.0 / c if c > 0 else 0.0
        cols = idx[i, :c]
        x0 = np.empty((n_k, c))  # entry prices, gathered once per period
        for k in range(n_k):
            tp_k = trade_prices[k]
            for q in range(c):
                x0[k, q] = tp_k[ti, cols[q]]
        acc = np.empty(n_k)
        prev = np.zeros(n_k)
        for l in range(last_mark[i] + 1):
            row = ti + l
            acc[:] = 0.0
            for q in range(c):
                p = price[row, cols[q]]
                for k in range(n_k):
                    acc[k] += _growth(p, x0[k, q])
            for k in range(n_k):
                rel = acc[k] * w + cash
                if l == 0:
                    first[k, i] = rel
                else:
                    gross[k, row] = rel / prev[k] - 1.0
                    net[k, row] = gross[k, row]
                prev[k] = rel
        for k in range(n_k):
            tp_k = trade_prices[k]
            at_last[k, i] = prev[k]
            total = 0.0
            for q in range(c):
                total += _growth(tp_k[nxt[i], cols[q]], x0[k, q])
            v_exit[k, i] = total * w + cash
            # turnover at trade i: new weights vs period i-1's weights drifted to X[t_i]
            new_sum = w * c
            if i == 0:
                turnover[k, i] = max(new_sum, 0.0) / 2.0
                continue
            cp = counts[i - 1]
            tp = t[i - 1]
            wp = 1.0 / cp if cp > 0 else 0.0
            vp = 0.0
            for q in range(cp):
                j = idx[i - 1, q]
                vp += _growth(tp_k[ti, j], tp_k[tp, j]) * wp
            vp += 1.0 if cp == 0 else 0.0
            old = np.zeros(s)
            old_sum = 0.0
            for q in range(cp):
                j = idx[i - 1, q]
                dw = _growth(tp_k[ti, j], tp_k[tp, j]) / vp * wp
                if dw > 0:
                    old[j] = dw
                    old_sum += dw
            common = 0.0
            for q in range(c):
                j = idx[i, q]
                if old[j] > 0:
                    common += min(w, old[j])
            turnover[k, i] = max(new_sum + old_sum - 2.0 * common, 0.0) / 2.0
    for k in range(n_k):
        for i in range(n_trades):
            exit_leg = 1.0 if i == 0 else v_exit[k, i - 1] / at_last[k, i - 1]
            gross[k, t[i]] = exit_leg * first[k, i] - 1.0
            net[k, t[i]] = exit_leg * (1.0 - turnover[k, i] * fee) * first[k, i] - 1.0
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
