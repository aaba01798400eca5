"""Top-k portfolios (SPEC 5, report 2): top 10% and top 100, equal weight, with tracks.

Rebalance every ``period`` trading days (weekly = 5, biweekly = 10). Track ``o`` (0 <=
o < period) takes its signals on days ``lo + o, lo + o + period, ...`` of the factor's
span [lo, hi]; the portfolio trades at the signal day's close (``close_t0``) or on the
next day at its VWAP, open or close (``*_t1``), see ``backtest.portfolio``. Eligible at a
trade: in the universe at the signal day, scored, and buyable at the trade day (not
suspended, not at limit up by the close-based flag, whatever the trade price).
``topNpct`` holds the round(N% x n) best-scored eligible stocks (at least 1), ``topK``
the K best (all when fewer); ties by position. The reported series is the mean over
tracks of their daily returns (equal capital per track, re-balanced across tracks
daily), from the day every track has started. Benchmark, "the equal-weighted market":
the daily equal-weighted mean close-to-close return of the universe members of the
previous day that had a bar then (suspended stocks count 0 while suspended). Fees:
round trip ``fee`` (default 0.3%), figures before and after fees; the benchmark has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from backtest.context import TRADE_PRICES, MarketContext
from backtest.jit import market_mean_rows
from backtest.kernels import SortedRows, shared_sort
from backtest.metrics import performance, yearly_returns
from backtest.portfolio import Holdings, simulate_many

PORTFOLIOS = ("top10pct", "top100")
REBALANCE = {"weekly": 5, "biweekly": 10}
DEFAULT_FEE = 0.003


def top_counts(n: np.ndarray, name: str) -> np.ndarray:
    """[T] number of stocks held by portfolio ``name`` given ``n`` eligible stocks."""
    if name.startswith("top") and name.endswith("pct"):
        k = np.maximum(1, np.round(float(name[3:-3]) / 100 * n)).astype(np.int64)
    elif name.startswith("top") and name[3:].isdigit():
        k = np.full(n.shape, int(name[3:]), np.int64)
    else:
        raise ValueError(f"portfolio {name!r}: use topNpct or topK (e.g. top100)")
    return np.minimum(k, n)


def equal_weight_market(ctx: MarketContext, universe: np.ndarray) -> np.ndarray:
    """[D] daily mean return of yesterday's universe members that had a bar yesterday."""
    c = np.ascontiguousarray
    return market_mean_rows(c(ctx.price), c(universe), c(ctx.panel.valid), c(ctx.panel.listed))


