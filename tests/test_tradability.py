"""A-share tradability rules on hand-built tiny markets, and on the real data when present."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from market.cn_shared import ENV_VAR, default_cn_shared_root, read_cn_shared
from market.panel import Panel
from market.schema import MarketData
from market.tradability import HALF_FEN, limit_prices, price_limits, tradability

ROOT = default_cn_shared_root()
needs_data = pytest.mark.skipif(
    ROOT is None, reason=f"real A-share data not found (set {ENV_VAR} or provide ../shared/data)")
Row = tuple  # (date, code, close, preclose[, volume[, is_st]])


def make_panel(rows: list[Row]) -> Panel:
    """Panel of one-price bars (open = high = low = close) from (date, code, close, pre, ...)."""
    full = [(*r, *(1000.0, False)[len(r) - 4:]) for r in rows]
    df = pl.DataFrame(full, schema=["date", "code", "close", "preclose", "volume", "is_st"],
                      orient="row")
    df = df.with_columns(pl.col("date").str.to_date(), open=pl.col("close"),
                         high=pl.col("close"), low=pl.col("close"))
    return Panel.from_market(MarketData(bars=df))


def at(panel: Panel, arr: np.ndarray, date: str, code: str) -> object:
    """``arr``'s value for (date, code)."""
    return arr[panel.date_index(date), int(np.searchsorted(panel.codes, code))]


def test_main_board_10pct_exact_half_up_rounding() -> None:
    # 1.15 * 1.1 = 1.265 -> 1.27 and 1.15 * 0.9 = 1.035 -> 1.04 (binary float gives 1.26, 1.03)
    days = ["2019-03-01", "2019-03-04", "2019-03-05", "2019-03-06", "2019-03-07"]
    closes = [1.15, 1.27, 1.26, 1.04, 1.05]
    p = make_panel([(d, "SH600000", c, 1.15) for d, c in zip(days, closes)]
                   + [(days[0], "SZ000001", 10.0, 10.0), (days[1], "SZ000001", 11.0, 10.0),
                      (days[2], "SZ000001", 9.0, 10.0)])
    up, down = limit_prices(p)
    assert at(p, up, days[1], "SH600000") == 1.27 and at(p, down, days[1], "SH600000") == 1.04
    assert at(p, up, days[1], "SZ000001") == 11.0 and at(p, down, days[1], "SZ000001") == 9.0
    t = tradability(p)
    s = int(np.searchsorted(p.codes, "SH600000"))
    assert t.limit_up[:, s].tolist() == [False, True, False, False, False]
    assert t.limit_down[:, s].tolist() == [False, False, False, True, False]
    assert at(p, t.limit_up, days[1], "SZ000001") and at(p, t.limit_down, days[2], "SZ000001")
    assert not at(p, t.can_buy, days[1], "SH600000") and at(p, t.can_sell, days[1], "SH600000")
    assert not at(p, t.can_sell, days[3], "SH600000") and at(p, t.can_buy, days[3], "SH600000")


def test_st_5pct() -> None:
    # 4.30 * 1.05 = 4.515 -> 4.52; 4.30 * 0.95 = 4.085 -> 4.09
    days = ["2019-03-01", "2019-03-04", "2019-03-05", "2019-03-06"]
    p = make_panel([(d, "SH600001", c, 4.30, 1000.0, True)
                    for d, c in zip(days, [4.30, 4.52, 4.51, 4.09])]
                   + [(days[0], "SZ300001", 20.0, 20.0, 1e3, True),
                      (days[1], "SZ300001", 21.0, 20.0, 1e3, True)])
    limit, _ = price_limits(p)
    assert at(p, limit, days[1], "SH600001") == 0.05
    up, down = limit_prices(p)
    assert at(p, up, days[1], "SH600001") == 4.52 and at(p, down, days[1], "SH600001") == 4.09
    t = tradability(p)
    s = int(np.searchsorted(p.codes, "SH600001"))
    assert t.limit_up[:, s].tolist() == [False, True, False, False]
    assert t.limit_down[:, s].tolist() == [False, False, False, True]
    assert t.st[:, s].all()
    assert at(p, t.limit_up, days[1], "SZ300001")  # ChiNext ST before the reform: 5%


