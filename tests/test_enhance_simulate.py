"""Weekly enhancement simulation: NAV vs an independent share ledger, benchmark, schedule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from backtest.enhance import EnhanceConstraints, RelaxStep, TradingSettings, simulate
from backtest.enhance.benchmark import benchmark_returns, cap_weights, read_benchmark_weights
from backtest.enhance.market import EnhanceMarket, weekly_schedule
from backtest.styles import style_factors
from market.panel import Panel
from market.synthetic import generate_market, oracle_scores
from market.tradability import tradability

BENCH = "csi1000"
START = "2015-09-01"


@pytest.fixture(scope="module")
def world() -> dict:
    market = generate_market(n_stocks=120, n_days=260, seed=1)
    panel = Panel.from_market(market)
    weights = cap_weights(panel, BENCH)
    return {"panel": panel, "score": oracle_scores(market).astype(np.float64),
            "weights": weights, "bench": benchmark_returns(panel, BENCH, weights),
            "styles": style_factors(panel, ["size", "beta"])}


def run(world: dict, price: str, cons: EnhanceConstraints | None = None,
        ladder: tuple[RelaxStep, ...] | None = None, end: str | None = None):
    trading = TradingSettings(cost_round_trip=0.003, trade_price=price, solver="HIGHS")
    cons = cons or EnhanceConstraints(max_deviation=0.02, min_constituent_weight=0.5,
                                      style_bound=0.5, industry_bound=0.05, max_turnover=0.6)
    mkt = EnhanceMarket.build(world["panel"], world["score"], world["weights"],
                              world["styles"], price)
    kw = {"ladder": ladder} if ladder else {}
    return simulate(mkt, world["bench"].returns, cons, trading, start=START, end=end, **kw), mkt


def ledger_nav(panel: Panel, mkt: EnhanceMarket, weights: pl.DataFrame, dates: np.ndarray,
               price: str, half_cost: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Reference: hold shares; trade to the reported weights at the trade price, pay costs."""
    adj = panel["adj_close"].astype(np.float64)
    last = np.where(np.isfinite(adj), adj, np.nan)
    for d in range(1, len(adj)):  # forward fill, one day at a time
        last[d] = np.where(np.isnan(last[d]), last[d - 1], last[d])
    vwap = panel["vwap"] * adj / panel["close"]
    tp = np.where(panel.valid & np.isfinite(vwap), vwap, last) if price == "vwap" else last
    trades = {np.datetime64(d, "D"): g for (d,), g in weights.group_by("trade_date")}
    code_pos = {c: i for i, c in enumerate(panel.codes)}
    shares, cash, navs, pre_weights = np.zeros(len(panel.codes)), 1.0, [], []
    for day in dates:
        d = int(np.searchsorted(panel.dates, day))
        if day in trades:
            value = cash + np.nansum(shares * tp[d])
            pre = np.nan_to_num(shares * tp[d]) / value
            target = np.zeros(len(panel.codes))
            g = trades[day]
            target[[code_pos[c] for c in g["code"]]] = g["weight"].to_numpy()
            value *= 1 - half_cost * np.abs(target - pre).sum()
            shares = np.where(target > 0, target * value / tp[d], 0.0)
            cash = 0.0
            pre_weights.append(pre)
        navs.append(cash + np.nansum(shares * last[d]))
    return np.array(navs), pre_weights


@pytest.mark.parametrize("price", ["close", "vwap"])
def test_nav_matches_an_independent_share_ledger(world: dict, price: str) -> None:
    res, mkt = run(world, price)
    daily = res.daily
    assert res.rebalances.height >= 15 and (res.rebalances["step"] == 0).mean() > 0.8
    ref, pre = ledger_nav(world["panel"], mkt, res.weights, daily["date"].to_numpy(),
                          price, 0.0015)
    np.testing.assert_allclose(daily["nav"].to_numpy(), ref, rtol=1e-9)
    # costs: the first build trades 1.0 (from cash), later ones their turnover
    reb = res.rebalances
    assert reb["cost"][0] == pytest.approx(0.0015)
    np.testing.assert_allclose(reb["cost"][1:].to_numpy(),
                               0.0015 * reb["turnover_two_sided"][1:].to_numpy(), rtol=1e-9)
    # untradable stocks kept their pre-trade weight / moved only the allowed way
    tr = tradability(world["panel"])
    for k, (day, g) in enumerate(res.weights.group_by("trade_date", maintain_order=True)):
        t = int(np.searchsorted(world["panel"].dates, np.datetime64(day[0], "D")))
        w = np.zeros(len(world["panel"].codes))
        w[np.searchsorted(world["panel"].codes, g["code"].to_numpy())] = g["weight"].to_numpy()
        frozen = tr.suspended[t] & world["panel"].listed[t]
        np.testing.assert_allclose(w[frozen], pre[k][frozen], atol=1e-6)
        assert (w[tr.limit_up[t]] <= pre[k][tr.limit_up[t]] + 1e-6).all()
        assert (w[tr.limit_down[t] & ~frozen] >= pre[k][tr.limit_down[t] & ~frozen] - 1e-6).all()


