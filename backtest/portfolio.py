"""Rebalanced equal-weight long-only portfolios (compiled core: ``backtest.jit``).

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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest.jit import adjusted_price_rows, simulate_rows


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
        if width <= order.shape[1] and not np.any(start):  # the top-k case: a plain slice
            return cls(np.ascontiguousarray(order[:, :width]), counts)
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
    """[D, S] raw trade price (open, vwap) in adjusted units, ``price`` where it is missing.

    ``raw x adj_close / close`` where that is finite and positive (compiled, one pass).
    """
    return adjusted_price_rows(*(np.ascontiguousarray(a) for a in (raw, panel_close,
                                                                   adj_close, price)))


def simulate(price: np.ndarray, trade_price: np.ndarray, trade_days: np.ndarray, end: int,
             holdings: Holdings, fee: float = 0.0) -> Simulation:
    """One portfolio over ``trade_days`` (increasing, the last <= ``end`` < D).

    price: [D, S] adjusted close, forward-filled; trade_price: [D, S] adjusted trade price
    (finite wherever a held stock can be traded); holdings: what each trade buys.
    """
    return simulate_many(price, [trade_price], trade_days, end, holdings, fee)[0]


def simulate_many(price: np.ndarray, trade_prices: Sequence[np.ndarray],
                  trade_days: np.ndarray, end: int, holdings: Holdings,
                  fee: float = 0.0) -> list[Simulation]:
    """:func:`simulate` for several trade prices with the same trade days and holdings (the
    T+1 VWAP, open and close portfolios), in one pass: each day's closes are gathered once
    for all of them. Each result equals :func:`simulate` on its trade price alone, bit for
    bit (tested)."""
    t = np.asarray(trade_days, dtype=np.int64)
    if t.size == 0 or t.size != holdings.idx.shape[0]:
        raise ValueError(f"need one holdings row per trade day, got {t.size} days and "
                         f"{holdings.idx.shape[0]} rows")
    if np.any(np.diff(t) <= 0) or t[0] < 0 or t[-1] > end or end >= price.shape[0]:
        raise ValueError(f"trade days must increase within [0, end={end}] and end < "
                         f"{price.shape[0]}, got {t[:3]}...{t[-1:]}")
    if not trade_prices:
        raise ValueError("need at least one trade price")
    nxt = np.append(t[1:], end)
    last_mark = np.append(nxt[:-1] - t[:-1] - 1, end - t[-1])  # days after t_i marked by i
    counts = np.asarray(holdings.counts, dtype=np.int64)
    if counts.max(initial=0) > holdings.idx.shape[1] or counts.min(initial=0) < 0:
        raise ValueError("holdings counts must lie in [0, width of idx]")
    prices = tuple(np.ascontiguousarray(x, dtype=np.float64) for x in trade_prices)
    gross, net, turnover = simulate_rows(
        np.ascontiguousarray(price, dtype=np.float64), prices, t, nxt, last_mark,
        np.ascontiguousarray(holdings.idx, dtype=np.int64), counts, float(fee))
    return [Simulation(gross[k], net[k], turnover[k], t, int(end)) for k in range(len(prices))]
