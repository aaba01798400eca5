"""Style factors: definitions, standardization, no look-ahead."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backtest.styles import (STYLE_NAMES, StyleConfig, _beta_hsigma, _Inputs, _momentum,
                             standardize_styles, style_factors)
from market.panel import Panel
from market.synthetic import generate_market

SHORT = StyleConfig(beta_window=60, beta_halflife=20, beta_min_periods=30, momentum_window=80,
                    momentum_lag=5, momentum_halflife=30, momentum_min_periods=40,
                    dastd_window=60, dastd_halflife=15, dastd_min_periods=30, cmra_months=4,
                    liquidity_windows=(5, 20, 60), liquidity_min_periods=5)


@pytest.fixture(scope="module")
def panel() -> Panel:
    return Panel.from_market(generate_market(n_stocks=60, n_days=260, seed=5))


@pytest.fixture(scope="module")
def styles(panel: Panel) -> dict[str, np.ndarray]:
    return style_factors(panel, config=SHORT)


def test_standardize_weighted_mean_zero_equal_std_one() -> None:
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((4, 200)) ** 3  # heavy tails: clipping matters
    w = rng.random((4, 200)) + 0.5
    mask = rng.random((4, 200)) > 0.1
    z = standardize_styles(raw, w, mask)
    for d in range(4):
        m = mask[d]
        assert np.average(z[d][m], weights=w[d][m]) == pytest.approx(0, abs=1e-12)
        assert np.std(z[d][m]) == pytest.approx(1, abs=1e-12)
        assert np.isnan(z[d][~m]).all()
    m, x = mask[0], raw[0][mask[0]]
    ref = np.clip((x - np.average(x, weights=w[0][m])) / np.std(x), -3, 3)
    ref = (ref - np.average(ref, weights=w[0][m])) / np.std(ref)  # clip, then rescale once
    np.testing.assert_allclose(z[0][m], ref, atol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        standardize_styles(raw, w[:, :10], mask)


def test_size_is_standardized_log_cap(panel: Panel, styles) -> None:
    """Listed stocks, suspended ones at their last close x shares."""
    d = 200
    cap = np.full(panel.shape[1], np.nan)
    for j in range(panel.shape[1]):
        bars = np.flatnonzero(np.isfinite(panel["close"][:d + 1, j]))
        if panel.listed[d, j] and bars.size:
            cap[j] = panel["close"][bars[-1], j] * panel["total_shares"][bars[-1], j]
    m = np.isfinite(cap)
    assert (m & ~panel.valid[d]).any()  # a suspended stock is in the cross-section
    x = np.log(cap[m])
    z = (x - np.average(x, weights=cap[m])) / np.std(x)
    z = np.clip(z, -3, 3)
    z = (z - np.average(z, weights=cap[m])) / np.std(z)
    np.testing.assert_allclose(styles["size"][d][m], z, atol=1e-9)
    assert np.isnan(styles["size"][d][~m]).all()


def test_all_styles_present_and_standardized(panel: Panel, styles) -> None:
    assert list(styles) == list(STYLE_NAMES)
    d = 250
    for name, x in styles.items():
        ok = np.isfinite(x[d])
        assert ok.sum() > 30, name
        assert np.std(x[d][ok]) == pytest.approx(1, abs=1e-9), name
    # orthogonalized styles: no linear relation to size left on a day
    size = styles["size"][d]
    for name in ("non_linear_size", "liquidity"):
        ok = np.isfinite(size) & np.isfinite(styles[name][d])
        assert abs(np.corrcoef(size[ok], styles[name][d][ok])[0, 1]) < 0.05, name


def test_beta_hsigma_momentum_match_loops(panel: Panel) -> None:
    """Raw descriptors of a few stocks against weighted regressions written as loops."""
    inp = _Inputs.build(panel)
    beta, hsigma = _beta_hsigma(inp, SHORT)
    rstr = _momentum(inp, SHORT)
    lam = 0.5 ** (1 / SHORT.beta_halflife)
    t = 220
    stocks = np.flatnonzero(np.isfinite(beta[t]) & np.isfinite(rstr[t]))
    assert stocks.size > 30
    for j in stocks[:5]:
        ks = [k for k in range(SHORT.beta_window) if inp.have[t - k, j]]
        w = np.array([lam ** k for k in ks])
        x = inp.market[[t - k for k in ks]]
        y = inp.ret[[t - k for k in ks], j]
        mx, my = np.average(x, weights=w), np.average(y, weights=w)
        b = np.sum(w * (x - mx) * (y - my)) / np.sum(w * (x - mx) ** 2)
        resid = y - my - b * (x - mx)
        assert beta[t, j] == pytest.approx(b, rel=1e-8)
        assert hsigma[t, j] == pytest.approx(np.sqrt(np.average(resid ** 2, weights=w)), rel=1e-6)
        lm = 0.5 ** (1 / SHORT.momentum_halflife)
        want = sum(lm ** (k - SHORT.momentum_lag) * np.log1p(np.nan_to_num(inp.ret[t - k, j]))
                   for k in range(SHORT.momentum_lag, SHORT.momentum_lag + SHORT.momentum_window))
        assert rstr[t, j] == pytest.approx(want, rel=1e-8)
    with pytest.raises(ValueError, match="unknown style"):
        style_factors(panel, ["value"])


def test_no_look_ahead(panel: Panel, styles) -> None:
    """Scrambling every price and volume after day t leaves exposures up to t unchanged."""
    t = 180
    rng = np.random.default_rng(1)
    fields = {k: v.copy() for k, v in panel.fields.items()}
    for name in ("close", "preclose", "adj_close", "volume", "open", "vwap"):
        fields[name][t + 1:] *= rng.uniform(0.5, 1.5, fields[name][t + 1:].shape)
    fields["total_shares"][t + 1:] *= 3.0
    changed = dataclasses.replace(panel, fields=fields)
    after = style_factors(changed, config=SHORT)
    for name in STYLE_NAMES:
        np.testing.assert_array_equal(after[name][:t + 1], styles[name][:t + 1], err_msg=name)
        assert not np.allclose(np.nan_to_num(after[name][t + 5:]),
                               np.nan_to_num(styles[name][t + 5:])), name


def test_turnover_descriptors_match_direct_window_sums(panel: Panel) -> None:
    """STOM/STOQ/STOA equal log(21 x mean turnover) summed directly in float64 over each
    window (turnover is float32 in the panel: cumulative float32 sums lost precision)."""
    from backtest.styles import _turnover_descriptors

    inp = _Inputs.build(panel)
    got = _turnover_descriptors(inp, SHORT)
    have = inp.mask & np.isfinite(inp.turnover)
    t64 = np.where(have, inp.turnover.astype(np.float64), 0.0)
    for window, desc in zip(SHORT.liquidity_windows, got):
        for d in (window + 3, 150, 259):
            tot = t64[max(0, d - window + 1):d + 1].sum(axis=0)
            n = have[max(0, d - window + 1):d + 1].sum(axis=0)
            ok = (n >= min(SHORT.liquidity_min_periods, window)) & inp.mask[d] & (tot > 0)
            np.testing.assert_allclose(desc[d][ok], np.log(21 * tot[ok] / n[ok]), rtol=0,
                                       atol=1e-12)
            assert np.isnan(desc[d][~ok]).all()
