"""Data pipeline: splits, eligibility, normalizer, labels and the look-ahead guarantees."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from datamodules import CrossSectionalDataModule
from datamodules.features import eligibility
from market.panel import Panel
from market.returns import forward_returns
from market.schema import MarketData
from market.sources import MarketSource
from market.synthetic import generate_market


class FixedMarket(MarketSource):
    def __init__(self, market: MarketData, key: str = "fixed") -> None:
        self.market, self._key = market, key

    def load(self) -> MarketData:
        return self.market

    def key(self) -> str:
        return self._key


@pytest.fixture(scope="module")
def market() -> MarketData:
    return generate_market(n_stocks=60, n_days=420, seed=3, start="2017-01-02")


def make_dm(market: MarketData, **kw) -> CrossSectionalDataModule:
    args = dict(window=40, horizon=5, val_start="2018-01-01", test_start="2018-06-01",
                norm_sample_days=8)
    args.update(kw)
    dm = CrossSectionalDataModule(market=FixedMarket(market), **args)
    dm.setup("fit")
    return dm


def test_batch_contract(market: MarketData) -> None:
    dm = make_dm(market)
    batch = next(iter(dm.train_dataloader()))
    n = batch["x"].shape[0]
    assert batch["x"].shape == (n, 40, 6) and n > 10
    assert batch["mask"].all(), "training batches hold labelled stocks only"
    assert np.isfinite(batch["x"].numpy()).all()
    assert np.abs(batch["x"].numpy()).max() <= 3.0 + 1e-6
    assert set(batch["size_group"].tolist()) == set(range(5))
    counts = np.bincount(batch["size_group"].numpy())
    assert counts.max() - counts.min() <= 1
    day = int(batch["day"])
    assert dm.eligible[day, batch["stock"].numpy()].all()


def test_splits_purged_and_ordered(market: MarketData) -> None:
    dm = make_dm(market)
    tr, va, te = (dm.splits[k].days for k in ("train", "val", "test"))
    # a training label ends at t + 1 + h, which must come before the first validation day
    assert tr.max() + 1 + dm.horizon < va.min()
    assert va.max() + 1 + dm.horizon < te.min()
    assert tr.min() >= dm.window - 1
    days = [int(b["day"]) for b in dm.val_dataloader()]
    assert days == sorted(days), "validation is chronological"


def test_eligibility_never_pads() -> None:
    market = generate_market(n_stocks=40, n_days=300, seed=5)
    panel = Panel.from_market(market)
    el = eligibility(panel, window=50, min_valid_frac=0.9)
    first = np.argmax(panel.listed, axis=0)
    d_idx, s_idx = np.nonzero(el)
    assert (d_idx - 49 >= first[s_idx]).all(), "window must lie inside the listed life"
    assert panel.valid[d_idx, s_idx].all()
    for d, s in list(zip(d_idx, s_idx))[::97]:
        assert panel.valid[d - 49:d + 1, s].sum() >= 45


def _perturb_after(market: MarketData, date: np.datetime64) -> MarketData:
    """Scale every later price by a stock-specific factor: one return jump on the next day."""
    factor = 1.1 + pl.col("code").str.slice(-1).cast(pl.Int64) / 10
    after = pl.col("date") > pl.lit(date)
    next_day = market.bars.filter(after)["date"].min()
    bars = market.bars.with_columns(
        [pl.when(after).then(pl.col(c) * factor).otherwise(pl.col(c))
         .alias(c) for c in ("open", "high", "low", "close", "vwap")]
        + [pl.when(pl.col("date") > pl.lit(next_day)).then(pl.col("preclose") * factor)
           .otherwise(pl.col("preclose")).alias("preclose")]
        + [pl.when(pl.col("date") > pl.lit(date)).then(pl.col("volume") * 3.0)
           .otherwise(pl.col("volume")).alias("volume")])
    return MarketData(bars, market.memberships, market.index_close, market.index_codes)


def test_no_look_ahead_in_features_and_labels(market: MarketData) -> None:
    """Changing every price after day T changes no input at <= T and no label at <= T-h-1."""
    dm = make_dm(market)
    t = int(dm.splits["val"].days[3])
    cut = dm.panel.dates[t]
    dm2 = make_dm(_perturb_after(market, cut))
    stocks = np.nonzero(dm.eligible[t])[0]
    assert (dm2.eligible[:t + 1] == dm.eligible[:t + 1]).all()
    np.testing.assert_array_equal(dm.raw_windows(t, stocks), dm2.raw_windows(t, stocks))
    last_safe = t - 1 - dm.horizon
    np.testing.assert_array_equal(dm.labels[:last_safe + 1], dm2.labels[:last_safe + 1])
    assert not np.allclose(np.nan_to_num(dm.labels[t - 2]), np.nan_to_num(dm2.labels[t - 2]))


def test_normalizer_fitted_on_training_days_only(market: MarketData) -> None:
    dm = make_dm(market)
    first_val = dm.panel.dates[dm.splits["val"].days[0]]
    dm2 = make_dm(_perturb_after(market, first_val))
    np.testing.assert_array_equal(dm.normalizer.median, dm2.normalizer.median)
    np.testing.assert_array_equal(dm.normalizer.sigma, dm2.normalizer.sigma)


def test_labels_neutral_and_ranked(market: MarketData) -> None:
    dm = make_dm(market, label_transform="zscore")
    t = int(dm.splits["train"].days[10])
    y = dm.labels[t]
    m = np.isfinite(y)
    assert abs(y[m].mean()) < 1e-5 and abs(y[m].std() - 1) < 1e-4
    lmc = dm.log_mcap[t, m]
    assert abs(np.corrcoef(y[m], lmc)[0, 1]) < 1e-4, "orthogonal to size"
    fwd = forward_returns(dm.panel, dm.horizon)[t, m]
    assert np.corrcoef(y[m], fwd)[0, 1] > 0.5


def test_bad_split_dates_are_explained(market: MarketData) -> None:
    with pytest.raises(ValueError, match="val_start"):
        make_dm(market, val_start="2018-06-01", test_start="2018-01-01")


def test_shuffled_label_control_keeps_each_days_labels(market: MarketData) -> None:
    dm, ctl = make_dm(market), make_dm(market, shuffle_labels=True)
    t = int(dm.splits["train"].days[5])
    a, b = dm.labels[t], ctl.labels[t]
    np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
    np.testing.assert_allclose(np.sort(a[np.isfinite(a)]), np.sort(b[np.isfinite(b)]))
    assert not np.array_equal(a, b)


def test_scale_windows_divides_every_price_by_the_last_close() -> None:
    from datamodules.features import scale_windows

    feats = ["open", "high", "low", "close", "vwap", "volume"]
    rng = np.random.default_rng(0)
    raw = rng.uniform(5, 20, size=(4, 10, 6)).astype(np.float32)
    win = scale_windows(raw.copy(), feats)
    last_close = raw[:, -1, 3][:, None]
    for k in range(5):
        np.testing.assert_allclose(win[..., k], raw[..., k] / last_close, rtol=1e-6)
    np.testing.assert_allclose(win[..., 5], raw[..., 5] / raw[:, -1, 5][:, None], rtol=1e-6)


def test_training_and_test_universes_are_separate(market: MarketData) -> None:
    name = sorted(Panel.from_market(market).universes)[0]
    base = make_dm(market)
    dm = make_dm(market, universe=name, test_universe="all")
    member = dm.panel.universes[name]
    t = dm.panel.date_index("2018-06-01")
    # training/validation days: members only; test days: every eligible stock
    assert not (dm.eligible[:t] & ~member[:t]).any()
    assert (dm.eligible[:t] == (base.eligible[:t] & member[:t])).all()
    assert (dm.eligible[t:] == base.eligible[t:]).all()
    assert (dm.eligible[t:] & ~member[t:]).any()
    same = make_dm(market, universe=name)  # default test_universe="same"
    assert (same.eligible == (base.eligible & member)).all()
    batch = dm.test_dataloader().dataset[0]
    assert len(batch["y"]) == base.eligible[dm.splits["test"].days[0]].sum()
    with pytest.raises(ValueError, match="not in the market's memberships"):
        make_dm(market, universe="csi9999")


def test_normalizer_thinning_above_the_window_cap(market: MarketData) -> None:
    full, thin = make_dm(market), make_dm(market, norm_max_windows=200)
    assert make_dm(market, norm_max_windows=10**6).normalizer.median.tolist() == \
        full.normalizer.median.tolist(), "below the cap nothing changes"
    diff = np.abs(full.normalizer.median - thin.normalizer.median) / full.normalizer.sigma
    assert 0 < diff.max() < 0.6 and diff.mean() < 0.15
    again = make_dm(market, norm_max_windows=200)
    assert np.array_equal(again.normalizer.median, thin.normalizer.median), "seeded"


def test_label_scope_universe_or_market(market: MarketData) -> None:
    name = sorted(Panel.from_market(market).universes)[0]
    base = make_dm(market, label_transform="zscore")
    inside = make_dm(market, universe=name, label_transform="zscore")
    whole = make_dm(market, universe=name, label_transform="zscore", label_scope="market")
    t = inside.panel.date_index("2018-01-01")
    member = inside.panel.universes[name]
    day = next(d for d in range(inside.window, t) if np.isfinite(inside.labels[d]).sum() > 5)
    y = inside.labels[day]
    assert np.isfinite(y[~member[day]]).sum() == 0, "labels only inside the universe"
    assert abs(np.nanmean(y)) < 1e-5 and abs(np.nanstd(y) - 1) < 1e-4, "z-scored in it"
    np.testing.assert_array_equal(whole.labels, base.labels)  # the market's labels
    with pytest.raises(ValueError, match="label_scope"):
        make_dm(market, label_scope="world")


def test_exclusions_remove_labels_not_exports(market: MarketData) -> None:
    from market.tradability import tradability

    base = make_dm(market)
    dm = make_dm(market, exclude=["st", "no_entry"])
    trad = tradability(dm.panel)
    no_entry = np.zeros_like(trad.suspended)
    no_entry[:-1] = ~trad.can_buy[1:]
    hit = (trad.st | no_entry) & base.eligible & np.isfinite(base.labels)
    assert hit.sum() > 0, "the synthetic market has ST and limit days"
    assert not np.isfinite(dm.labels[trad.st | no_entry]).any()
    assert dm.report["labels_excluded_st"] == int((trad.st & dm.eligible).sum())
    assert dm.report["labels_excluded_no_entry"] == int((no_entry & dm.eligible).sum())
    day = int(dm.splits["test"].days[0])
    batch = dm.test_dataloader().dataset[0]
    assert len(batch["stock"]) == dm.eligible[day].sum(), "excluded stocks are still scored"
    assert (~batch["mask"].numpy()).sum() >= (hit[day] & dm.eligible[day]).sum()
    with pytest.raises(ValueError, match="unknown"):
        make_dm(market, exclude=["halted"])


def test_train_stock_fraction_is_stratified_seeded_and_train_only(market: MarketData) -> None:
    full, half = make_dm(market), make_dm(market, train_stock_fraction=0.5)
    train = half.train_dataloader()
    sampler = train.sampler
    sampler.set_epoch(3)
    index = next(iter(sampler))
    assert index[1] == 3
    item, again = train.dataset[index], train.dataset[index]
    whole = full.train_dataloader().dataset[index]
    assert torch.equal(item["stock"], again["stock"]), "same (seed, epoch, day) -> same stocks"
    other_epoch = train.dataset[(index[0], 4)]
    assert not torch.equal(item["stock"], other_epoch["stock"])
    # each size group keeps half its members (rounded), groups from the whole day
    n_full = np.bincount(whole["size_group"].numpy(), minlength=5)
    n_half = np.bincount(item["size_group"].numpy(), minlength=5)
    assert np.array_equal(n_half, np.maximum(1, np.round(n_full * 0.5).astype(int)))
    assert set(item["stock"].tolist()) <= set(whole["stock"].tolist())
    pos = np.searchsorted(whole["stock"].numpy(), item["stock"].numpy())
    assert torch.equal(whole["size_group"][pos], item["size_group"])
    assert torch.equal(whole["x"][pos], item["x"]) and torch.equal(whole["y"][pos], item["y"])
    # validation and test days keep every stock
    for split in ("val", "test"):
        a = getattr(half, f"{split}_dataloader")().dataset[0]
        b = getattr(full, f"{split}_dataloader")().dataset[0]
        assert torch.equal(a["stock"], b["stock"])
    with pytest.raises(ValueError, match="train_stock_fraction"):
        make_dm(market, train_stock_fraction=0.0)
