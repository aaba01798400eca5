"""IC tests: per-day IC and Rank IC of each factor against forward returns.

Day t's IC is the cross-sectional Pearson correlation (Rank IC: Spearman, average ranks
for ties, both sides ranked among the same stocks) between the factor at t and the
forward return ``close t+1 -> close t+1+h`` (``market.returns.forward_returns``, adjusted
prices), over the stocks in the universe at t (point-in-time membership) with a finite
score and a finite return. Days with fewer than ``MIN_STOCKS`` such stocks have no IC.
Summaries (:func:`backtest.metrics.ic_summary`) are over the factor's days with an IC:
mean, std, ICIR = mean / std, win rate, t-stat; also per calendar year, and the decay of
the mean Rank IC over horizons (first universe only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from backtest.data import Factors
from backtest.kernels import SortedRows, row_corr, row_ic, row_rank_corr, shared_sort
from backtest.metrics import ic_summary

MIN_STOCKS = 10
METRICS = ("ic", "rank_ic")


def daily_ic(score: np.ndarray, ret: np.ndarray, mask: np.ndarray, method: str = "rank",
             min_stocks: int = MIN_STOCKS, sorted_score: SortedRows | None = None,
             sorted_ret: SortedRows | None = None) -> np.ndarray:
    """[D] per-day IC (``method='pearson'``) or Rank IC (``'rank'``) over ``mask``.

    ``sorted_score`` / ``sorted_ret``: optional row sorts of ``score`` / ``ret`` shared
    between calls (one sort per array serves every universe and partner).
    """
    if method not in ("pearson", "rank"):
        raise ValueError(f"method must be 'pearson' or 'rank', got {method!r}")
    if not score.shape == ret.shape == mask.shape:
        raise ValueError(f"score, ret, mask shapes differ: {score.shape}, {ret.shape}, "
                         f"{mask.shape}")
    if method == "pearson":
        return row_corr(score, ret, mask, min_count=min_stocks)
    return row_rank_corr(sorted_score if sorted_score is not None else score,
                         sorted_ret if sorted_ret is not None else ret, mask,
                         min_count=min_stocks)


def _years(dates: np.ndarray) -> np.ndarray:
    return dates.astype("datetime64[Y]").astype(int) + 1970


def ic_analysis(factors: Factors, forward: Mapping[int, np.ndarray | SortedRows],
                dates: np.ndarray,
                universes: Mapping[str, np.ndarray], horizons: Sequence[int],
                decay_horizons: Sequence[int] = (),
                sorts: Mapping[str, SortedRows] | None = None) -> dict[str, pl.DataFrame]:
    """IC tables for every factor x universe x horizon.

    forward: horizon -> [D, S] forward returns, or their :class:`SortedRows` (the row sort
    shared by every factor; ``MarketContext.forward_sorted``), for every horizon used;
    universes: name -> [D, S] bool. Returns ``ic_daily`` (factor, universe, horizon, date,
    ic, rank_ic), ``ic_summary`` (one row per factor, universe, horizon, metric),
    ``ic_yearly`` (per calendar year: mean, icir, win_rate, n_days) and ``ic_decay``
    (mean Rank IC and ICIR per horizon of ``decay_horizons`` in the first universe).
    sorts: optional factor name -> row sort of its whole array (shared between tests).
    """
    daily, summary, yearly, decay = [], [], [], []
    first_universe = next(iter(universes))
    sorted_fwd = {h: f if isinstance(f, SortedRows) else SortedRows(f)
                  for h, f in forward.items()}
    for name in factors.names:
        lo, hi = factors.spans[name]
        days = dates[lo:hi + 1]
        sorted_score = shared_sort(sorts, name, factors.values[name]).rows(lo, hi)
        for uni, umask in universes.items():
            hs = sorted(set(horizons) | (set(decay_horizons) if uni == first_universe else set()))
            for h in hs:
                rank, ic = row_ic(sorted_score, sorted_fwd[h].rows(lo, hi), umask[lo:hi + 1],
                                  MIN_STOCKS, pearson=h in horizons)
                if h in horizons:
                    daily.append(pl.DataFrame({"factor": name, "universe": uni, "horizon": h,
                                               "date": days, "ic": ic, "rank_ic": rank}))
                    for metric, x in (("ic", ic), ("rank_ic", rank)):
                        summary.append({"factor": name, "universe": uni, "horizon": h,
                                        "metric": metric, **ic_summary(x)})
                        yearly.extend(_yearly_rows(x, days, name, uni, h, metric))
                if uni == first_universe and h in decay_horizons:
                    st = ic_summary(rank)
                    decay.append({"factor": name, "universe": uni, "horizon": h,
                                  "rank_ic": st["mean"], "rank_icir": st["icir"]})
    return {"ic_daily": pl.concat(daily).with_columns(pl.col("date").cast(pl.Date)),
            "ic_summary": pl.DataFrame(summary), "ic_yearly": pl.DataFrame(yearly),
            "ic_decay": pl.DataFrame(decay)}


def _yearly_rows(x: np.ndarray, days: np.ndarray, name: str, uni: str, h: int,
                 metric: str) -> list[dict]:
    years = _years(days)
    rows = []
    for year in np.unique(years):
        st = ic_summary(x[years == year])
        rows.append({"factor": name, "universe": uni, "horizon": h, "metric": metric,
                     "year": int(year), "mean": st["mean"], "icir": st["icir"],
                     "win_rate": st["win_rate"], "n_days": st["n_days"]})
    return rows
