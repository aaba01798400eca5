"""Kernels and IC against independent per-day references (scipy / numpy loops)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, rankdata, spearmanr

from backtest.ic import daily_ic
from backtest.kernels import (cross_sectional_residual, ewm_window_sum, rank_rows, row_corr,
                              row_rank_corr)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 40))
    y = 0.3 * x + rng.standard_normal((12, 40))
    x = np.round(x, 1)  # ties in the score
    y[:, :6] = 0.0  # ties in the return
    x[0, 5:] = np.nan  # a day with 5 stocks
    y[1, ::3] = np.nan
    x[2] = 1.5  # constant score day
    x[3, :38] = np.nan  # 2 stocks only
    mask = rng.random((12, 40)) > 0.2
    return x, y, mask


def reference(x: np.ndarray, y: np.ndarray, mask: np.ndarray, fn, min_count: int = 3):
    out = np.full(len(x), np.nan)
    for d in range(len(x)):
        m = mask[d] & np.isfinite(x[d]) & np.isfinite(y[d])
        if m.sum() >= min_count and np.ptp(x[d][m]) > 0 and np.ptp(y[d][m]) > 0:
            out[d] = fn(x[d][m], y[d][m])[0]
    return out


def test_rank_rows_matches_scipy_per_row(data) -> None:
    x = data[0]
    got = rank_rows(x)
    for d in range(len(x)):
        m = np.isfinite(x[d])
        np.testing.assert_array_equal(got[d][m], rankdata(x[d][m]))
        assert np.isnan(got[d][~m]).all()


def test_row_corr_and_rank_corr_match_scipy(data) -> None:
    x, y, mask = data
    np.testing.assert_allclose(row_corr(x, y, mask), reference(x, y, mask, pearsonr),
                               rtol=1e-10, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(row_rank_corr(x, y, mask), reference(x, y, mask, spearmanr),
                               rtol=1e-10, atol=1e-12, equal_nan=True)
    assert np.isnan(row_corr(x, y, mask)[[2, 3]]).all()  # constant day, too few stocks


def test_daily_ic_min_stocks_and_methods(data) -> None:
    x, y, mask = data
    ic = daily_ic(x, y, mask, "rank", min_stocks=10)
    ref = reference(x, y, mask, spearmanr, min_count=10)
    np.testing.assert_allclose(ic, ref, atol=1e-12, equal_nan=True)
    assert np.isnan(ic[0])  # 5 stocks < 10
    np.testing.assert_allclose(daily_ic(x, y, mask, "pearson", min_stocks=3),
                               reference(x, y, mask, pearsonr), atol=1e-12, equal_nan=True)
    with pytest.raises(ValueError, match="method"):
        daily_ic(x, y, mask, "kendall")


def test_row_corr_large_offset_keeps_precision() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 500))
    y = x + rng.standard_normal((3, 500))
    np.testing.assert_allclose(row_corr(x + 1e8, y), row_corr(x, y), atol=1e-7)


def test_ewm_window_sum_matches_loop() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 4))
    x[5, 1] = np.nan
    lam = 0.5 ** (1 / 7)
    got = ewm_window_sum(x, window=10, halflife=7, lag=3)
    x0 = np.nan_to_num(x)
    for t in range(60):
        want = sum(lam ** k * x0[t - 3 - k] for k in range(10) if t - 3 - k >= 0)
        np.testing.assert_allclose(got[t], want, atol=1e-12)
    np.testing.assert_allclose(ewm_window_sum(x, 5)[20], x0[16:21].sum(axis=0), atol=1e-12)
    with pytest.raises(ValueError):
        ewm_window_sum(x, 0)


def test_cross_sectional_residual_matches_lstsq() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 5, 30))
    y = 1 + 2 * a - b + rng.standard_normal((5, 30))
    w = rng.random((5, 30)) + 0.1
    mask = rng.random((5, 30)) > 0.1
    mask[4, 3:] = False  # 3 stocks, 3 coefficients: not estimable
    got = cross_sectional_residual(y, [a, b], mask, w)
    for d in range(4):
        m = mask[d]
        X = np.column_stack([np.ones(m.sum()), a[d][m], b[d][m]])
        sw = np.sqrt(w[d][m])
        coef = np.linalg.lstsq(X * sw[:, None], y[d][m] * sw, rcond=None)[0]
        np.testing.assert_allclose(got[d][m], y[d][m] - X @ coef, atol=1e-9)
        assert np.isnan(got[d][~m]).all()
    assert np.isnan(got[4]).all()


def test_daily_ic_sparse_universe_and_shared_sorts(data) -> None:
    """A sparse universe and shared sorts give the scipy numbers."""
    from backtest.kernels import SortedRows

    x, y, _ = data
    rng = np.random.default_rng(4)
    sparse = rng.random(x.shape) < 0.3
    np.testing.assert_allclose(daily_ic(x, y, sparse, "rank", min_stocks=3),
                               reference(x, y, sparse, spearmanr), atol=1e-12, equal_nan=True)
    dense = rng.random(x.shape) < 0.9
    shared = daily_ic(x, y, dense, "rank", min_stocks=3, sorted_score=SortedRows(x),
                      sorted_ret=SortedRows(y))
    np.testing.assert_allclose(shared, reference(x, y, dense, spearmanr), atol=1e-12,
                               equal_nan=True)
