"""Metrics against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from backtest import metrics


def test_annualized_return_is_geometric() -> None:
    r = np.array([0.10, -0.05, np.nan, 0.02])  # NaN dropped: 3 days
    growth = 1.10 * 0.95 * 1.02
    assert metrics.annualized_return(r) == pytest.approx(growth ** (252 / 3) - 1)
    assert metrics.annualized_return(np.full(252, 0.001)) == pytest.approx(1.001 ** 252 - 1)
    assert np.isnan(metrics.annualized_return(np.array([np.nan])))


def test_sharpe_and_volatility() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0])
    sd = np.sqrt(((r - 0.005) ** 2).sum() / 3)
    assert metrics.annualized_volatility(r) == pytest.approx(sd * np.sqrt(252))
    assert metrics.sharpe_ratio(r) == pytest.approx(0.005 / sd * np.sqrt(252))
    assert np.isnan(metrics.sharpe_ratio(np.zeros(5)))


def test_max_drawdown_on_compounded_nav() -> None:
    # NAV: 1 -> 1.1 -> 0.55 -> 0.605 -> 1.21: the trough 0.55 / peak 1.1 - 1 = -50%
    r = np.array([0.10, -0.50, 0.10, 1.0])
    assert metrics.max_drawdown(r) == pytest.approx(-0.5)
    # a loss on the first day counts against the starting NAV of 1
    assert metrics.max_drawdown(np.array([-0.2, 0.1])) == pytest.approx(-0.2)
    assert metrics.max_drawdown(np.array([0.01, 0.02])) == 0.0


def test_excess_is_compounded_daily_difference() -> None:
    p = np.array([0.02, 0.01, -0.01])
    b = np.array([0.01, 0.01, 0.00])
    perf = metrics.performance(p, b)
    assert perf["ann_excess"] == pytest.approx((1.01 * 1.0 * 0.99) ** (252 / 3) - 1)
    assert perf["ann_excess"] != pytest.approx(perf["ann_return"]
                                               - metrics.annualized_return(b))


def test_yearly_returns() -> None:
    dates = np.array(["2019-12-30", "2019-12-31", "2020-01-02"], dtype="datetime64[D]")
    out = metrics.yearly_returns(np.array([0.1, 0.1, -0.5]), dates)
    assert out == {2019: pytest.approx(0.21), 2020: pytest.approx(-0.5)}


def test_ic_summary() -> None:
    ic = np.array([0.1, 0.2, -0.1, np.nan, 0.2])
    s = metrics.ic_summary(ic)
    sd = np.std([0.1, 0.2, -0.1, 0.2], ddof=1)
    assert s["mean"] == pytest.approx(0.1)
    assert s["icir"] == pytest.approx(0.1 / sd)
    assert s["win_rate"] == pytest.approx(0.75)
    assert s["t_stat"] == pytest.approx(0.1 / sd * 2)
    assert s["n_days"] == 4
    with pytest.raises(ValueError):
        metrics.annualized_return(np.zeros((2, 2)))