def signal_ranking(ctx: MarketContext, score: np.ndarray, universe: np.ndarray,
                   span: tuple[int, int], lag: int, portfolios: Sequence[str] = PORTFOLIOS,
                   sorted_score: SortedRows | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signal days [T], [T, W] best eligible stocks, [T] eligible counts) of a span;
    W is the largest portfolio size needed. ``sorted_score``: the row sort of the whole
    ``score`` array, shared with the other tests."""
    lo, hi = span
    last = min(hi, len(ctx.dates) - 1 - lag)
    signals = np.arange(lo, last + 1)
    rows = slice(lo, last + 1)  # views, no gathers
    eligible = universe[rows] & ctx.can_buy[lo + lag:last + lag + 1]
    eligible &= np.isfinite(score[rows])
    n = np.count_nonzero(eligible, axis=1)
    width = max(int(top_counts(n, p).max(initial=0)) for p in portfolios)
    sorted_score = sorted_score if sorted_score is not None else SortedRows(score)
    order, n = sorted_score.select(signals, eligible, width, descending=True)
    return signals, order, n


def topk_returns(ctx: MarketContext, score: np.ndarray, universe: np.ndarray,
                 span: tuple[int, int], period: int, price: str, fee: float,
                 portfolios: Sequence[str] = PORTFOLIOS,
                 ranking: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                 ) -> dict[str, np.ndarray]:
    """Track-averaged daily gross / net returns [D, P] and mean turnover [P].

    ranking: :func:`signal_ranking` of the same span and trade lag, to share between calls.
    """
    return topk_returns_many(ctx, score, universe, span, period, [price], fee, portfolios,
                             ranking)[price]


def topk_returns_many(ctx: MarketContext, score: np.ndarray, universe: np.ndarray,
                      span: tuple[int, int], period: int, prices: Sequence[str], fee: float,
                      portfolios: Sequence[str] = PORTFOLIOS,
                      ranking: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                      ) -> dict[str, dict[str, np.ndarray]]:
    """:func:`topk_returns` for several trade prices with the same trade lag (the T+1 VWAP,
    open and close), price -> result: their portfolios hold the same stocks on the same
    days, so they are simulated together (:func:`backtest.portfolio.simulate_many`)."""
    lags = {ctx.trade_lag(p) for p in prices}
    if len(lags) != 1:
        raise ValueError(f"trade prices {list(prices)} have different trade lags")
    lag = lags.pop()
    lo, hi = span
    end = min(hi + lag + period, len(ctx.dates) - 1)
    signals, order, n = ranking or signal_ranking(ctx, score, universe, span, lag, portfolios)
    keep = signals + lag <= end
    signals, order, n = signals[keep], order[keep], n[keep]
    if signals.size == 0:
        raise ValueError(f"no top-k trade fits in the span {span}")
    trade_prices = [ctx.trade_price(p) for p in prices]
    tracks = [np.arange(o, signals.size, period) for o in range(min(period, signals.size))]
    gross = {p: [] for p in prices}
    net = {p: [] for p in prices}
    turnover = {p: [] for p in prices}
    for name in portfolios:
        k = top_counts(n, name)
        per_track = [simulate_many(ctx.price, trade_prices, signals[rows] + lag, end,
                                   Holdings.from_order(order[rows], np.zeros_like(k[rows]),
                                                       k[rows]), fee)
                     for rows in tracks]
        for j, p in enumerate(prices):
            sims = [track[j] for track in per_track]
            gross[p].append(np.mean([s.gross for s in sims], axis=0))
            net[p].append(np.mean([s.net for s in sims], axis=0))
            turnover[p].append(np.mean([s.turnover[1:].mean() if s.turnover.size > 1
                                        else np.nan for s in sims]))
    start = int(signals[len(tracks) - 1] + lag)
    out = {}
    for p in prices:
        res = {"gross": np.stack(gross[p], axis=1), "net": np.stack(net[p], axis=1),
               "turnover": np.array(turnover[p]), "start": np.array(start),
               "end": np.array(end)}
        res["gross"][:start] = np.nan
        res["net"][:start] = np.nan
        out[p] = res
    return out


def topk_tables(ctx: MarketContext, factors: dict[str, np.ndarray],
                spans: dict[str, tuple[int, int]], universe_name: str, universe: np.ndarray,
                prices: Sequence[str] = TRADE_PRICES, rebalance: dict[str, int] | None = None,
                fee: float = DEFAULT_FEE,
                portfolios: Sequence[str] = PORTFOLIOS,
                sorts: Mapping[str, SortedRows] | None = None) -> dict[str, pl.DataFrame]:
    """``topk_summary``, ``topk_yearly`` and ``topk_daily`` (net excess) for each factor.

    sorts: optional factor name -> row sort of its whole array (shared between tests)."""
    summary, yearly, daily = [], [], []
    market = equal_weight_market(ctx, universe)
    for name, score in factors.items():
        sorted_score = shared_sort(sorts, name, score)
        rankings = {lag: signal_ranking(ctx, score, universe, spans[name], lag, portfolios,
                                        sorted_score)
                    for lag in {ctx.trade_lag(p) for p in prices}}
        for freq, period in (rebalance or REBALANCE).items():
            results: dict[str, dict[str, np.ndarray]] = {}
            for lag, ranking in rankings.items():  # prices of one lag: one simulation pass
                same_lag = [p for p in prices if ctx.trade_lag(p) == lag]
                results.update(topk_returns_many(ctx, score, universe, spans[name], period,
                                                 same_lag, fee, portfolios, ranking))
            for price in prices:
                res = results[price]
                days = slice(int(res["start"]), int(res["end"]) + 1)
                dates, bench = ctx.dates[days], market[days]
                for j, port in enumerate(portfolios):
                    key = {"factor": name, "universe": universe_name, "portfolio": port,
                           "rebalance": freq, "price": price}
                    g, n = res["gross"][days, j], res["net"][days, j]
                    summary.append(_summary_row(key, g, n, bench, float(res["turnover"][j])))
                    ye, yn = yearly_returns(g - bench, dates), yearly_returns(n - bench, dates)
                    yearly.extend({**key, "year": y, "excess": ye[y], "excess_net": yn[y]}
                                  for y in ye)
                    daily.append(pl.DataFrame({**key, "date": dates, "excess_net": n - bench}))
    return {"topk_summary": pl.DataFrame(summary), "topk_yearly": pl.DataFrame(yearly),
            "topk_daily": pl.concat(daily).with_columns(pl.col("date").cast(pl.Date))}


def _summary_row(key: dict, gross: np.ndarray, net: np.ndarray, bench: np.ndarray,
                 turnover: float) -> dict:
    pg, pn = performance(gross, bench), performance(net, bench)
    return {**key, "ann_return": pg["ann_return"], "ann_return_net": pn["ann_return"],
            "ann_excess": pg["ann_excess"], "ann_excess_net": pn["ann_excess"],
            "info_ratio_net": pn["info_ratio"],
            "excess_max_drawdown_net": pn["excess_max_drawdown"],
            "sharpe_net": pn["sharpe"], "max_drawdown_net": pn["max_drawdown"],
            "turnover": turnover, "benchmark_ann_return": performance(bench)["ann_return"]}
