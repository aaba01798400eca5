"""Enhancement report: metric definitions on hand-made series, constraint summary, HTML."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from backtest.enhance import EnhanceResult, TradingSettings, report1
from backtest.enhance.report import (constraint_summary, html_section, monthly_win_rate,
                                     performance_table, write_report)


def make_result() -> EnhanceResult:
    """Two years of business days: +2 bp a day of excess, one bad month (March 2020)."""
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2021-12-31"))
    dates = dates[np.is_busday(dates)]
    n = len(dates)
    bench = np.full(n, 0.0003)
    excess = np.full(n, 0.0002)
    march = (dates >= np.datetime64("2020-03-01")) & (dates < np.datetime64("2020-04-01"))
    excess[march] = -0.001
    port = bench + excess
    daily = pl.DataFrame({"date": dates, "port_ret": port, "bench_ret": bench,
                          "excess_ret": excess, "nav": np.cumprod(1 + port),
                          "bench_nav": np.cumprod(1 + bench)})
    trade = [dt.date(2020, 1, 2), dt.date(2020, 6, 1), dt.date(2021, 6, 1)]
    reb = pl.DataFrame({"signal_date": trade, "trade_date": trade, "step": [0, 1, 0],
                        "step_name": ["as specified", "turnover x2", "as specified"],
                        "seconds": [0.1] * 3, "n_names": [10] * 3,
                        "max_deviation": [0.008, 0.0079, 0.006],
                        "max_deviation_all": [0.008, 0.01, 0.006], "n_forced": [0.0, 1, 0],
                        "constituent_weight": [0.85, 0.8, 0.81], "max_industry": [0.02, 0.01, 0],
                        "turnover_two_sided": [1.0, 0.6, 0.2],
                        "turnover_one_sided": [0.5, 0.3, 0.1], "n_holdings": [50.0] * 3,
                        "objective": [1.0] * 3, "budget_error": [0.0] * 3,
                        "min_weight": [0.0] * 3, "style_size": [0.1, -0.3, 0.2],
                        "cost": [0.00125, 0.00075, 0.00025], "initial": [True, False, False]})
    return EnhanceResult(daily, reb, pl.DataFrame(), report1()[0], TradingSettings())


def test_performance_table_numbers() -> None:
    res = make_result()
    table = performance_table(res)
    assert table["period"].to_list() == ["all", "2020", "2021"]
    row = table.row(0, named=True)
    ex = res.daily["excess_ret"].to_numpy()
    n = len(ex)
    assert row["ann_excess"] == pytest.approx(np.prod(1 + ex) ** (252 / n) - 1)
    assert row["tracking_error"] == pytest.approx(np.std(ex, ddof=1) * np.sqrt(252))
    assert row["info_ratio"] == pytest.approx(ex.mean() / np.std(ex, ddof=1) * np.sqrt(252))
    nav = np.concatenate([[1.0], np.cumprod(1 + ex)])
    mdd = (nav / np.maximum.accumulate(nav)).min() - 1
    assert row["excess_max_drawdown"] == pytest.approx(mdd)
    assert row["calmar"] == pytest.approx(row["ann_excess"] / abs(mdd))
    assert row["monthly_win_rate"] == pytest.approx(23 / 24)  # only March 2020 lost
    assert row["turnover_two_sided"] == pytest.approx(0.4)  # first build excluded
    assert row["turnover_one_sided"] == pytest.approx(0.2)
    assert (row["rebalances"], row["relaxed"]) == (3, 1)
    assert row["cost"] == pytest.approx(0.00225 / (n / 252))
    y2021 = table.row(2, named=True)
    assert y2021["monthly_win_rate"] == 1.0 and y2021["turnover_two_sided"] == pytest.approx(0.2)
    assert y2021["excess_max_drawdown"] == 0.0


def test_monthly_win_rate_compounds_within_months() -> None:
    dates = np.array(["2020-01-02", "2020-01-03", "2020-02-03"], dtype="datetime64[D]")
    assert monthly_win_rate(np.array([0.1, -0.095, 0.01]), dates) == 0.5  # 1.1*0.905 < 1


def test_constraint_summary_and_html(tmp_path) -> None:
    res = make_result()
    summary = {r[0]: r[1:] for r in constraint_summary(res).iter_rows()}
    assert summary["max |w - b| (tradable stocks)"] == (0.008, 0.008)
    assert summary["constituent weight (min)"] == (0.8, 0.8)
    assert summary["turnover_two_sided (after the first build)"] == (0.3, 0.6)
    assert summary["|size exposure|"] == (0.3, 0.3)
    page = html_section(res, "demo", {"fig": "AAAA"})
    assert "turnover x2" in page and "data:image/png;base64,AAAA" in page
    paths = write_report(res, tmp_path, "demo")
    assert pl.read_csv(paths["metrics"]).height == 3
    assert paths["html"].read_text().count("<img") == 2
