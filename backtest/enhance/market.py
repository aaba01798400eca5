"""The ``[D, S]`` arrays the enhancement simulation reads, computed once per run.

Prices are back-adjusted and forward-filled (a suspended or delisted stock keeps its
last price). The VWAP trade price is adjusted with the day's own factor
``adj_close / close``, so a trade at an ex-rights day's VWAP is on the same scale as
that day's adjusted close.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtest.enhance.constraints import EnhanceConstraints, TradePrice
from backtest.enhance.inputs import RebalanceInputs, standardize
from backtest.portfolio import adjusted_trade_price
from market.panel import Panel
from market.returns import forward_fill
from market.tradability import Tradability, tradability


@dataclass
class EnhanceMarket:
    """Arrays of one simulation, all ``[D, S]`` float64 / bool unless said otherwise.

    close: adjusted close, forward-filled (NaN before listing).
    trade: adjusted trade price (close, or VWAP where the stock traded; else ``close``).
    score: the factor (NaN where absent). bench: benchmark weights at each close.
    styles: name -> standardized exposure (NaN -> treated as 0, the cap-weighted mean).
    industry: [D, S] int industry ids. listed: between first and last bar.
    trad: tradability masks (``market.tradability``).
    """

    dates: np.ndarray
    codes: np.ndarray
    close: np.ndarray
    trade: np.ndarray
    score: np.ndarray
    bench: np.ndarray
    styles: dict[str, np.ndarray]
    industry: np.ndarray
    listed: np.ndarray
    trad: Tradability

    @classmethod
    def build(cls, panel: Panel, score: np.ndarray, bench: np.ndarray,
              styles: dict[str, np.ndarray], trade_price: TradePrice) -> "EnhanceMarket":
        """Precompute prices and masks; ``score``/``bench``/styles must be ``[D, S]``."""
        shape = panel.shape
        for name, arr in {"score": score, "bench": bench, **styles}.items():
            if np.shape(arr) != shape:
                raise ValueError(f"{name} must be [D, S] = {shape}, got {np.shape(arr)}")
        adj = panel["adj_close"].astype(np.float64)
        close = forward_fill(adj, np.isfinite(adj))
        trade = close if trade_price == "close" else \
            adjusted_trade_price(panel["vwap"], panel["close"], adj, close)
        return cls(panel.dates, panel.codes, close, trade, np.asarray(score, np.float64),
                   bench, styles, np.asarray(panel.industry), np.asarray(panel.listed),
                   tradability(panel))

    def cross_section(self, s: int, t: int, current: np.ndarray,
                      cons: EnhanceConstraints) -> RebalanceInputs:
        """Inputs of the rebalance decided at the close of ``s`` and traded on day ``t``.

        current: [S] pre-trade weights at the trade price of ``t``. Stocks: scored on
        ``s`` and listed on ``t`` (inside the universe), members on ``s``, holdings.
        """
        b, sc = self.bench[s], self.score[s]
        member = b > 0
        scored = np.isfinite(sc) & self.listed[t]
        in_universe = scored & (member if cons.universe == "constituents" else True)
        held = current > 0
        idx = np.flatnonzero(in_universe | member | held)
        tr = self.trad
        frozen = (tr.suspended[t] | tr.no_limit_ipo[t])[idx]
        names = list(self.styles)
        x = np.column_stack([self.styles[k][s, idx] for k in names]) if names \
            else np.zeros((len(idx), 0))
        _, industry = np.unique(self.industry[s, idx], return_inverse=True)
        return RebalanceInputs(
            mu=standardize(sc[idx], in_universe[idx]), bench=b[idx] / b[idx].sum(),
            current=current[idx], investable=(in_universe | member)[idx] & self.listed[t, idx],
            member=member[idx], frozen=frozen, no_buy=(tr.limit_up[t] | tr.st[t])[idx],
            no_sell=tr.limit_down[t, idx], liquidate=(~self.listed[t])[idx] & held[idx],
            styles=np.nan_to_num(x), style_names=names,
            industry=industry.reshape(-1).astype(np.int64), stock=idx)


def weekly_schedule(dates: np.ndarray, signal_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signal and trade day indices, ``[K]`` each.

    A signal day is the last trading day of a calendar week (Monday-based weeks) on
    which ``signal_ok`` holds; its trade day is the next trading day (the first of the
    following week). Returns (signal, trade); a signal on the last data day is dropped.
    """
    days = np.asarray(dates).astype("datetime64[D]")
    week = (days.astype(np.int64) - 4) // 7  # 1970-01-01 was a Thursday: weeks from Monday
    last_of_week = np.append(week[1:] != week[:-1], True)
    last_of_week[-1] = False  # no next day to trade on
    signal = np.flatnonzero(last_of_week & np.asarray(signal_ok, bool))
    return signal, signal + 1
