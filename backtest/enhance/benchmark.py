"""Benchmark weights and daily benchmark returns.

Weights: free-float market-cap weights within the point-in-time members
(``panel.universes[benchmark]``), a suspended member valued at its last close. Real
CSI indices cap free-float adjusted weights (by tiers of free-float ratio and a
per-stock cap), so these are an approximation; data that has real index weights can
pass them as a ``date, code, weight`` file (:func:`read_benchmark_weights`).

Returns: from the index levels in the data (``panel.index_close[panel.index_codes[b]]``,
a price index: dividends excluded, so a total-return portfolio gains the dividend
yield, roughly 1-2% a year, over it), else, on days without both levels, the
total return of the members weighted by the previous close's benchmark weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from market.panel import Panel
from market.returns import forward_fill


@dataclass
class BenchmarkReturns:
    """returns: [D] daily benchmark return (NaN on day 0); source: how each day was made.

    n_index_days / n_member_days: days taken from the index levels / from members.
    """

    returns: np.ndarray
    n_index_days: int
    n_member_days: int

    @property
    def source(self) -> str:
        return f"index levels on {self.n_index_days} days, member returns on {self.n_member_days}"


def members(panel: Panel, benchmark: str) -> np.ndarray:
    """[D, S] bool point-in-time membership; ValueError naming the known universes."""
    if benchmark not in panel.universes:
        raise ValueError(f"benchmark {benchmark!r} has no membership in the data; "
                         f"known: {sorted(panel.universes)}")
    return np.asarray(panel.universes[benchmark], bool)


def cap_weights(panel: Panel, benchmark: str) -> np.ndarray:
    """[D, S] float64 free-float cap weights of the members at each day's close (rows sum 1).

    Falls back to total shares where free-float shares are missing, and to equal weights
    on a day without any member cap. A day without members is all zeros.
    """
    member = members(panel, benchmark)
    close = forward_fill(panel["close"].astype(np.float64), panel.valid)
    shares = np.where(np.isfinite(panel["float_shares"]), panel["float_shares"],
                      panel["total_shares"]).astype(np.float64)
    shares = forward_fill(shares, np.isfinite(shares))
    cap = np.where(member & np.isfinite(close * shares), close * shares, 0.0)
    total = cap.sum(axis=1, keepdims=True)
    n = member.sum(axis=1, keepdims=True)
    equal = np.where(member, 1.0 / np.maximum(n, 1), 0.0)
    return np.where(total > 0, cap / np.where(total > 0, total, 1.0), equal)


def read_benchmark_weights(path: str | Path, panel: Panel) -> np.ndarray:
    """[D, S] weights from a ``date, code, weight`` parquet/CSV (real index weights).

    Each panel day takes the latest file date on or before it (weights are often
    published monthly), renormalized to sum 1; days before the first file date are 0.
    Codes not in the panel are dropped (their weight is renormalized away).
    """
    path = Path(path)
    df = pl.read_csv(path, try_parse_dates=True) if path.suffix == ".csv" \
        else pl.read_parquet(path)
    missing = {"date", "code", "weight"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: benchmark weights need columns date, code, weight; "
                         f"missing {sorted(missing)}")
    dates = df["date"].cast(pl.Date).to_numpy().astype("datetime64[D]")
    codes = df["code"].cast(pl.String).to_numpy().astype(str)
    si = np.searchsorted(panel.codes, codes)
    known = (si < len(panel.codes)) & (panel.codes[np.minimum(si, len(panel.codes) - 1)] == codes)
    file_days = np.unique(dates)
    raw = np.zeros((len(file_days), len(panel.codes)))
    np.add.at(raw, (np.searchsorted(file_days, dates[known]), si[known]),
              df["weight"].cast(pl.Float64).to_numpy()[known])
    pos = np.searchsorted(file_days, panel.dates, side="right") - 1
    out = np.where((pos >= 0)[:, None], raw[np.maximum(pos, 0)], 0.0)
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def benchmark_returns(panel: Panel, benchmark: str, weights: np.ndarray,
                      source: Literal["index", "members"] = "index") -> BenchmarkReturns:
    """[D] daily benchmark returns (see the module docstring); ``weights`` [D, S]."""
    member_ret = member_returns(panel, weights)
    code = panel.index_codes.get(benchmark)
    levels = panel.index_close.get(code) if code is not None else None
    if source == "members" or levels is None:
        return BenchmarkReturns(member_ret, 0, int(np.isfinite(member_ret).sum()))
    levels = np.asarray(levels, np.float64)
    idx_ret = np.full(len(levels), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        idx_ret[1:] = levels[1:] / levels[:-1] - 1
    use_index = np.isfinite(idx_ret)
    out = np.where(use_index, idx_ret, member_ret)
    return BenchmarkReturns(out, int(use_index.sum()),
                            int((~use_index & np.isfinite(member_ret)).sum()))


def stock_returns(panel: Panel) -> np.ndarray:
    """[D, S] daily total return close-to-close from adjusted prices; 0 while suspended.

    NaN up to the listing day; after delisting the last price is kept (return 0).
    """
    adj = forward_fill(panel["adj_close"].astype(np.float64), ~np.isnan(panel["adj_close"]))
    out = np.full(adj.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = adj[1:] / adj[:-1] - 1
    return out


def member_returns(panel: Panel, weights: np.ndarray) -> np.ndarray:
    """[D] Σᵢ weights[t-1, i] · rᵢ(t): the members' total return (NaN: day 0, no weights)."""
    ret = np.nan_to_num(stock_returns(panel))
    out = np.full(len(panel.dates), np.nan)
    prev = weights[:-1]
    total = prev.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = np.where(total > 0, (prev * ret[1:]).sum(axis=1) / total, np.nan)
    return out