def test_star_20pct_and_first_five_days_free() -> None:
    days = ["2019-07-19", "2019-07-22", "2019-07-23", "2019-07-24", "2019-07-25",
            "2019-07-26", "2019-07-29", "2019-07-30"]
    star = [(days[1], "SH688001", 80.0, 40.0)]  # listing: +100%, no limit
    star += [(d, "SH688001", 50.0, 50.0) for d in days[2:6]]
    star += [(days[6], "SH688001", 60.0, 50.0), (days[7], "SH688001", 66.0, 60.0)]
    p = make_panel(star + [(d, "SH600000", 10.0, 10.0) for d in days])
    t = tradability(p)
    s = int(np.searchsorted(p.codes, "SH688001"))
    assert t.no_limit_ipo[:, s].tolist() == [False] + [True] * 5 + [False, False]
    assert t.limit_up[:, s].tolist() == [False] * 6 + [True, False]  # 60 = 50 * 1.2; 66 < 72
    assert not t.can_buy[1:6, s].any() and not t.can_sell[1:6, s].any()
    up, down = limit_prices(p)
    assert at(p, up, days[6], "SH688001") == 60.0 and at(p, down, days[6], "SH688001") == 40.0
    limit, _ = price_limits(p)
    assert at(p, limit, days[7], "SH688001") == 0.20 and at(p, limit, days[7], "SH600000") == 0.10


def test_chinext_10pct_before_reform_20pct_after() -> None:
    days = ["2020-08-20", "2020-08-21", "2020-08-24", "2020-08-25"]
    p = make_panel([(days[0], "SZ300001", 20.0, 20.0), (days[1], "SZ300001", 22.0, 20.0),
                    (days[2], "SZ300001", 24.2, 22.0), (days[3], "SZ300001", 29.04, 24.2),
                    (days[2], "SZ300999", 30.0, 10.0),  # registration IPO after the reform
                    (days[3], "SZ300999", 36.0, 30.0),
                    (days[2], "SZ002999", 14.4, 10.0),  # main-board IPO: +44% cap
                    (days[1], "SZ300998", 10.0, 8.0),  # listed before the reform: 44%, 10%
                    (days[2], "SZ300998", 12.0, 10.0)])
    t = tradability(p)
    s = int(np.searchsorted(p.codes, "SZ300001"))
    assert t.limit_up[:, s].tolist() == [False, True, False, True]
    limit, free = price_limits(p)
    assert limit[:, s].tolist() == [0.10, 0.10, 0.20, 0.20]
    assert at(p, free, days[2], "SZ300999") and at(p, free, days[3], "SZ300999")
    assert not at(p, t.limit_up, days[3], "SZ300999")  # +20% but inside the free days
    assert not at(p, free, days[2], "SZ002999") and at(p, t.limit_up, days[2], "SZ002999")
    s = int(np.searchsorted(p.codes, "SZ300998"))
    assert limit[1:, s].tolist() == [0.44, 0.20, 0.20] and not free[:, s].any()
    assert t.limit_up[:, s].tolist() == [False, False, True, False]


def test_main_board_listing_day_44pct() -> None:
    days = ["2019-03-01", "2019-03-04", "2019-03-05"]
    p = make_panel([(days[0], "SH600000", 14.4, 10.0),  # on the panel's first day: not a listing
                    (days[1], "SH603999", 14.4, 10.0), (days[2], "SH603999", 15.84, 14.4),
                    (days[1], "SH603998", 6.4, 10.0), (days[1], "SZ300888", 14.39, 10.0)])
    limit, free = price_limits(p)
    assert at(p, limit, days[1], "SH603999") == 0.44 and at(p, limit, days[2], "SH603999") == 0.1
    assert at(p, limit, days[0], "SH600000") == 0.10 and not free.any()
    assert at(p, limit, days[1], "SZ300888") == 0.44  # ChiNext before the reform: same cap
    up, down = limit_prices(p)
    assert at(p, up, days[1], "SH603999") == 14.4 and at(p, down, days[1], "SH603999") == 6.4
    t = tradability(p)
    assert at(p, t.limit_up, days[1], "SH603999") and at(p, t.limit_up, days[2], "SH603999")
    assert at(p, t.limit_down, days[1], "SH603998") and not at(p, t.limit_up, days[1], "SZ300888")
    assert at(p, t.limit_up, days[0], "SH600000")  # +44% against a 10% limit
    old = make_panel([("2013-03-01", "SH600000", 10.0, 10.0),
                      ("2013-03-04", "SH601999", 30.0, 10.0)])
    _, free_old = price_limits(old)
    assert at(old, free_old, "2013-03-04", "SH601999")  # before 2014: no first-day limit
    assert not tradability(old).limit_up.any()


