"""Group test and top-k portfolios against a slow share-based hand loop on a tiny market."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from backtest.context import MarketContext
from backtest.groups import group_test, rank_groups, weekly_trade_days
from backtest.portfolio import Holdings, simulate
from backtest.kernels import SortedRows
from backtest.topk import equal_weight_market, top_counts, topk_returns, topk_returns_many
from market.panel import Panel
from market.synthetic import generate_market


@pytest.fixture(scope="module")
def ctx() -> MarketContext:
    return MarketContext.from_panel(Panel.from_market(
        generate_market(n_stocks=40, n_days=160, seed=3)))


@pytest.fixture(scope="module")
def score(ctx: MarketContext) -> np.ndarray:
    rng = np.random.default_rng(0)
    s = np.round(rng.standard_normal(ctx.price.shape), 1)  # ties broken by position
    return np.where(ctx.panel.valid, s, np.nan)


def hand_price(adj: np.ndarray) -> np.ndarray:
    out = np.full(adj.shape, np.nan)
    for j in range(adj.shape[1]):
        last = np.nan
        for d in range(adj.shape[0]):
            last = adj[d, j] if np.isfinite(adj[d, j]) else last
            out[d, j] = last
    return out


def hand_simulate(price, trade_price, trade_days, members, end, fee=0.0):
    """Shares and cash per portfolio; members[i][k] = list of stocks to hold after trade i."""
    k_count = len(members[0])
    out = np.full((price.shape[0], k_count), np.nan)
    hand_simulate.turnover = np.zeros((len(trade_days), k_count))
    for k in range(k_count):
        shares: dict[int, float] = {}
        cash, prev = 1.0, 1.0
        for i, t in enumerate(trade_days):
            x = lambda j: trade_price[t, j]  # noqa: E731
            value = cash + sum(n * x(j) for j, n in shares.items())
            buy = members[i][k]
            free = value
            new = {j: free / len(buy) / x(j) for j in buy}
            traded = sum(abs(new.get(j, 0.0) - shares.get(j, 0.0)) * x(j)
                         for j in set(new) | set(shares))
            hand_simulate.turnover[i, k] = traded / value / 2
            scale = 1 - traded * fee / 2 / value
            shares = {j: n * scale for j, n in new.items()}
            cash = (0.0 if buy else free) * scale
            stop = trade_days[i + 1] if i + 1 < len(trade_days) else end + 1
            for d in range(t, stop):
                v = cash + sum(n * price[d, j] for j, n in shares.items())
                out[d, k] = v / prev - 1
                prev = v
    return out


def test_rank_groups_equal_counts() -> None:
    score = np.array([5.0, 1.0, np.nan, 3.0, 2.0, 4.0, 0.0])
    elig = np.array([True, True, True, True, True, True, False])
    np.testing.assert_array_equal(rank_groups(score, elig, 2), [1, 0, -1, 0, 0, 1, -1])


def test_weekly_trade_days_use_calendar_weeks(ctx: MarketContext) -> None:
    days, end = weekly_trade_days(ctx, 10, 100)
    iso = [dt.date.fromisoformat(str(d)).isocalendar()[:2] for d in ctx.dates]
    want = [s + 1 for s in range(10, 101) if iso[s] != iso[s + 1]]
    assert days.tolist() == want
    assert iso[end - 1] != iso[end] and end > days[-1]


def test_group_test_matches_hand_loop(ctx: MarketContext, score: np.ndarray) -> None:
    n_groups, span = 4, (20, 120)
    universe = ctx.panel.listed
    res = group_test(ctx, score, universe, span, n_groups)
    days, end = weekly_trade_days(ctx, *span)
    price = hand_price(ctx.panel["adj_close"])
    blocked = ctx.suspended | ctx.limit_up | ctx.limit_down
    members = []
    for t in days:
        elig = [j for j in range(score.shape[1]) if universe[t - 1, j]
                and np.isfinite(score[t - 1, j]) and not blocked[t, j]]
        order = sorted(elig, key=lambda j: (score[t - 1, j], j))
        groups = [[j for r, j in enumerate(order) if r * n_groups // len(order) == g]
                  for g in range(n_groups)]
        members.append([*groups, order])
    want = hand_simulate(price, price, list(days), members, end)
    np.testing.assert_allclose(res["returns"][days[0]:end + 1], want[days[0]:end + 1],
                               atol=1e-10)
    np.testing.assert_allclose(res["turnover"], hand_simulate.turnover, atol=1e-12)
    assert np.isnan(res["returns"][:days[0]]).all()


def top_members(score_row: np.ndarray, eligible: np.ndarray, k: int) -> list[int]:
    elig = [j for j in range(len(score_row)) if eligible[j] and np.isfinite(score_row[j])]
    return sorted(elig, key=lambda j: (-score_row[j], j))[:k]


def test_simulate_with_fees_and_vwap_matches_hand_loop(ctx: MarketContext,
                                                       score: np.ndarray) -> None:
    trade = ctx.trade_price("vwap_t1")
    days = np.arange(30, 140, 7)
    elig = ctx.panel.listed[days - 1] & ctx.can_buy[days]
    order, n = ranked(score[days - 1], elig)
    k = top_counts(n, "top10pct")
    assert (k == np.maximum(1, np.round(0.1 * n))).all()
    sim = simulate(ctx.price, trade, days, 150, Holdings.from_order(order, 0 * k, k), 0.003)
    members = [[top_members(score[t - 1], elig[i], int(k[i]))] for i, t in enumerate(days)]
    price = hand_price(ctx.panel["adj_close"])
    want = hand_simulate(price, trade, list(days), members, 150, fee=0.003)
    np.testing.assert_allclose(sim.net[30:151], want[30:151, 0], atol=1e-10)
    gross = hand_simulate(price, trade, list(days), members, 150)
    np.testing.assert_allclose(sim.gross[30:151], gross[30:151, 0], atol=1e-10)
    np.testing.assert_allclose(sim.turnover, hand_simulate.turnover[:, 0], atol=1e-12)
    assert sim.turnover[0] == pytest.approx(0.5)  # from cash: buys only
    assert 0 < sim.turnover[1:].mean() <= 1
    assert (sim.net[30:151] <= sim.gross[30:151] + 1e-15).all()
    assert np.isnan(sim.gross[:30]).all() and np.isnan(sim.gross[151:]).all()


def test_simulate_many_equals_separate_runs_bit_for_bit(ctx: MarketContext,
                                                        score: np.ndarray) -> None:
    """The T+1 prices simulated together == each simulated alone (same sums, same order)."""
    from backtest.portfolio import simulate_many

    days = np.arange(30, 140, 5)
    elig = ctx.panel.listed[days - 1] & ctx.can_buy[days]
    order, n = ranked(score[days - 1], elig)
    k = top_counts(n, "top10pct")
    k[3] = 0  # an empty selection: cash
    hold = Holdings.from_order(order, 0 * k, k)
    prices = [ctx.trade_price(p) for p in ("vwap_t1", "open_t1", "close_t1")]
    together = simulate_many(ctx.price, prices, days, 150, hold, 0.003)
    for price, sim in zip(prices, together):
        alone = simulate(ctx.price, price, days, 150, hold, 0.003)
        for field in ("gross", "net", "turnover"):
            np.testing.assert_array_equal(getattr(sim, field), getattr(alone, field))
    assert not np.array_equal(together[0].net, together[1].net)  # the prices matter
    many = topk_returns_many(ctx, score, ctx.panel.listed, (20, 120), 5,
                             ["vwap_t1", "open_t1"], 0.003)
    for price in ("vwap_t1", "open_t1"):
        one = topk_returns(ctx, score, ctx.panel.listed, (20, 120), 5, price, 0.003)
        for key in ("gross", "net", "turnover"):  # NaN before the start: equal too
            np.testing.assert_array_equal(many[price][key], one[key])
    with pytest.raises(ValueError, match="trade lags"):
        topk_returns_many(ctx, score, ctx.panel.listed, (20, 120), 5,
                          ["close_t0", "open_t1"], 0.003)


def test_top_counts() -> None:
    n = np.array([0, 5, 29, 400])
    assert top_counts(n, "top10pct").tolist() == [0, 1, 3, 40]
    assert top_counts(n, "top100").tolist() == [0, 5, 29, 100]
    with pytest.raises(ValueError, match="portfolio"):
        top_counts(n, "best")


def test_topk_tracks_average(ctx: MarketContext, score: np.ndarray) -> None:
    span, period = (20, 120), 3
    res = topk_returns(ctx, score, ctx.panel.listed, span, period, "close_t1", 0.003,
                       ("top10pct",))
    end = int(res["end"])
    price = hand_price(ctx.panel["adj_close"])
    tracks = []
    for offset in range(period):
        signals = list(range(span[0] + offset, span[1] + 1, period))
        members = []
        for s in signals:
            elig = ctx.panel.listed[s] & ctx.can_buy[s + 1]
            n = int((elig & np.isfinite(score[s])).sum())
            members.append([top_members(score[s], elig, max(1, round(0.1 * n)))])
        tracks.append(hand_simulate(price, price, [s + 1 for s in signals], members, end,
                                    0.003))
    start = int(res["start"])
    assert start == span[0] + period - 1 + 1
    np.testing.assert_allclose(res["net"][start:end + 1, 0],
                               np.mean(tracks, axis=0)[start:end + 1, 0], atol=1e-10)
    assert np.isnan(res["net"][:start]).all()


def test_equal_weight_market(ctx: MarketContext) -> None:
    r = equal_weight_market(ctx, ctx.panel.listed)
    price, valid, listed = ctx.price, ctx.panel.valid, ctx.panel.listed
    for t in (50, 100):
        members = [j for j in range(price.shape[1]) if listed[t - 1, j] and valid[t - 1, j]
                   and listed[t, j]]
        assert r[t] == pytest.approx(np.mean([price[t, j] / price[t - 1, j] - 1
                                              for j in members]))


def test_context_forward_returns_match_market_returns(ctx: MarketContext) -> None:
    from market.returns import forward_returns

    for h in (1, 5, 10):
        np.testing.assert_array_equal(ctx.forward(h), forward_returns(ctx.panel, h))
    with pytest.raises(ValueError):
        ctx.forward(0)


def test_forward_sorted_fused_pass_matches_separate_steps(ctx: MarketContext) -> None:
    """Returns computed block by block while sorted == forward_returns, then row_order."""
    from backtest.jit import row_order
    from market.returns import forward_returns

    fresh = MarketContext.from_panel(ctx.panel)
    for h in (2, 20):
        got = fresh.forward_sorted(h)
        want = forward_returns(ctx.panel, h)
        np.testing.assert_array_equal(got.x, want)
        np.testing.assert_array_equal(got.order, row_order(want))
        assert fresh.forward(h) is got.x


def ranked(score: np.ndarray, elig: np.ndarray, width: int | None = None):
    """Best eligible stocks of every row by descending score (the top-k selection)."""
    return SortedRows(score).select(np.arange(len(score)), elig, width, descending=True)


def test_ranked_partial_order_matches_stable_sort() -> None:
    rng = np.random.default_rng(7)
    score = np.round(rng.standard_normal((30, 50)), 1)  # many ties
    score[rng.random(score.shape) < 0.1] = np.nan
    elig = rng.random(score.shape) < 0.8
    full, n = ranked(score, elig)
    for width in (1, 5, 17):
        part, n2 = ranked(score, elig, width)
        assert (n2 == n).all()
        for t in range(30):
            k = min(width, n[t])
            assert part[t, :k].tolist() == full[t, :k].tolist()
            want = top_members(score[t], elig[t], k)
            assert part[t, :k].tolist() == want
