"""Cross-check IC and quantile returns against alphalens-reloaded on identical input.

alphalens is a test-only extra (``pip install alphalens-reloaded``); skipped without it.
alphalens cuts quantiles with ``pandas.qcut``; our equal-count rule ``floor(r * Q / n)``
gives the same groups whenever a day has ``n = k * Q + 1`` stocks, which the exact test
uses; on a real-looking market the quantile means agree to a tolerance.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from backtest.groups import quantile_mean_returns
from backtest.ic import daily_ic
from market.panel import Panel
from market.returns import forward_returns
from market.synthetic import generate_market, oracle_scores

al = pytest.importorskip("alphalens")
pd = pytest.importorskip("pandas")


def alphalens_stats(score: np.ndarray, ret: np.ndarray, dates: np.ndarray, n_q: int):
    """(per-date Spearman IC [D], mean of daily quantile mean returns [Q]) from alphalens."""
    d_idx, s_idx = np.nonzero(np.isfinite(score) & np.isfinite(ret))
    index = pd.MultiIndex.from_arrays([pd.DatetimeIndex(dates[d_idx]), s_idx],
                                      names=["date", "asset"])
    factor = pd.Series(score[d_idx, s_idx], index=index)
    fwd = pd.DataFrame({"10D": ret[d_idx, s_idx]}, index=index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = al.utils.get_clean_factor(factor, fwd, quantiles=n_q, max_loss=1.0)
        ic = al.performance.factor_information_coefficient(data)["10D"]
        by_date, _ = al.performance.mean_return_by_quantile(data, by_date=True,
                                                            demeaned=False)
    ic_full = pd.Series(np.nan, index=pd.DatetimeIndex(dates)).astype(float)
    ic_full.loc[ic.index] = ic.to_numpy()
    quant = by_date["10D"].groupby(level="factor_quantile").mean().to_numpy()
    return ic_full.to_numpy(), quant


def test_exact_match_on_constructed_input() -> None:
    rng = np.random.default_rng(0)
    n_days, n_stocks, n_q = 40, 41, 5  # 41 = 8 * 5 + 1 stocks a day
    score = rng.standard_normal((n_days, n_stocks))
    ret = 0.02 * rng.standard_normal((n_days, n_stocks)) + 0.004 * score
    dates = np.arange("2020-01-01", n_days, dtype="datetime64[D]")
    ic_al, q_al = alphalens_stats(score, ret, dates, n_q)
    mask = np.ones(score.shape, bool)
    np.testing.assert_allclose(daily_ic(score, ret, mask, "rank"), ic_al, atol=1e-12)
    np.testing.assert_allclose(quantile_mean_returns(score, ret, mask, n_q), q_al, atol=1e-12)
    assert q_al[-1] > q_al[0]


def test_synthetic_market_ic_exact_quantiles_close() -> None:
    market = generate_market(n_stocks=150, n_days=260, seed=4)
    panel = Panel.from_market(market)
    score = np.where(panel.valid, oracle_scores(market), np.nan)
    ret = forward_returns(panel, 10)
    days = slice(60, 240)
    score, ret, dates = score[days], ret[days], panel.dates[days]
    ic_al, q_al = alphalens_stats(score, ret, dates, 5)
    ours = daily_ic(score, ret, np.ones(score.shape, bool), "rank", min_stocks=3)
    np.testing.assert_allclose(ours, ic_al, atol=1e-12, equal_nan=True)
    assert np.nanmean(ours) > 0.1
    q = quantile_mean_returns(score, ret, np.ones(score.shape, bool), 5)
    np.testing.assert_allclose(q, q_al, atol=0.1 * (q_al.max() - q_al.min()))
    assert np.argsort(q).tolist() == np.argsort(q_al).tolist()