def test_oracle_factor_beats_the_benchmark(world: dict) -> None:
    res, _ = run(world, "close")
    excess = res.daily["excess_ret"].to_numpy()
    assert np.prod(1 + excess) - 1 > 0.02  # the oracle knows next weeks' idiosyncratic returns
    np.testing.assert_allclose(res.daily["port_ret"] - res.daily["bench_ret"], excess)


def test_infeasible_rebalances_hold_and_are_recorded(world: dict) -> None:
    cons = EnhanceConstraints(max_deviation=0.02, min_constituent_weight=0.5, style_bound=0.0,
                              industry_bound=0.0, max_turnover=0.0)
    res, _ = run(world, "close", cons, ladder=(RelaxStep("as specified"),), end="2015-10-31")
    reb = res.rebalances
    assert reb["step"][0] == 0  # the first build has no turnover cap
    later = reb[1:]
    assert later.height >= 3 and (later["step"] == -1).all()
    assert later["step_name"].str.starts_with("hold").all()
    assert later["turnover_two_sided"].max() == 0.0 and later["cost"].max() == 0.0


def test_benchmark_weights_and_returns(world: dict) -> None:
    panel, w = world["panel"], world["weights"]
    member = panel.universes[BENCH]
    has = member.any(axis=1)
    np.testing.assert_allclose(w[has].sum(axis=1), 1.0)
    assert (w[~member] == 0).all()
    d = int(np.flatnonzero((panel.valid | ~member).all(axis=1) & has)[-1])  # no member suspended
    cap = panel["close"][d] * panel["float_shares"][d]
    np.testing.assert_allclose(w[d, member[d]], cap[member[d]] / cap[member[d]].sum(), rtol=1e-6)
    bench = world["bench"]
    assert bench.n_index_days == len(panel.dates) - 1 and bench.n_member_days == 0
    level = panel.index_close[panel.index_codes[BENCH]]
    np.testing.assert_allclose(bench.returns[1:], level[1:] / level[:-1] - 1)
    members = benchmark_returns(panel, BENCH, w, source="members")
    assert members.n_index_days == 0
    assert np.corrcoef(members.returns[1:], bench.returns[1:])[0, 1] > 0.95


def test_real_weights_file_is_forward_filled(world: dict, tmp_path) -> None:
    panel = world["panel"]
    df = pl.DataFrame({"date": [panel.dates[10].item()] * 2 + [panel.dates[50].item()],
                       "code": [panel.codes[0], panel.codes[1], panel.codes[2]],
                       "weight": [3.0, 1.0, 2.0]}).with_columns(pl.col("date").cast(pl.Date))
    df.write_parquet(tmp_path / "w.parquet")
    w = read_benchmark_weights(tmp_path / "w.parquet", panel)
    assert w[:10].sum() == 0
    np.testing.assert_allclose(w[10, :2], [0.75, 0.25])
    np.testing.assert_allclose(w[49, :2], [0.75, 0.25])
    np.testing.assert_allclose(w[50, :3], [0, 0, 1.0])


def test_weekly_schedule_trades_on_the_next_weeks_first_day() -> None:
    dates = np.array(["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-12",
                      "2024-01-16", "2024-01-17"], dtype="datetime64[D]")
    signal, trade = weekly_schedule(dates, np.ones(len(dates), bool))
    assert dates[signal].tolist() == [np.datetime64("2024-01-05").item(),
                                      np.datetime64("2024-01-12").item()]
    assert dates[trade].astype(str).tolist() == ["2024-01-08", "2024-01-16"]
    signal, _ = weekly_schedule(dates, np.array([1, 0, 1, 1, 1, 1, 1], bool))
    assert dates[signal].astype(str).tolist() == ["2024-01-12"]


def test_trading_settings_validate() -> None:
    with pytest.raises(ValueError, match="cost_round_trip"):
        TradingSettings(cost_round_trip=-0.1)
    with pytest.raises(ValueError, match="trade_price"):
        replace(TradingSettings(), trade_price="open")
