"""Rebalanced equal-weight long-only portfolios, vectorized over all rebalances at once.

Model (shared by the group test and the top-k portfolios):
- At trade day ``t_i`` the portfolio is rebalanced at the trade price ``X[t_i]`` (adjusted:
  raw trade price x adj_close / close of that day) to equal weights over the selected
  stocks, then held untouched until the next trade day ``t_{i+1}`` (the last one until
  ``end``); it is marked at the adjusted close every day. An empty selection is cash.
- Buying restrictions are the caller's (selections exclude what cannot be bought). The old
  holdings are always sold at ``X[t_i]``: a holding suspended or at limit down on a trade
  day is not carried over (a documented simplification; its price is the last close).
- Fees: ``fee`` is the round-trip cost; each side pays ``fee / 2`` of the value traded.
  One-sided turnover at t_i = ``sum |w_new - w_drifted|`` / 2 (the first trade, from cash,
  is 0.5), so the cost of a trade is ``turnover x fee`` of the portfolio value.
- Day t_i's return chains the exit leg (old holdings from close t_i - 1 to ``X[t_i]``), the
  fee and the entry leg (new holdings from ``X[t_i]`` to close t_i). A stock kept through a
  trade sees ``X[t_i]`` cancel out, so the trade price only matters for what changes.
- Prices are forward-filled adjusted closes: a suspended or delisted holding keeps its
  last price until the next trade (delisting proceeds = the last close).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Holdings:
    """Stocks bought at each trade: ``idx`` [T, W] stock indices of which the first
    ``counts[i]`` are held (equal weight) after trade i; the rest is padding."""

    idx: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_order(cls, order: np.ndarray, start: np.ndarray, stop: np.ndarray) -> "Holdings":
        """Rows of a per-trade stock ordering [T, S], positions ``start <= r < stop``."""
        counts = np.maximum(stop - start, 0)
        width = max(int(counts.max()) if counts.size else 0, 1)
        pos = np.minimum(start[:, None] + np.arange(width), order.shape[1] - 1)
        return cls(np.take_along_axis(order, pos, axis=1), counts)


@dataclass
class Simulation:
    """gross, net: [D] daily returns (NaN outside ``trade_days[0]..end``); turnover: [T]."""

    gross: np.ndarray
    net: np.ndarray
    turnover: np.ndarray
    trade_days: np.ndarray
    end: int


def adjusted_trade_price(raw: np.ndarray, panel_close: np.ndarray, adj_close: np.ndarray,
                         price: np.ndarray) -> np.ndarray:
    """[D, S] raw trade price (open, vwap) in adjusted units, ``price`` where it is missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        adj = raw.astype(np.float64) * (adj_close / panel_close.astype(np.float64))
    return np.where(np.isfinite(adj) & (adj > 0), adj, price)


def simulate(price: np.ndarray, trade_price: np.ndarray, trade_days: np.ndarray, end: int,
             holdings: Holdings, fee: float = 0.0) -> Simulation:
    """One portfolio over ``trade_days`` (increasing, the last <= ``end`` < D).

    price: [D, S] adjusted close, forward-filled; trade_price: [D, S] adjusted trade price
    (finite wherever a held stock can be traded); holdings: what each trade buys.
    """
    t = np.asarray(trade_days, dtype=np.int64)
    if t.size == 0 or t.size != holdings.idx.shape[0]:
        raise ValueError(f"need one holdings row per trade day, got {t.size} days and "
                         f"{holdings.idx.shape[0]} rows")
    if np.any(np.diff(t) <= 0) or t[0] < 0 or t[-1] > end or end >= price.shape[0]:
        raise ValueError(f"trade days must increase within [0, end={end}] and end < "
                         f"{price.shape[0]}, got {t[:3]}...{t[-1:]}")
    nxt = np.append(t[1:], end)
    valid = np.arange(holdings.idx.shape[1]) < holdings.counts[:, None]  # [T, W]
    idx = np.where(valid, holdings.idx, 0)
    w = valid / np.maximum(holdings.counts, 1)[:, None]  # [T, W] equal weights
    cash = (holdings.counts == 0).astype(np.float64)  # [T]
    x0 = trade_price[t[:, None], idx]  # [T, W] entry prices
    span = int((nxt - t).max())
    rows = np.minimum(t[:, None] + np.arange(span + 1), end)  # [T, L + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.nan_to_num(price[rows[:, :, None], idx[:, None, :]] / x0[:, None, :])
        exit_growth = np.nan_to_num(trade_price[nxt[:, None], idx] / x0)  # [T, W]
    rel = np.einsum("tlw,tw->tl", growth, w) + cash[:, None]  # [T, L + 1] value / entry
    v_exit = (exit_growth * w).sum(axis=1) + cash  # [T] value at X[t_{i+1}] / entry
    turnover = _turnover(idx, w, exit_growth / v_exit[:, None] * w, price.shape[1])
    cost = turnover * fee
    last_mark = np.append(nxt[:-1] - t[:-1] - 1, end - t[-1])  # rel column of the last mark
    exit_leg = np.ones(t.size)
    exit_leg[1:] = v_exit[:-1] / rel[np.arange(t.size - 1), last_mark[:-1]]
    gross = np.full(price.shape[0], np.nan)
    net = np.full(price.shape[0], np.nan)
    gross[t] = exit_leg * rel[:, 0]
    net[t] = exit_leg * (1.0 - cost) * rel[:, 0]
    j = np.arange(1, span + 1)
    inside = j[None, :] <= last_mark[:, None]  # [T, L] days after t_i marked by period i
    steps = rel[:, 1:] / rel[:, :-1]
    days = (t[:, None] + j[None, :])[inside]
    gross[days] = steps[inside]
    net[days] = steps[inside]
    return Simulation(gross - 1.0, net - 1.0, turnover, t, int(end))


def _turnover(idx: np.ndarray, w_new: np.ndarray, w_drift: np.ndarray,
              n_stocks: int) -> np.ndarray:
    """[T] one-sided turnover: |new weights at trade i - drifted weights of period i-1| / 2.

    Sparse: ``sum |a - b| = sum a + sum b - 2 sum_common min(a, b)`` with the common
    stocks found by a sorted search on ``row * n_stocks + stock`` keys.
    """
    n = idx.shape[0]
    rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)
    held_new, held_old = w_new > 0, w_drift[:-1] > 0
    new_key = (rows * n_stocks + idx)[held_new]
    old_key = ((rows[1:]) * n_stocks + idx[:-1])[held_old]  # period i-1 seen at trade i
    new_w, old_w = w_new[held_new], w_drift[:-1][held_old]
    out = np.bincount(new_key // n_stocks, new_w, n) + np.bincount(old_key // n_stocks, old_w, n)
    if old_key.size and new_key.size:
        order = np.argsort(old_key)
        sorted_key = old_key[order]
        pos = np.minimum(np.searchsorted(sorted_key, new_key), sorted_key.size - 1)
        both = sorted_key[pos] == new_key
        common = np.minimum(new_w[both], old_w[order][pos[both]])
        out -= 2.0 * np.bincount(new_key[both] // n_stocks, common, n)
    return np.maximum(out, 0.0) / 2.0
