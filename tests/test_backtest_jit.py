"""Compiled kernels (``backtest.jit``, market arrays) against their numpy formulations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from backtest.jit import adjusted_price_rows, row_order, scatter_unique
from backtest.kernels import SortedRows, row_rank_corr
from market.cn_shared import default_cn_shared_root
from market.returns import forward_fill
from market.sources import SyntheticMarket, load_panel
from market.tradability import tradability, tradability_reference


def test_row_order_is_exact_and_stable() -> None:
    row = [1.0, 1.0 + 2**-50, 1.0 + 2**-51, -0.0, 0.0, -1e-300, np.nan, -np.inf, np.inf, 1.0,
           1e300, -1e300, 5e-324]
    x = np.array([row, row[::-1]])
    order = row_order(x)
    for i in range(2):
        got = x[i][order[i]]
        assert np.isnan(got[-1]) and not np.isnan(got[:-1]).any()
        assert (np.diff(got[:-1]) >= 0).all()  # exact ascending order, NaN last
        # equal values (incl. -0.0 == 0.0) keep their column order, as a stable sort
        stable = np.argsort(np.where(np.isnan(x[i]), np.inf, x[i]), kind="stable")
        np.testing.assert_array_equal(order[i][:-2], stable[:-2])
    rng = np.random.default_rng(0)
    big = np.round(rng.standard_normal((40, 5000)), 2)  # 5,000 columns: 13 bits of index
    big[:, ::7] = np.nan
    big[:, 1::11] *= 1 + 1e-13  # near-equal values differing in the packed-away bits
    order = row_order(big)
    for i in range(40):
        fin = np.isfinite(big[i])
        np.testing.assert_array_equal(order[i][:fin.sum()],
                                      np.argsort(np.where(fin, big[i], np.inf),
                                                 kind="stable")[:fin.sum()])


def test_rank_corr_with_heavy_ties_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, (50, 300)).astype(float)  # five values: huge tie blocks
    y = np.round(x + rng.standard_normal((50, 300)), 0)
    x[rng.random(x.shape) < 0.1] = np.nan
    y[rng.random(y.shape) < 0.1] = -np.inf
    mask = rng.random(x.shape) < 0.7
    got = row_rank_corr(x, y, mask)
    ranks = SortedRows(x).ranks(mask & np.isfinite(y))
    for d in range(50):
        m = mask[d] & np.isfinite(x[d]) & np.isfinite(y[d])
        assert got[d] == pytest.approx(spearmanr(x[d][m], y[d][m])[0], abs=1e-12)
        np.testing.assert_array_equal(ranks[d][m], rankdata(x[d][m]))
        assert np.isnan(ranks[d][~m]).all()


def test_scatter_unique_counts() -> None:
    di = np.array([0, 1, 1, 2, 0])
    si = np.array([1, 0, 2, 2, 1], dtype=np.uint32)
    keep = np.array([True, True, True, False, True])
    vals = np.array([1.0, np.inf, 3.0, 4.0, 5.0])
    valid = np.array([[True, True, False], [False, True, True], [True, True, True]])
    out, stats = scatter_unique(di, si, keep, vals, 3, 3, valid)
    assert stats == (1, 1, 0, 1, 2, 4, 0)  # dup, non-finite, first, last, scored&valid, ...
    assert out[0, 1] == 5.0 and np.isnan(out[1, 0]) and out[1, 2] == 3.0
    assert np.isnan(out[2]).all()


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    return load_panel(SyntheticMarket(n_stocks=120, n_days=400, seed=3),
                      str(tmp_path_factory.mktemp("panels")))


def test_market_kernels_match_numpy(panel) -> None:
    a, b = tradability(panel), tradability_reference(panel)
    par = tradability(panel, parallel=True)  # 120 stocks: two column blocks
    for name in ("suspended", "limit_up", "limit_down", "st", "no_limit_ipo"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        np.testing.assert_array_equal(getattr(par, name), getattr(b, name), err_msg=name)
    assert a.limit_up.any() and a.limit_down.any()
    adj = np.asarray(panel["adj_close"], dtype=np.float64)
    have = np.isfinite(adj)
    idx = np.where(have, np.arange(adj.shape[0])[:, None], 0)
    ref = np.take_along_axis(adj, np.maximum.accumulate(idx, axis=0), 0)
    ref = np.where(np.maximum.accumulate(have, axis=0), ref, np.nan)
    price = forward_fill(adj, have)
    np.testing.assert_array_equal(price, ref)
    np.testing.assert_array_equal(forward_fill(adj, have, parallel=True), ref)
    raw, close = panel["vwap"], panel["close"]
    with np.errstate(all="ignore"):
        want = raw.astype(np.float64) * (adj / close.astype(np.float64))
    want = np.where(np.isfinite(want) & (want > 0), want, price)
    np.testing.assert_array_equal(adjusted_price_rows(raw, close, adj, price), want)


@pytest.mark.skipif(default_cn_shared_root() is None, reason="../shared/data not available")
def test_tradability_kernel_matches_numpy_on_real_data(tmp_path) -> None:
    """Three years of the real market: every limit rule (ST, STAR, IPO caps) exercised."""
    from market.sources import CNSharedMarket

    real = load_panel(CNSharedMarket(start="2017-01-01", end="2019-12-31"), str(tmp_path))
    a, b = tradability(real), tradability_reference(real)
    par = tradability(real, parallel=True)
    for name in ("limit_up", "limit_down", "no_limit_ipo"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        np.testing.assert_array_equal(getattr(par, name), getattr(b, name), err_msg=name)
    assert a.limit_up.sum() > 1000 and a.no_limit_ipo.any()


def test_row_ic_fuses_pearson_and_spearman() -> None:
    from backtest.kernels import row_corr, row_ic

    rng = np.random.default_rng(5)
    x = np.round(rng.standard_normal((30, 200)), 1)
    y = 0.2 * x + rng.standard_normal((30, 200))
    x[rng.random(x.shape) < 0.2] = np.nan
    mask = rng.random(x.shape) < 0.8
    rank, raw = row_ic(SortedRows(x), SortedRows(y), mask, min_count=10)
    np.testing.assert_array_equal(rank, row_rank_corr(x, y, mask, min_count=10))
    np.testing.assert_allclose(raw, row_corr(x, y, mask, min_count=10), rtol=0, atol=1e-15)
    assert np.isnan(row_ic(SortedRows(x), SortedRows(y), mask, pearson=False)[1]).all()


def test_ewm_window_sum_equals_the_numpy_formulation() -> None:
    """Bit-identical to ``E[t] - lam^w E[t-w]`` computed with whole-row numpy passes."""
    from backtest.kernels import decay_scan, ewm_window_sum

    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 70))
    x[rng.random(x.shape) < 0.1] = np.nan
    for window, halflife, lag in ((40, 10, 0), (60, 20, 7), (21, None, 0), (5, None, 3)):
        lam = 1.0 if halflife is None else 0.5 ** (1 / halflife)
        want = decay_scan(np.where(np.isfinite(x), x, 0.0), lam)
        want[window:] -= lam ** window * want[:-window]
        want = np.vstack([np.zeros((lag, 70)), want[:300 - lag]])
        np.testing.assert_array_equal(ewm_window_sum(x, window, halflife, lag), want)


def test_standardize_matches_numpy_formulation() -> None:
    from backtest.styles import standardize_styles

    rng = np.random.default_rng(7)
    raw = 3 * rng.standard_normal((40, 90))
    raw[rng.random(raw.shape) < 0.1] = np.nan
    w = rng.random((40, 90))
    w[3] = 0.0  # no usable weight: equal weights
    mask = rng.random((40, 90)) < 0.9
    m = mask & np.isfinite(raw)
    ww = np.where(m & (w > 0), w, 0.0)
    ww = np.where((ww.sum(axis=1) > 0)[:, None], ww, m)
    z = np.where(m, raw, 0.0)
    for clip in (True, False):
        n = m.sum(axis=1)
        mu_w = (ww * z).sum(axis=1) / ww.sum(axis=1)
        sd = np.sqrt((z * z).sum(axis=1) / n - (z.sum(axis=1) / n) ** 2)
        z = (z - mu_w[:, None]) / sd[:, None] * m
        z = np.clip(z, -3, 3) if clip else z
    np.testing.assert_allclose(standardize_styles(raw, w, mask), np.where(m, z, np.nan),
                               atol=1e-12)


def test_parallel_market_kernels_match_serial_across_column_blocks() -> None:
    """forward_fill and forward returns on every core: blocks of 256 stocks, same values."""
    from market.returns import forward_returns_from_price

    rng = np.random.default_rng(11)
    a = np.cumprod(1 + 0.01 * rng.standard_normal((60, 700)), axis=0)
    have = rng.random(a.shape) > 0.2
    have[:5, 300:320] = False  # stocks listed later
    price = forward_fill(a, have)
    np.testing.assert_array_equal(forward_fill(a, have, parallel=True), price)
    listed, valid = rng.random(a.shape) > 0.05, have
    for h in (1, 5, 20):
        np.testing.assert_array_equal(
            forward_returns_from_price(price, listed, valid, h, parallel=True),
            forward_returns_from_price(price, listed, valid, h))


def test_first_true_is_argmax_along_days() -> None:
    from market.tradability import _first_true

    rng = np.random.default_rng(2)
    a = rng.random((40, 300)) < 0.05
    a[:, :7] = False  # never true: 0, as argmax
    np.testing.assert_array_equal(_first_true(a), np.argmax(a, axis=0))
