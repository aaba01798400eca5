"""Performance metrics of daily return series, with their definitions.

Conventions (used by every table of the report):
- Returns are simple daily fractions ``r_t = NAV_t / NAV_{t-1} - 1``; NAV is compounded:
  ``NAV_t = prod_{s<=t} (1 + r_s)`` starting from 1 before the first return.
- Annualization factor ``ANNUAL_DAYS = 252`` trading days per year.
- Annualized return is geometric: ``NAV_T ** (252 / n) - 1`` over ``n`` daily returns.
- Annualized volatility: ``std(r, ddof=1) * sqrt(252)``. Sharpe ratio is arithmetic:
  ``mean(r) / std(r, ddof=1) * sqrt(252)`` with a zero risk-free rate.
- Maximum drawdown: ``min_t NAV_t / max_{s<=t} NAV_s - 1`` on the compounded NAV, the
  starting NAV of 1 included (a negative fraction; 0 when NAV never falls).
- Excess return series: ``r_p - r_b`` per day (a daily rebalanced hedge), compounded into
  an excess NAV; annualized excess return is its geometric annualization, so it is not
  the difference of the two annualized returns.
- Year by year: the compounded return of the days within each calendar year.
- IC statistics: mean, std (ddof=1), ICIR = mean / std (not annualized), win rate = share
  of days with IC > 0, t-stat = mean / std * sqrt(n) over the n days with an IC (daily
  ICs of overlapping multi-day returns are autocorrelated, so this t overstates).
NaN returns (days before a portfolio starts) are dropped by every function.
"""

from __future__ import annotations

import numpy as np

ANNUAL_DAYS = 252


def _clean(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"expected a 1-d daily return series, got shape {r.shape}")
    return r[np.isfinite(r)]


def nav(r: np.ndarray) -> np.ndarray:
    """Compounded NAV after each day, ``cumprod(1 + r)``; NaN days count as 0 return."""
    return np.cumprod(1.0 + np.nan_to_num(np.asarray(r, dtype=np.float64)))


def annualized_return(r: np.ndarray, periods: int = ANNUAL_DAYS) -> float:
    """Geometric: ``prod(1 + r) ** (periods / n) - 1``; NaN for an empty series."""
    r = _clean(r)
    if r.size == 0:
        return float("nan")
    growth = float(np.prod(1.0 + r))
    return growth ** (periods / r.size) - 1.0 if growth > 0 else -1.0


def annualized_volatility(r: np.ndarray, periods: int = ANNUAL_DAYS) -> float:
    """``std(r, ddof=1) * sqrt(periods)``; NaN with fewer than 2 returns."""
    r = _clean(r)
    return float(np.std(r, ddof=1) * np.sqrt(periods)) if r.size > 1 else float("nan")


def sharpe_ratio(r: np.ndarray, periods: int = ANNUAL_DAYS) -> float:
    """``mean(r) / std(r, ddof=1) * sqrt(periods)`` (risk-free 0); NaN if std is 0."""
    r = _clean(r)
    if r.size < 2:
        return float("nan")
    sd = np.std(r, ddof=1)
    return float(np.mean(r) / sd * np.sqrt(periods)) if sd > 0 else float("nan")


def max_drawdown(r: np.ndarray) -> float:
    """``min_t NAV_t / running max NAV - 1`` on the compounded NAV (start NAV 1 included)."""
    r = _clean(r)
    if r.size == 0:
        return float("nan")
    values = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    return float(np.min(values / np.maximum.accumulate(values)) - 1.0)


def yearly_returns(r: np.ndarray, dates: np.ndarray) -> dict[int, float]:
    """Calendar year -> compounded return of that year's (finite) daily returns."""
    r = np.asarray(r, dtype=np.float64)
    years = np.asarray(dates).astype("datetime64[Y]").astype(int) + 1970
    out = {}
    for year in np.unique(years[np.isfinite(r)]):
        sel = (years == year) & np.isfinite(r)
        out[int(year)] = float(np.prod(1.0 + r[sel]) - 1.0)
    return out


def performance(r: np.ndarray, benchmark: np.ndarray | None = None) -> dict[str, float]:
    """Annualized return, volatility, Sharpe, max drawdown; with a benchmark also the
    annualized excess return, tracking error, information ratio and excess drawdown
    (all computed on the daily excess series ``r - benchmark``)."""
    out = {"ann_return": annualized_return(r), "ann_vol": annualized_volatility(r),
           "sharpe": sharpe_ratio(r), "max_drawdown": max_drawdown(r)}
    if benchmark is not None:
        ex = np.asarray(r, dtype=np.float64) - np.asarray(benchmark, dtype=np.float64)
        out.update({"ann_excess": annualized_return(ex), "tracking_error":
                    annualized_volatility(ex), "info_ratio": sharpe_ratio(ex),
                    "excess_max_drawdown": max_drawdown(ex)})
    return out


def ic_summary(ic: np.ndarray) -> dict[str, float]:
    """Mean, std (ddof 1), ICIR = mean / std, win rate (IC > 0), t-stat, n days."""
    x = _clean(ic)
    n = x.size
    mean = float(np.mean(x)) if n else float("nan")
    std = float(np.std(x, ddof=1)) if n > 1 else float("nan")
    icir = mean / std if n > 1 and std > 0 else float("nan")
    return {"mean": mean, "std": std, "icir": icir,
            "win_rate": float(np.mean(x > 0)) if n else float("nan"),
            "t_stat": icir * np.sqrt(n) if n > 1 else float("nan"), "n_days": float(n)}
