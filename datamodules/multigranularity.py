"""MultiGranularityDataModule: daily windows plus 60-/30-minute windows of the same stocks.

For trading day t and each configured intraday granularity g, the window of stock s is
the bars of days ``t - K + 1 .. t`` (``K = intraday_days``), oldest first, so it ends
at the close of day t: the last bar is day t's 15:00 bar and nothing after the close of
t enters (the label starts at the close of t+1). Batches hold the daily ``x`` exactly
as :class:`CrossSectionalDataModule` builds it plus ``x_<g>`` ``[N, K * bars_per_day, F]``
for the same stocks in the same order.

Intraday windows are made scale-free like the daily ones, with one difference: prices
(back-adjusted with the day's ``adj_close / close``) are divided by the window's last
close, but volume by the window's **mean** bar volume, because a single half-hour
volume is too noisy a scale. Each granularity has its own :class:`RobustNormalizer`
(median / MAD per (bar lag, feature)), fitted on the same training days as the daily one.
Eligibility is the daily one (``intraday_days <= window``, so the intraday window lies
inside the checked daily window); a suspended day inside it is NaN, filled with 0 after
normalization and counted in the data report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from datamodules.datamodule import CrossSectionalDataModule
from datamodules.dataset import DayDataset
from datamodules.features import PRICE_FEATURES, RobustNormalizer
from market.intraday import BAR_FIELDS, IntradayBars, bars_per_day, read_intraday
from market.panel import Panel
from market.sources import CNSharedMarket, MarketDirectory, MarketSource

log = logging.getLogger(__name__)
Granularity = Literal["60min", "30min"]


def load_intraday(source: MarketSource, granularities: list[str], dates: np.ndarray,
                  codes: np.ndarray, directory: str | None = None) -> dict[str, IntradayBars]:
    """Intraday bars of ``source``'s market, aligned with its panel (``dates``, ``codes``).

    ``directory``: read ``<directory>/<granularity>/*.parquet|csv``, validated and checked
    against the source's daily bars. Otherwise a ``MarketDirectory`` reads
    ``<root>/intraday/<granularity>/`` and a synthetic market generates its bars (the
    market and its 30-min bars once; 60-min bars are merged 30-min pairs). The real
    A-share data (``CNSharedMarket``) has no intraday bars: ValueError.
    """
    from market.synthetic import SyntheticMarketData

    for g in granularities:
        bars_per_day(g)
    if not granularities:
        return {}
    if directory is None and isinstance(source, MarketDirectory):
        directory = str(Path(source.root) / "intraday")
    if directory is None and isinstance(source, CNSharedMarket):
        raise ValueError("the real A-share data (../shared/data) has no intraday bars; pass "
                         "an intraday directory (--data.intraday_dir) or use the synthetic "
                         "market")
    market = source.load()
    if directory is not None:
        return {g: IntradayBars.from_long(read_intraday(str(Path(directory) / g), g,
                                                        market.bars), g, dates, codes)
                for g in granularities}
    if not isinstance(market, SyntheticMarketData):
        raise ValueError(f"{source.key()}: no intraday bars; pass --data.intraday_dir")
    from market.synthetic_intraday import synthetic_intraday

    finest = synthetic_intraday(market, "30min")
    if not (np.array_equal(finest.dates, dates) and np.array_equal(finest.codes, codes)):
        raise ValueError(f"{source.key()}: synthetic intraday bars do not align with the panel")
    return {g: finest if g == "30min" else finest.aggregate(g) for g in granularities}


def intraday_inputs(bars: IntradayBars, panel: Panel, features: list[str]) -> np.ndarray:
    """[D, S, B, F] float32 model inputs: prices back-adjusted with the day's
    ``adj_close / close`` (volume divided by it), NaN where the panel has no valid bar."""
    unknown = [f for f in features if f not in BAR_FIELDS and f != "amount"]
    if unknown:
        raise ValueError(f"intraday features must be among {BAR_FIELDS + ('amount',)}, "
                         f"got {unknown}")
    ratio = (panel["adj_close"] / panel["close"])[..., None]  # [D, S, 1]
    valid = panel.valid[..., None]
    out = np.empty((*bars.values.shape[:3], len(features)), np.float32)
    for k, name in enumerate(features):
        if name == "amount":
            col = bars.values[..., BAR_FIELDS.index("vwap")] * bars.values[..., -1]
        else:
            col = bars.values[..., BAR_FIELDS.index(name)]
            col = col * ratio if name in PRICE_FEATURES else col / ratio
        out[..., k] = np.where(valid, col, np.nan)
    return out


def scale_intraday(win: np.ndarray, features: list[str]) -> np.ndarray:
    """Scale-free intraday windows ``[N, T, F]`` in place: prices / the last bar's close,
    volume and amount / the window's mean bar value (non-finite results -> NaN)."""
    close = win[:, -1, features.index("close")][:, None].copy()  # a copy: win changes below
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, name in enumerate(features):
            scale = close if name in PRICE_FEATURES else np.nanmean(win[..., k], axis=1)[:, None]
            win[..., k] /= scale
    win[~np.isfinite(win)] = np.nan
    return win


class MultiGranularityDataModule(CrossSectionalDataModule):
    """:class:`CrossSectionalDataModule` whose batches add ``x_60min`` / ``x_30min``.

    Args:
        granularities: intraday granularities added to each batch as ``x_<g>``
            (``[]`` = daily only).
        intraday_days: trading days per intraday window (20 days = 80 60-min bars = 160
            30-min bars), at most ``window``; one number for every granularity or one per
            granularity, e.g. ``{60min: 20, 30min: 10}`` (unlisted granularities get 20).
        intraday_dir: directory with ``<granularity>/*.parquet|csv`` intraday bars (long
            schema of ``market.intraday``); None = the market's own (synthetic, or a
            MarketDirectory's ``intraday/``).
        **kwargs: every argument of :class:`CrossSectionalDataModule`.
    """

    def __init__(self, granularities: list[Granularity] | None = None,
                 intraday_days: int | dict[str, int] = 20,
                 intraday_dir: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.granularities = ["60min", "30min"] if granularities is None else list(granularities)
        for g in self.granularities:
            bars_per_day(g)
        if isinstance(intraday_days, dict):
            unknown = set(intraday_days) - set(self.granularities)
            if unknown:
                raise ValueError(f"intraday_days names {sorted(unknown)}, not among the "
                                 f"granularities {self.granularities}")
            days = {g: int(intraday_days.get(g, 20)) for g in self.granularities}
        else:
            days = {g: int(intraday_days) for g in self.granularities}
        for g, k in days.items():
            if not 1 <= k <= self.window:
                raise ValueError(f"intraday_days[{g}] must be in [1, window={self.window}], "
                                 f"got {k}")
        self.intraday_days, self.intraday_dir = days, intraday_dir
        self.intraday: dict[str, np.ndarray] = {}
        self.intraday_normalizers: dict[str, RobustNormalizer] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.panel is not None:
            return
        super().setup(stage)
        loaded = load_intraday(self.market, self.granularities, self.panel.dates,
                               self.panel.codes, self.intraday_dir)
        for g, bars in loaded.items():
            self.intraday[g] = intraday_inputs(bars, self.panel, self.features)
            self.intraday_normalizers[g] = self._fit_intraday_normalizer(g)
        self._report_intraday()

    def _fit_intraday_normalizer(self, granularity: str) -> RobustNormalizer:
        wins = [self.raw_intraday(granularity, day, s) for day, s in self.normalizer_sample()]
        return RobustNormalizer(self.clip).fit(np.concatenate(wins))

    def raw_intraday(self, granularity: str, day: int, stocks: np.ndarray) -> np.ndarray:
        """Scale-free ``[N, K * B, F]`` window of the last ``K`` days' bars, ending at the
        close of ``day`` (before normalization)."""
        k = self.intraday_days[granularity]
        block = self.intraday[granularity][day - k + 1:day + 1]  # [K, S, B, F]
        win = block[:, stocks].transpose(1, 0, 2, 3)  # [N, K, B, F]
        win = np.ascontiguousarray(win).reshape(len(stocks), -1, block.shape[-1])  # [N, K*B, F]
        return scale_intraday(win, self.features)

    def intraday_windows(self, granularity: str, day: int, stocks: np.ndarray) -> np.ndarray:
        """Normalized ``[N, K * B, F]`` float32 windows (NaN filled with 0)."""
        win, _ = self.intraday_normalizers[granularity].transform(
            self.raw_intraday(granularity, day, stocks), count=False)
        return win

    def _report_intraday(self) -> None:
        """Count the bars inside eligible stock-days' windows that were NaN (filled with 0)."""
        for g, arr in self.intraday.items():
            k = self.intraday_days[g]
            nan_bars = np.isnan(arr[..., 0]).sum(axis=-1)  # [D, S]
            csum = np.vstack([np.zeros((1, nan_bars.shape[1]), np.int64),
                              np.cumsum(nan_bars, axis=0)])
            t = np.arange(len(arr))
            in_window = csum[t + 1] - csum[np.maximum(t - k + 1, 0)]  # [D, S]
            self.report[f"{g}_window_bars_filled_with_0"] = int(in_window[self.eligible].sum())
        log.info("intraday data report: %s", self.report)

    def _loader(self, split: str) -> DataLoader:
        base = super()._loader(split)  # keeps the parent's sampler (shuffling) logic
        return DataLoader(MultiGranularityDayDataset(self, self.splits[split], base.dataset.seed),
                          batch_size=None,
                          sampler=base.sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)


class MultiGranularityDayDataset(DayDataset):
    """A day's item of :class:`DayDataset` plus ``x_<g>`` ``[N, K * B, F]`` per granularity."""

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        item = super().__getitem__(index)
        day, stocks = int(item["day"]), item["stock"].numpy()
        for g in self.dm.granularities:
            item[f"x_{g}"] = torch.from_numpy(self.dm.intraday_windows(g, day, stocks))
        return item
