"""The fast data paths (issue 8) against the plain formulas they replace.

Labels: :mod:`datamodules.labels` against :mod:`market.returns` (and the compiled
forward returns there against their numpy formulation); inputs, eligibility and
the normalizer's statistics against the per-feature / cumulative-sum / ``np.nanmedian``
formulas they replaced; a day's batch (gather, scaling and normalizer fused) against
``normalizer.transform(scale_windows(...))``. All bit-identical.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

import market.returns as ref
from datamodules import labels
from datamodules.features import (PRICE_FEATURES, RobustNormalizer, _tile, build_inputs,
                                  divisor_columns, eligibility, nanmedian_rows, scale_windows,
                                  window_counts)
from market.panel import Panel
from market.synthetic import generate_market


@pytest.fixture(scope="module")
def panel() -> Panel:
    # listings, delistings and suspensions: NaN runs, entries without a bar, exits after
    # delisting
    return Panel.from_market(generate_market(n_stocks=120, n_days=500, seed=11,
                                             listing_fraction=0.3, suspension_rate=0.02))


def _identical(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)  # NaN == NaN here, everything else bit for bit


def plain_forward_returns(panel: Panel, horizon: int, entry_lag: int) -> np.ndarray:
    """The numpy formulation the compiled ``market.returns.forward_returns`` replaced."""
    adj = np.asarray(panel["adj_close"], dtype=np.float64)
    have = ~np.isnan(adj)
    idx = np.where(have, np.arange(adj.shape[0])[:, None], 0)
    price = np.take_along_axis(adj, np.maximum.accumulate(idx, axis=0), 0)
    price = np.where(np.maximum.accumulate(have, axis=0), price, np.nan)
    price = np.where(panel.listed, price, np.nan)  # after delisting the exit is unknown
    out = np.full(price.shape, np.nan)
    n = len(panel.dates) - entry_lag - horizon
    if n > 0:
        entry = np.where(panel.valid[entry_lag:entry_lag + n], price[entry_lag:entry_lag + n],
                         np.nan)
        out[:n] = price[entry_lag + horizon:entry_lag + horizon + n] / entry - 1
    return out


@pytest.mark.parametrize("horizon,entry_lag", [(1, 1), (10, 1), (5, 0), (600, 1)])
def test_forward_returns_identical(panel: Panel, horizon: int, entry_lag: int) -> None:
    _identical(ref.forward_returns(panel, horizon, entry_lag),
               plain_forward_returns(panel, horizon, entry_lag))


def test_forward_returns_rejects_bad_arguments(panel: Panel) -> None:
    with pytest.raises(ValueError):
        ref.forward_returns(panel, 0)
    with pytest.raises(ValueError):
        ref.forward_returns(panel, 5, -1)


def test_log_market_cap_as_the_plain_formula(panel: Panel) -> None:
    panel = dataclasses.replace(panel, fields=dict(panel.fields))  # the fixture stays as is
    mcap = panel.market_cap()
    mcap[::7, ::5] = 0.0  # non-positive caps give NaN
    mcap[::11, ::3] = -1.0
    panel.fields["total_shares"] = (mcap / panel["close"].astype(np.float64)).astype(np.float32)
    mcap = panel.market_cap()
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(mcap > 0, np.log(mcap), np.nan)
    _identical(labels.log_market_cap(panel), expected)


def test_ols_residuals_identical(panel: Panel) -> None:
    y = ref.forward_returns(panel, 5)
    lmc = labels.log_market_cap(panel)
    rng = np.random.default_rng(0)
    mask = panel.valid & (rng.random(y.shape) > 0.1)
    mask[40] = False  # a day without stocks
    groups = panel.industry.copy()
    groups[50, :] = 0  # a day with one industry
    _identical(labels.ols_residuals(y, lmc, groups, mask),
               ref.neutralize(y, lmc, groups.astype(np.int64), mask))


def test_cross_sectional_rank_identical_with_ties_and_empty_days() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((60, 300))
    y[::3] = np.round(y[::3], 1)  # many ties
    y[5] = 2.0  # a constant day: 0 everywhere
    y[rng.random(y.shape) < 0.2] = np.nan
    y[7, :] = np.nan  # an empty day
    y[8, :-1] = np.nan  # a one-stock day
    mask = rng.random(y.shape) > 0.1
    for m in (mask, None):
        _identical(labels.cross_sectional_rank(y, m), ref.cross_sectional_rank(y, m))


@pytest.mark.parametrize("transform", ["rank", "zscore", "raw"])
@pytest.mark.parametrize("neutralize", [True, False])
def test_make_labels_as_the_reference_pipeline(panel: Panel, transform: str,
                                               neutralize: bool) -> None:
    eligible = panel.valid & (np.random.default_rng(2).random(panel.valid.shape) > 0.05)
    fwd = ref.forward_returns(panel, 10)
    mask = eligible & np.isfinite(fwd)
    if neutralize:
        mcap = panel.market_cap()
        with np.errstate(divide="ignore", invalid="ignore"):
            lmc = np.where(mcap > 0, np.log(mcap), np.nan)
        mask &= np.isfinite(lmc)
        y = ref.neutralize(fwd, lmc, panel.industry.astype(np.int64), mask)
    else:
        y = np.where(mask, fwd, np.nan)
    y = {"rank": lambda: ref.cross_sectional_rank(y, mask),
         "zscore": lambda: ref.cross_sectional_zscore(y, mask), "raw": lambda: y}[transform]()
    got = labels.make_labels(panel, 10, eligible, transform, neutralize)
    _identical(got, y.astype(np.float32))
    if neutralize:
        lmc = labels.log_market_cap(panel)
        _identical(labels.make_labels(panel, 10, eligible, transform, neutralize, log_mcap=lmc),
                   got)


def test_build_inputs_as_the_per_feature_formula(panel: Panel) -> None:
    feats = ["open", "high", "low", "close", "vwap", "volume", "amount"]
    ratio = panel["adj_close"] / panel["close"]
    expected = np.empty((*panel.shape, len(feats)), np.float32)
    for k, name in enumerate(feats):
        col = panel[name] * ratio if name in PRICE_FEATURES else \
            panel[name] / ratio if name == "volume" else panel[name]
        expected[..., k] = np.where(panel.valid, col, np.nan)
    for block in (64, 7, 10_000):  # blocks of days: several, a ragged last one, one
        got = build_inputs(panel, feats, block=block)
        _identical(got, expected)
        assert got.transpose(1, 0, 2).flags.c_contiguous  # stock-major memory


def test_window_counts_and_eligibility_as_cumulative_sums(panel: Panel) -> None:
    valid = np.asarray(panel.valid)
    for window in (1, 5, 40, 700):
        csum = np.vstack([np.zeros((1, valid.shape[1]), np.int64), np.cumsum(valid, axis=0)])
        t = np.arange(len(valid))
        expected = csum[t + 1] - csum[np.maximum(t - window + 1, 0)]
        _identical(window_counts(valid, window), expected.astype(np.int32))
        first = np.argmax(panel.listed, axis=0)
        full = (t[:, None] - window + 1) >= first[None, :]
        _identical(eligibility(panel, window, 0.9),
                   valid & full & (expected >= np.ceil(0.9 * window)))


@pytest.mark.parametrize("n", [1, 2, 5, 599, 600, 601, 1500])  # numpy's small / large paths
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nanmedian_rows_as_numpy(n: int, dtype: type) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 30)).astype(dtype)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 3] = np.nan  # all NaN
    x[: n // 2, 5] = np.nan
    x[:, 7] = np.round(x[:, 7], 1)  # ties
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on the all-NaN column
        expected = np.nanmedian(x, axis=0)
    _identical(nanmedian_rows(np.ascontiguousarray(x.T)), expected)


def test_normalizer_fit_as_nanmedian_and_mad() -> None:
    rng = np.random.default_rng(3)
    win = (1 + 0.1 * rng.standard_normal((2000, 50, 6))).astype(np.float32)
    win[rng.random(win.shape) < 0.05] = np.nan
    win[:, -1, 3] = 1.0  # the last close: constant, sigma 1
    win[:, 10, 2] = np.nan  # a lag without data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(win, axis=0)
        mad = np.nanmedian(np.abs(win - med), axis=0) * 1.4826
    norm = RobustNormalizer().fit(win.copy())
    _identical(norm.median, np.nan_to_num(med).astype(np.float32))
    _identical(norm.sigma, np.where(np.isfinite(mad) & (mad > 1e-8), mad, 1.0)
               .astype(np.float32))


@pytest.mark.parametrize("window", [150, 37, 1])  # tiles of 30 lags, none (prime), one lag
@pytest.mark.parametrize("features", [["open", "high", "low", "close", "vwap", "volume"],
                                      ["volume", "close", "amount"], ["amount"]])
def test_scale_transform_is_scale_then_transform_bit_for_bit(window: int,
                                                             features: list[str]) -> None:
    rng = np.random.default_rng(window)
    raw = np.exp(0.3 * rng.standard_normal((500, window, len(features)))).astype(np.float32)
    raw[rng.random(raw.shape[:2]) < 0.05] = np.nan  # days without a bar
    raw[rng.random(raw.shape) < 0.01] = np.nan  # single missing fields
    raw[:, -1] = np.abs(raw[:, -1]) + 0.5  # the last day: a bar (eligibility)
    norm = RobustNormalizer(clip=2.5).fit(scale_windows(raw.copy(), features))
    expected, _ = norm.transform(scale_windows(raw.copy(), features))
    got = norm.scale_transform(torch.from_numpy(raw.copy()), divisor_columns(features))
    _identical(got.numpy(), expected)


def test_scale_transform_needs_a_fit() -> None:
    with pytest.raises(RuntimeError):
        RobustNormalizer().scale_transform(torch.ones(2, 3, 1), [0])


def test_day_batches_are_the_unfused_path_bit_for_bit() -> None:
    from datamodules import CrossSectionalDataModule
    from market.sources import SyntheticMarket

    dm = CrossSectionalDataModule(market=SyntheticMarket(n_stocks=150, n_days=500), window=40,
                                  horizon=5, val_start="2016-06-01", test_start="2016-09-01",
                                  norm_sample_days=8)
    dm.setup("fit")
    for split in ("train", "test"):
        ds = dm._loader(split).dataset
        for i in (0, len(ds) - 1):
            item = ds[i]
            day, stocks = int(item["day"]), item["stock"].numpy()
            expected, _ = dm.normalizer.transform(dm.raw_windows(day, stocks))
            _identical(item["x"].numpy(), expected)
            y = dm.labels[day, stocks]
            _identical(item["y"].numpy(), np.where(np.isfinite(y), y, 0).astype(np.float32))


@pytest.mark.parametrize("k", [1, 2, 3, 7, 10])
def test_tile_is_repeat(k: int) -> None:
    a = torch.rand(13, 6)
    assert torch.equal(_tile(a, k), a.repeat(1, k))
