"""Calendar, stock codes, industries, index memberships and index levels of the synthetic market."""

from __future__ import annotations

import numpy as np
import polars as pl

from market.panel import membership_mask
from market.synthetic_paths import NEVER, Paths, calendar_parts

INDUSTRY_NAMES = ("Banks", "Materials", "Industrials", "Consumer", "Healthcare", "Technology",
                  "Energy", "RealEstate", "Utilities", "Media")
# universe -> (index code, cumulative free-float-size rank fraction where it starts, ends)
UNIVERSES = {"csi300": ("SH000300", 0.0, 0.075), "csi500": ("SH000905", 0.075, 0.20),
             "csi1000": ("SH000852", 0.20, 0.45)}
INDEX_BASE = 1000.0
MAX_STOCKS_PER_EXCHANGE = 9999


def industry_names(n: int) -> list[str]:
    if n <= len(INDUSTRY_NAMES):
        return list(INDUSTRY_NAMES[:n])
    return [f"IND{k:02d}" for k in range(n)]


def trading_calendar(start: str, n_days: int, holidays: bool = True) -> np.ndarray:
    """[n_days] datetime64[D]: weekdays from ``start``; with ``holidays``, minus fixed
    closures each year: Jan 1, Feb 10-16 (a Spring Festival week), May 1-3, Oct 1-7."""
    first = np.datetime64(start, "D")
    days = first + np.arange(int(n_days * 1.6) + 30)
    keep = (days.astype(np.int64) + 3) % 7 < 5  # 1970-01-01 was a Thursday
    if holidays:
        _, month = calendar_parts(days)
        dom = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
        closed = (((month == 1) & (dom == 1)) | ((month == 2) & (dom >= 10) & (dom <= 16))
                  | ((month == 5) & (dom <= 3)) | ((month == 10) & (dom <= 7)))
        keep &= ~closed
    return days[keep][:n_days]


def stock_codes(n_stocks: int) -> np.ndarray:
    """Sorted 8-char codes: about half ``SH600000..``, half ``SZ000001..`` (10% limit boards)."""
    n_sh, n_sz = (n_stocks + 1) // 2, n_stocks // 2
    if n_sh > MAX_STOCKS_PER_EXCHANGE:
        raise ValueError(f"n_stocks must be <= {2 * MAX_STOCKS_PER_EXCHANGE}, got {n_stocks}")
    codes = [f"SH{600000 + i}" for i in range(n_sh)] + [f"SZ{1 + i:06d}" for i in range(n_sz)]
    return np.array(sorted(codes))


def rebalance_days(dates: np.ndarray) -> list[int]:
    """Effective days of the semi-annual reviews: day 0, then the first trading day of
    each June and December (selection on the previous day's close)."""
    year, month = calendar_parts(dates)
    key = year * 12 + month
    starts = np.nonzero(np.diff(key, prepend=key[0] - 1) != 0)[0]
    return [0] + [int(t) for t in starts if t > 0 and month[t] in (6, 12)]


def _selection(t: int, paths: Paths, list_day: np.ndarray, cap0: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """(eligible mask, ranking cap, number of listed stocks) at the review of effective day t."""
    if t == 0:  # pre-sample state: all stocks listed before the sample, none ST
        listed = list_day == 0
        return listed, np.where(listed, cap0, np.nan), int(listed.sum())
    r = t - 1
    listed = (list_day <= r) & (r <= paths.delist_day)
    eligible = (listed & ~paths.is_st[r] & (paths.delist_announce > r)
                & np.isfinite(paths.float_cap[r]))
    return eligible, np.where(eligible, paths.float_cap[r], np.nan), int(listed.sum())


def memberships(dates: np.ndarray, codes: np.ndarray, paths: Paths, list_day: np.ndarray,
                cap0: np.ndarray) -> dict[str, pl.DataFrame]:
    """Point-in-time ``code, start, end`` intervals, one per member and review period.

    At each review the eligible stocks (listed, not ST, no delisting announced) are
    ranked by free-float market cap; with N the number of listed stocks that day,
    csi300 takes the top round(0.075 N), csi500 the next round(0.20 N) - round(0.075 N),
    csi1000 the next round(0.45 N) - round(0.20 N). An interval ends the day before
    the next effective day, or on the stock's last bar.
    """
    effective = rebalance_days(dates)
    ends = [e - 1 for e in effective[1:]] + [len(dates) - 1]
    last_bar = np.where(paths.delist_day == NEVER, len(dates) - 1, paths.delist_day)
    rows: dict[str, list[tuple[np.ndarray, int, np.ndarray]]] = {u: [] for u in UNIVERSES}
    for start, end in zip(effective, ends):
        eligible, cap, n_listed = _selection(start, paths, list_day, cap0)
        order = np.argsort(-np.where(eligible, cap, -np.inf), kind="stable")
        for name, (_, lo, hi) in UNIVERSES.items():
            members = order[round(lo * n_listed):round(hi * n_listed)]
            rows[name].append((members, start, np.minimum(end, last_bar[members])))
    out = {}
    for name, parts in rows.items():
        idx = np.concatenate([m for m, _, _ in parts]).astype(np.int64)
        start = np.concatenate([np.full(len(m), s) for m, s, _ in parts]).astype(np.int64)
        end = np.concatenate([e for _, _, e in parts]).astype(np.int64)
        out[name] = pl.DataFrame({"code": codes[idx], "start": dates[start], "end": dates[end]},
                                 schema={"code": pl.String, "start": pl.Date, "end": pl.Date})
    return out


def index_levels(dates: np.ndarray, codes: np.ndarray, paths: Paths,
                 members: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """``date, index_code, close``: free-float-cap-weighted price indexes (base 1000).

    Day t's index return is the average of members' price returns (close over the
    split-adjusted previous close: dividends excluded, as in a price index) weighted by
    the free-float cap at t-1; a suspended member counts with return 0.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        price_ret = np.nan_to_num(paths.close / paths.price_preclose - 1)
    weight_prev = np.nan_to_num(np.vstack([paths.float_cap[:1], paths.float_cap[:-1]]))
    frames = []
    for name, (index_code, _, _) in UNIVERSES.items():
        w = weight_prev * membership_mask(members[name], dates, codes)
        den = w.sum(axis=1)
        ret = np.divide((w * price_ret).sum(axis=1), den, out=np.zeros(len(dates)), where=den > 0)
        ret[0] = 0.0
        frames.append(pl.DataFrame({"date": dates, "index_code": index_code,
                                    "close": INDEX_BASE * np.cumprod(1 + ret)}))
    return pl.concat(frames).with_columns(pl.col("date").cast(pl.Date))
