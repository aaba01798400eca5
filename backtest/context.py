"""Market arrays shared by the portfolio tests, computed once per panel.

price: [D, S] adjusted close forward-filled over suspensions and after delisting (a
holding keeps its last price); trade prices per convention (adjusted units); the A-share
tradability masks (``market.tradability``: suspended, limit up/down at the close);
week ids (Monday-based calendar weeks) for weekly rebalancing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backtest.portfolio import adjusted_trade_price
from market.panel import Panel
from market.returns import forward_fill
from market.tradability import Tradability, tradability

TRADE_PRICES = ("close_t0", "vwap_t1", "open_t1", "close_t1")


@dataclass
class MarketContext:
    """Dense arrays for backtests, each computed on first use and cached.

    price: [D, S] forward-filled adjusted close; suspended / limit_up / limit_down /
    can_buy: [D, S] bool masks of ``market.tradability`` (computed only when a
    portfolio test needs them); ``trade_price(name)`` and ``forward(h)`` likewise.
    """

    panel: Panel
    price: np.ndarray
    _trade: dict[str, np.ndarray] = field(default_factory=dict)
    _forward: dict[int, np.ndarray] = field(default_factory=dict)
    _tradability: Tradability | None = None

    @classmethod
    def from_panel(cls, panel: Panel) -> "MarketContext":
        adj = np.asarray(panel["adj_close"], dtype=np.float64)
        return cls(panel, forward_fill(adj, np.isfinite(adj)))

    @property
    def tradability(self) -> Tradability:
        if self._tradability is None:
            self._tradability = tradability(self.panel)
        return self._tradability

    @property
    def suspended(self) -> np.ndarray:
        return self.tradability.suspended

    @property
    def limit_up(self) -> np.ndarray:
        return self.tradability.limit_up

    @property
    def limit_down(self) -> np.ndarray:
        return self.tradability.limit_down

    @property
    def can_buy(self) -> np.ndarray:
        if "can_buy" not in self._trade:
            self._trade["can_buy"] = self.tradability.can_buy
        return self._trade["can_buy"]

    @property
    def dates(self) -> np.ndarray:
        return self.panel.dates

    def week_id(self) -> np.ndarray:
        """[D] Monday-based calendar week number (1970-01-01 was a Thursday)."""
        return (self.dates.astype("datetime64[D]").astype(np.int64) + 3) // 7

    def trade_lag(self, name: str) -> int:
        """Days from the signal to the trade: 0 for ``close_t0``, else 1."""
        if name not in TRADE_PRICES:
            raise ValueError(f"trade price must be one of {TRADE_PRICES}, got {name!r}")
        return 0 if name == "close_t0" else 1

    def trade_price(self, name: str) -> np.ndarray:
        """[D, S] adjusted trade price of a convention (close, vwap or open of the day)."""
        self.trade_lag(name)
        if name not in self._trade:
            field_name = name.split("_")[0]
            if field_name == "close":
                self._trade[name] = self.price
            else:
                self._trade[name] = adjusted_trade_price(
                    self.panel[field_name], self.panel["close"], self.panel["adj_close"],
                    self.price)
        return self._trade[name]

    def forward(self, horizon: int) -> np.ndarray:
        """[D, S] forward return close t+1 -> close t+1+horizon (cached).

        Same values as ``market.returns.forward_returns(panel, horizon)`` (tested), with the
        forward-filled, listed-only exit price and the entry price computed once.
        """
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if horizon not in self._forward:
            if "exit" not in self._trade:
                self._trade["exit"] = np.where(self.panel.listed, self.price, np.nan)
                entry = np.full(self.price.shape, np.nan)
                entry[:-1] = np.where(self.panel.valid[1:], self._trade["exit"][1:], np.nan)
                self._trade["entry"] = entry
            exit_, entry = self._trade["exit"], self._trade["entry"]
            out = np.full(self.price.shape, np.nan)
            n = len(self.dates) - 1 - horizon
            if n > 0:  # in place: no [D, S] temporaries
                np.divide(exit_[1 + horizon:], entry[:n], out=out[:n])
                out[:n] -= 1.0
            self._forward[horizon] = out
        return self._forward[horizon]