def test_suspended_is_no_bar_or_zero_volume() -> None:
    days = ["2019-03-01", "2019-03-04", "2019-03-05", "2019-03-06", "2019-03-07"]
    p = make_panel([(days[0], "SH600002", 10.0, 10.0), (days[2], "SH600002", 10.5, 10.0),
                    (days[3], "SH600002", 10.5, 10.5, 0.0)]
                   + [(d, "SH600000", 10.0, 10.0) for d in days])
    t = tradability(p)
    s = int(np.searchsorted(p.codes, "SH600002"))
    assert t.suspended[:, s].tolist() == [False, True, False, True, True]  # last: delisted
    assert t.can_buy[:, s].tolist() == [True, False, True, False, False]
    assert not t.suspended[:, int(np.searchsorted(p.codes, "SH600000"))].any()


@pytest.fixture(scope="module")
def real_panel() -> Panel:
    """2018-2019, so that the stocks listing in 2019 are seen listing."""
    assert ROOT is not None
    return Panel.from_market(read_cn_shared(ROOT, start="2018-01-01", end="2019-12-31",
                                            industry="none"))


@needs_data
def test_real_2019_limit_shares_plausible(real_panel: Panel) -> None:
    t = tradability(real_panel)
    y2019 = (real_panel.dates >= np.datetime64("2019-01-01"))[:, None] & real_panel.valid
    up, down = t.limit_up[y2019].mean(), t.limit_down[y2019].mean()
    print(f"\n2019 share of traded stock-days at limit up {up:.3%}, limit down {down:.3%}")
    assert 0.005 < up < 0.05 and 0.001 < down < 0.05
    star = np.char.startswith(real_panel.codes.astype(str), "SH688")
    bars = (~np.isnan(real_panel["close"][:, star])).sum(0)
    assert t.no_limit_ipo[:, star].sum() == np.minimum(bars, 5).sum() > 300  # first 5 days
    assert t.no_limit_ipo[:, ~star].sum() == 0


@needs_data
def test_real_2019_returns_within_limits(real_panel: Panel) -> None:
    """close never beyond the limit price (+ half a fen) on a day that has a limit."""
    t = tradability(real_panel)
    up, down = limit_prices(real_panel)
    close = real_panel["close"].astype(np.float64)
    y2019 = (real_panel.dates >= np.datetime64("2019-01-01"))[:, None]
    checked = y2019 & np.isfinite(close) & np.isfinite(up) & ~t.no_limit_ipo
    over = checked & ((close > up + HALF_FEN) | (close < down - HALF_FEN))
    limit, _ = price_limits(real_panel)
    ret = np.abs(close / real_panel["preclose"] - 1)
    assert checked.sum() > 850_000
    assert over.sum() == 0, np.argwhere(over)[:5]
    assert not (checked & (ret > limit + HALF_FEN / real_panel["preclose"])).any()


@pytest.mark.slow
@needs_data
def test_real_all_years_few_bars_beyond_limits() -> None:
    """2010-2019: only relistings/resumptions without a limit break it (37 stock-days)."""
    assert ROOT is not None
    panel = Panel.from_market(read_cn_shared(ROOT, industry="none"))
    t = tradability(panel)
    up, down = limit_prices(panel)
    close = panel["close"].astype(np.float64)
    checked = np.isfinite(close) & np.isfinite(up) & ~t.no_limit_ipo
    over = checked & ((close > up + HALF_FEN) | (close < down - HALF_FEN))
    assert checked.sum() > 6_000_000 and over.sum() <= 40
