"""MultiGranularityDataModule: aligned daily + intraday windows, no look-ahead, train-only fit."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules import CrossSectionalDataModule
from datamodules.multigranularity import MultiGranularityDataModule, scale_intraday
from market.schema import MarketData
from market.sources import MarketSource
from market.synthetic import generate_market
from market.synthetic_intraday import synthetic_intraday

K = 5  # intraday days per window


class FixedMarket(MarketSource):
    def __init__(self, market: MarketData) -> None:
        self.market = market

    def load(self) -> MarketData:
        return self.market

    def key(self) -> str:
        return "fixed"


@pytest.fixture(scope="module")
def market() -> MarketData:
    return generate_market(n_stocks=50, n_days=400, seed=4, start="2017-01-02")


ARGS = dict(window=30, horizon=5, val_start="2018-01-01", test_start="2018-06-01",
            norm_sample_days=6)


@pytest.fixture(scope="module")
def dm(market: MarketData) -> MultiGranularityDataModule:
    dm = MultiGranularityDataModule(market=FixedMarket(market), intraday_days=K, **ARGS)
    dm.setup("fit")
    return dm


def test_batch_holds_every_granularity_for_the_same_stocks(dm: MultiGranularityDataModule,
                                                           market: MarketData) -> None:
    batch = next(iter(dm.train_dataloader()))
    n = batch["x"].shape[0]
    assert n > 10 and batch["x"].shape == (n, 30, 6)
    assert batch["x_60min"].shape == (n, 4 * K, 6) and batch["x_30min"].shape == (n, 8 * K, 6)
    for key in ("x_60min", "x_30min"):
        values = batch[key].numpy()
        assert np.isfinite(values).all() and np.abs(values).max() <= 3.0 + 1e-6
    plain = CrossSectionalDataModule(market=FixedMarket(market), **ARGS)
    plain.setup("fit")
    item = plain.splits["train"].days.tolist().index(int(batch["day"]))
    from datamodules.dataset import DayDataset

    same = DayDataset(plain, plain.splits["train"])[item]
    assert np.array_equal(same["stock"].numpy(), batch["stock"].numpy())
    assert np.allclose(same["x"].numpy(), batch["x"].numpy())
    assert np.array_equal(same["y"].numpy(), batch["y"].numpy())


def test_window_is_the_last_k_days_ending_at_the_close(dm: MultiGranularityDataModule,
                                                        market: MarketData) -> None:
    day = int(dm.splits["val"].days[3])
    stocks = np.nonzero(dm.eligible[day])[0]
    raw = dm.raw_intraday("30min", day, stocks)  # [N, 8K, F], prices / last close
    bars = synthetic_intraday(market, "30min").values  # raw CNY, [D, S, 8, F]
    close = dm.features.index("close")
    assert np.allclose(raw[:, -1, close], 1.0)
    # unscaled: the bars of days day-K+1 .. day in time order, last = day's 15:00 close
    ratio = (dm.panel["adj_close"] / dm.panel["close"])[day - K + 1:day + 1, stocks]  # [K, N]
    expect = bars[day - K + 1:day + 1][:, stocks][..., close] * ratio[..., None]  # [K, N, 8]
    expect = expect.transpose(1, 0, 2).reshape(len(stocks), -1)
    got = raw[..., close] * (bars[day, stocks, -1, close] * ratio[-1])[:, None]
    ok = np.isfinite(expect)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(got[ok], expect[ok], rtol=2e-5)
    assert np.allclose(bars[day, stocks, -1, close], dm.panel["close"][day, stocks], rtol=1e-6)


def test_no_look_ahead_across_the_day_boundary(dm: MultiGranularityDataModule) -> None:
    day = int(dm.splits["val"].days[5])
    stocks = np.nonzero(dm.eligible[day])[0]
    before = {g: dm.intraday_windows(g, day, stocks) for g in dm.granularities}
    saved = {g: a.copy() for g, a in dm.intraday.items()}
    try:
        for arr in dm.intraday.values():
            arr[day + 1:] *= 7.0  # everything after the close of `day`
            arr[day + 1:, :, :, -1] = 0.0
        for g in dm.granularities:
            assert np.array_equal(dm.intraday_windows(g, day, stocks), before[g])
        for arr in dm.intraday.values():  # while the day itself does matter
            arr[day, :, 3, :] *= 1.5
        assert not np.array_equal(dm.intraday_windows("30min", day, stocks), before["30min"])
    finally:
        dm.intraday.update(saved)


def test_normalizer_is_fitted_on_training_days_only(dm: MultiGranularityDataModule) -> None:
    stats = {g: n.state_dict() for g, n in dm.intraday_normalizers.items()}
    first_val = int(dm.splits["val"].days[0])
    saved = {g: a.copy() for g, a in dm.intraday.items()}
    try:
        for arr in dm.intraday.values():
            arr[first_val:] *= 3.0
        for g in dm.granularities:
            refit = dm._fit_intraday_normalizer(g).state_dict()
            np.testing.assert_array_equal(refit["median"], stats[g]["median"])
        train_last = int(dm.splits["train"].days[-1])
        for arr in dm.intraday.values():
            arr[train_last - K + 1:train_last + 1, :, :, 5] *= 50.0  # a sampled training day
        changed = dm._fit_intraday_normalizer("30min").state_dict()
        assert not np.array_equal(changed["median"], stats["30min"]["median"])
    finally:
        dm.intraday.update(saved)
    assert stats["30min"]["median"].shape == (8 * K, 6)


def test_report_and_arguments(dm: MultiGranularityDataModule, market: MarketData) -> None:
    assert dm.report["30min_window_bars_filled_with_0"] == 2 * dm.report[
        "60min_window_bars_filled_with_0"] > 0
    with pytest.raises(ValueError, match="intraday_days"):
        MultiGranularityDataModule(market=FixedMarket(market), intraday_days=31, **ARGS)
    with pytest.raises(ValueError, match="granularity"):
        MultiGranularityDataModule(market=FixedMarket(market), granularities=["5min"], **ARGS)
    daily_only = MultiGranularityDataModule(market=FixedMarket(market), granularities=[], **ARGS)
    daily_only.setup("fit")
    batch = next(iter(daily_only.val_dataloader()))
    assert not any(k.startswith("x_") for k in batch)


def test_scale_intraday_prices_and_volume() -> None:
    win = np.ones((2, 4, 6), np.float32) * np.array([10, 11, 9, 10, 10.2, 100], np.float32)
    win[1, :, 5] = [0, 0, 0, 0]
    out = scale_intraday(win.copy(), ["open", "high", "low", "close", "vwap", "volume"])
    np.testing.assert_allclose(out[0, 0, :5], [1.0, 1.1, 0.9, 1.0, 1.02], rtol=1e-6)
    assert np.allclose(out[0, :, 5], 1.0) and np.isnan(out[1, :, 5]).all()


def test_intraday_window_length_per_granularity(market: MarketData) -> None:
    dm = MultiGranularityDataModule(market=FixedMarket(market),
                                    intraday_days={"60min": 6, "30min": 3}, **ARGS)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    n = batch["x"].shape[0]
    assert batch["x_60min"].shape == (n, 4 * 6, 6) and batch["x_30min"].shape == (n, 8 * 3, 6)
    assert dm.intraday_normalizers["30min"].median.shape == (8 * 3, 6)
    # the 30-min window is the last 3 days of the same bars a 3-day-only module sees
    ref = MultiGranularityDataModule(market=FixedMarket(market), intraday_days=3, **ARGS)
    ref.setup("fit")
    day, stocks = int(batch["day"]), batch["stock"].numpy()
    np.testing.assert_array_equal(dm.raw_intraday("30min", day, stocks),
                                  ref.raw_intraday("30min", day, stocks))
    with pytest.raises(ValueError, match="not among the granularities"):
        MultiGranularityDataModule(market=FixedMarket(market), granularities=["30min"],
                                   intraday_days={"60min": 5}, **ARGS)
