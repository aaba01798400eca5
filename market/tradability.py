"""Tradability on dense ``[D, S]`` arrays: suspensions, price limits, ST (A-share rules).

Daily price limit (fraction of preclose), by board and date:
- 10% main boards (SH60*, SZ00*, SZ30* before 2020-08-24);
- 20% ChiNext (SZ30*) from 2020-08-24 and STAR (SH688*, from its 2019-07-22 start);
- 5% when the stock is ST (main boards; ChiNext/STAR ST stocks keep 20%);
- listing day: 44% on main boards (the post-2014 first-day cap); no limit on the first
  ``IPO_FREE_DAYS`` days of registration-based listings (STAR; ChiNext from 2020-08-24),
  which we treat as untradable (a documented choice: such days are not modelled as fills).
A stock is at limit up when ``close >= round(preclose * (1 + limit), 2)`` (half a fen
tolerance), limit down symmetric. Suspended = no bar or zero volume on that day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.panel import Panel

CHINEXT_REFORM = np.datetime64("2020-08-24")
IPO_FIRST_DAY_LIMIT = 0.44
IPO_FREE_DAYS = 5
HALF_FEN = 0.005 + 1e-9


@dataclass
class Tradability:
    """[D, S] bool masks. ``can_buy`` / ``can_sell`` are at the close of that day."""

    suspended: np.ndarray
    limit_up: np.ndarray
    limit_down: np.ndarray
    st: np.ndarray
    no_limit_ipo: np.ndarray

    @property
    def can_buy(self) -> np.ndarray:
        return ~self.suspended & ~self.limit_up & ~self.no_limit_ipo

    @property
    def can_sell(self) -> np.ndarray:
        return ~self.suspended & ~self.limit_down & ~self.no_limit_ipo


def _round_fen(x: np.ndarray) -> np.ndarray:
    return np.floor(x * 100 + 0.5) / 100  # exchange rounding: half up to the fen


def price_limits(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """([D, S] limit fraction, [D, S] bool registration-IPO free days)."""
    codes, dates = panel.codes, panel.dates
    star = np.char.startswith(codes.astype(str), "SH688")[None, :]
    chinext = np.char.startswith(codes.astype(str), "SZ30")[None, :]
    reformed = (dates >= CHINEXT_REFORM)[:, None]
    wide = star | (chinext & reformed)
    limit = np.where(wide, 0.20, np.where(panel.is_st, 0.05, 0.10))
    has_bar = ~np.isnan(panel["close"])
    bar_no = np.cumsum(has_bar, axis=0)  # 1 on the listing day
    first = has_bar & (bar_no == 1)
    registration = star | (chinext & reformed)
    free = has_bar & registration & (bar_no <= IPO_FREE_DAYS)
    limit = np.where(first & ~registration, IPO_FIRST_DAY_LIMIT, limit)
    return limit, free


def tradability(panel: Panel) -> Tradability:
    """Suspension, limit-up/down, ST and no-limit IPO masks for every stock-day."""
    limit, free = price_limits(panel)
    close, pre = panel["close"].astype(np.float64), panel["preclose"].astype(np.float64)
    with np.errstate(invalid="ignore"):
        up = close >= _round_fen(pre * (1 + limit)) - HALF_FEN
        down = close <= _round_fen(pre * (1 - limit)) + HALF_FEN
    ok = np.isfinite(close) & np.isfinite(pre)
    return Tradability(suspended=~panel.valid, limit_up=up & ok & ~free,
                       limit_down=down & ok & ~free, st=panel.is_st.copy(), no_limit_ipo=free)
