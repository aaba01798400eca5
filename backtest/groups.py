"""Group (quantile) test: weekly equal-weight portfolios of N factor groups.

Protocol (SPEC 5): on the last trading day s of each calendar week the stocks in the
universe (membership at s) with a score at s are sorted by it; the ones that can trade
at the close of the next trading day t = s + 1 (not suspended, not at limit up or limit
down at t) are cut into N equal-count groups (group N = highest scores; sizes differ by
at most one). Each group is bought at the close of t, equal weight, held to the next
rebalance (``backtest.portfolio``), no costs. The benchmark is the equal-weighted
portfolio of all the eligible stocks (the universe's average), rebalanced alike. The
last portfolio is held until the following week's trade day (or the data end).

:func:`quantile_mean_returns` is the simpler, alphalens-comparable statistic (mean
forward return per daily quantile, no trading rules), used to cross-check.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from backtest.context import MarketContext
from backtest.kernels import SortedRows, shared_sort
from backtest.metrics import max_drawdown, performance, yearly_returns
from backtest.portfolio import Holdings, simulate

DEFAULT_GROUPS = {"all": 20, "csi300": 5, "csi500": 10, "csi1000": 10}
OTHER_GROUPS = 10


def rank_groups(score: np.ndarray, eligible: np.ndarray, n_groups: int) -> np.ndarray:
    """[S] group 0..n-1 by ascending score among ``eligible`` (-1 elsewhere).

    Equal counts: the stock of ordinal rank r (0-based, ties by position) of n goes to
    ``floor(r * n_groups / n)``.
    """
    out = np.full(score.shape, -1, np.int64)
    idx = np.flatnonzero(eligible & np.isfinite(score))
    if idx.size:
        order = idx[np.argsort(score[idx], kind="stable")]
        out[order] = np.arange(idx.size) * n_groups // idx.size
    return out


def weekly_trade_days(ctx: MarketContext, lo: int, hi: int) -> tuple[np.ndarray, int]:
    """(trade days = day after each week's last trading day s in [lo, hi], holding end)."""
    week = ctx.week_id()
    last_of_week = np.flatnonzero(week[:-1] != week[1:])  # s with s + 1 in the next week
    signals = last_of_week[(last_of_week >= lo) & (last_of_week <= hi)]
    if signals.size == 0:
        raise ValueError("the factor spans no complete week with a following trade day")
    later = last_of_week[last_of_week > signals[-1]]
    end = int(later[0] + 1) if later.size else len(week) - 1
    return signals + 1, end


def group_holdings(score: np.ndarray | SortedRows, rows: np.ndarray, eligible: np.ndarray,
                   n_groups: int) -> list[Holdings]:
    """Per trade, groups 1..N (ascending score) then the benchmark (all eligible).

    score: [D, S] (or its row sort); rows: [T] signal days; eligible: [T, S]. Group g
    holds ordinal ranks ``ceil(g n / N) <= r < ceil((g + 1) n / N)``, i.e.
    ``floor(r N / n) == g`` as in :func:`rank_groups`; ties are broken by position.
    """
    sorted_score = score if isinstance(score, SortedRows) else SortedRows(score)
    order, n = sorted_score.select(rows, eligible)  # [T, S] ascending, ties by position
    bounds = [(g * n + n_groups - 1) // n_groups for g in range(n_groups + 1)]
    out = [Holdings.from_order(order, bounds[g], bounds[g + 1]) for g in range(n_groups)]
    return [*out, Holdings.from_order(order, np.zeros_like(n), n)]


def group_test(ctx: MarketContext, score: np.ndarray | SortedRows, universe: np.ndarray,
               span: tuple[int, int], n_groups: int) -> dict[str, np.ndarray]:
    """Daily returns [D, N + 1] (groups 1..N, then the benchmark) and turnover [T, N + 1].

    score: the factor [D, S] or its row sort (shared with the other tests)."""
    trade_days, end = weekly_trade_days(ctx, *span)
    signals = trade_days - 1
    tradable = ~ctx.suspended[trade_days] & ~ctx.limit_up[trade_days] \
        & ~ctx.limit_down[trade_days]
    holdings = group_holdings(score, signals, universe[signals] & tradable, n_groups)
    sims = [simulate(ctx.price, ctx.price, trade_days, end, h) for h in holdings]
    return {"returns": np.stack([s.gross for s in sims], axis=1),
            "turnover": np.stack([s.turnover for s in sims], axis=1),
            "trade_days": trade_days, "end": np.array(end)}


def group_tables(ctx: MarketContext, factors: Mapping[str, np.ndarray],
                 spans: Mapping[str, tuple[int, int]], universes: Mapping[str, np.ndarray],
                 n_groups: Mapping[str, int] | None = None,
                 sorts: Mapping[str, SortedRows] | None = None) -> dict[str, pl.DataFrame]:
    """``groups_annual`` (per group), ``groups_summary`` (top group), ``groups_yearly``,
    ``groups_daily`` (top, bottom, benchmark daily returns) for factor x universe.
    sorts: optional factor name -> row sort of its whole array (shared between tests)."""
    counts = {**DEFAULT_GROUPS, **(n_groups or {})}
    annual, summary, yearly, daily = [], [], [], []
    for name, values in factors.items():
        score = shared_sort(sorts, name, values)
        for uni, umask in universes.items():
            n = counts.get(uni, OTHER_GROUPS)
            res = group_test(ctx, score, umask, spans[name], n)
            r, t0, end = res["returns"], int(res["trade_days"][0]), int(res["end"])
            r = r[t0:end + 1]
            dates = ctx.dates[t0:end + 1]
            bench = r[:, n]
            for g in range(n):
                perf = performance(r[:, g], bench)
                annual.append({"factor": name, "universe": uni, "group": g + 1,
                               "ann_return": perf["ann_return"],
                               "ann_excess": perf["ann_excess"]})
            top, bottom = r[:, n - 1], r[:, 0]
            perf = performance(top, bench)
            summary.append({"factor": name, "universe": uni, "n_groups": n,
                            **{f"top_{k}": v for k, v in perf.items()},
                            "top_turnover": float(res["turnover"][1:, n - 1].mean())
                            if len(res["turnover"]) > 1 else float("nan"),
                            "bottom_ann_return": performance(bottom)["ann_return"],
                            "benchmark_ann_return": performance(bench)["ann_return"],
                            "long_short_ann": performance(top - bottom)["ann_return"],
                            "long_short_max_drawdown": max_drawdown(top - bottom),
                            "n_rebalances": len(res["trade_days"]),
                            "start": str(dates[0]), "end": str(dates[-1])})
            yt, yb, ye = (yearly_returns(x, dates) for x in (top, bench, top - bench))
            yearly.extend({"factor": name, "universe": uni, "year": y, "top_return": yt[y],
                           "benchmark_return": yb[y], "top_excess": ye[y]} for y in yt)
            daily.append(pl.DataFrame({"factor": name, "universe": uni, "date": dates,
                                       "top": top, "bottom": bottom, "benchmark": bench}))
    return {"groups_annual": pl.DataFrame(annual), "groups_summary": pl.DataFrame(summary),
            "groups_yearly": pl.DataFrame(yearly),
            "groups_daily": pl.concat(daily).with_columns(pl.col("date").cast(pl.Date))}


def quantile_mean_returns(score: np.ndarray, ret: np.ndarray, mask: np.ndarray,
                          n_quantiles: int) -> np.ndarray:
    """[Q] mean over days of each daily quantile's mean forward return (Q1 = lowest).

    Per day, stocks in ``mask`` with finite score and return are split into equal-count
    quantiles by ascending score (:func:`rank_groups`); days with fewer stocks than
    quantiles are skipped; a quantile's daily value is the equal-weighted mean return.
    """
    m = mask & np.isfinite(score) & np.isfinite(ret)
    total, count = np.zeros(n_quantiles), np.zeros(n_quantiles)
    for d in np.flatnonzero(m.sum(axis=1) >= n_quantiles):
        g = rank_groups(score[d], m[d], n_quantiles)
        ok = g >= 0
        sums = np.bincount(g[ok], ret[d][ok], n_quantiles)
        total += sums / np.bincount(g[ok], minlength=n_quantiles)
        count += 1
    return total / np.maximum(count, 1)
