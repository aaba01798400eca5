"""CrossSectionalDataModule: one trading day's cross-section per batch (SPEC 1-2)."""

from __future__ import annotations

import logging
import os
from typing import Literal, get_args

import lightning as L
import numpy as np
import torch
from jsonargparse import lazy_instance
from torch.utils.data import DataLoader

from datamodules.dataset import DayDataset, EpochShuffleSampler, Split
from datamodules.features import (RobustNormalizer, build_inputs, divisor_columns, eligibility,
                                  scale_windows, window_counts)
from datamodules.labels import log_market_cap, make_labels
from market.panel import Panel
from market.sources import MarketSource, SyntheticMarket, load_panel

log = logging.getLogger(__name__)

Exclusion = Literal["st", "limit_t", "no_entry"]  # label exclusions (``exclude``)
DEFAULT_FEATURES = ["open", "high", "low", "close", "vwap", "volume"]


class CrossSectionalDataModule(L.LightningDataModule):
    """Daily cross-sections of 150-day windows with neutralized forward-return labels.

    Splits by date with a purge gap: the last training day t satisfies
    ``t + 1 + horizon < first validation day`` (its label's last price comes before any
    validation input), and likewise validation vs test. Training days are shuffled by a
    permutation of (seed, epoch), so resumed runs repeat it; validation/test/predict days
    are chronological. The normalizer is fitted on training days only.

    Args:
        market: where the market comes from (default: the built-in synthetic market).
        cache_dir: directory for the cached dense panel; None = no cache.
        features: per-day input fields (open, high, low, close, vwap, volume, amount).
        window: days per sample window (150 in the reports).
        horizon: label horizon h in days: return from close t+1 to close t+1+h.
        label_transform: per-day label standardization: rank (IC loss) or zscore (MSE).
        neutralize: residualize labels on log market cap and industry dummies per day.
        train_start: first training day (ISO); None = the first day with a full window.
        val_start: first validation day (ISO).
        test_start: first test day (ISO).
        test_end: last test day (ISO); None = the end of the data.
        universe: membership name (point-in-time) restricting the training and
            validation stocks (e.g. csi500); None = all stocks.
        test_universe: stocks scored, exported and tested on test days: "same" = as
            ``universe``, "all" = every eligible stock of the market, or a membership
            name. Train on CSI500 and export the whole market with ``test_universe: all``,
            so the backtest can evaluate every universe.
        label_scope: the cross-section each day's label is neutralized and ranked /
            z-scored in: "universe" = the day's batch stocks (training universe on
            training/validation days, test universe on test days), "market" = every
            eligible stock of the market (a CSI 500 member's label is then its return
            relative to the whole market). Rank IC metrics are the same either way
            (ranks within a subset keep their order); the IC and MSE losses see
            different label spacing and offsets.
        exclude: stock-days given no label, so they leave training batches and test
            metrics (test days still score and export them): "st" (ST on day t),
            "limit_t" (closed at limit up or down on t), "no_entry" (cannot be bought at
            the label's entry, the close of t+1: suspended, limit up, or a no-limit
            listing day; market.tradability). Counts go to the data report.
        min_valid_frac: minimum share of the window's days with a valid bar; stocks
            below it are excluded that day (never padded).
        n_size_groups: size groups (quantiles of log market cap per day) for DecompGRU.
        train_stock_fraction: share of each training day's labelled stocks in its batch,
            drawn at random within each size group (so DecompGRU's de-meaning still sees
            every group) from (seed, epoch, day): a resumed run draws the same stocks.
            1.0 = every stock (the reports); validation and test days always use all.
        norm_sample_days: training days sampled to fit the normalizer.
        norm_max_windows: at most this many windows (stock-days) of those days fit it: above
            it each day's stocks are thinned by the same seeded fraction (the median / MAD
            of 16,384 windows has a standard error of ~1% of a sigma; the full market's
            32 x 3,300 windows took 12 s to fit, this takes ~2 s).
        clip: winsorization bound in robust standard deviations.
        num_workers: DataLoader worker processes.
        shuffle_labels: a control experiment: permute each day's labels across its stocks
            (seeded), so a correct pipeline must score a test Rank IC of about 0.
    """

    def __init__(self, market: MarketSource = lazy_instance(SyntheticMarket),
                 cache_dir: str | None = None,
                 features: list[str] | None = None, window: int = 150, horizon: int = 10,
                 label_transform: Literal["rank", "zscore"] = "rank", neutralize: bool = True,
                 train_start: str | None = None, val_start: str = "2018-01-01",
                 test_start: str = "2019-01-01", test_end: str | None = None,
                 universe: str | None = None, test_universe: str = "same",
                 label_scope: Literal["universe", "market"] = "universe",
                 exclude: list[Exclusion] | None = None,
                 min_valid_frac: float = 0.9,
                 n_size_groups: int = 5, train_stock_fraction: float = 1.0,
                 norm_sample_days: int = 32,
                 norm_max_windows: int = 16384, clip: float = 3.0,
                 num_workers: int = 0, shuffle_labels: bool = False) -> None:
        super().__init__()
        self.market = market
        self.cache_dir = cache_dir
        self.features = list(features) if features else list(DEFAULT_FEATURES)
        self.window, self.horizon = window, horizon
        self.label_transform, self.neutralize = label_transform, neutralize
        self.dates_cfg = (train_start, val_start, test_start, test_end)
        self.universe, self.test_universe = universe, test_universe
        self.label_scope, self.exclude = label_scope, list(exclude or [])
        if label_scope not in ("universe", "market"):
            raise ValueError(f"label_scope must be 'universe' or 'market', got {label_scope!r}")
        unknown = set(self.exclude) - set(get_args(Exclusion))
        if unknown:
            raise ValueError(f"exclude: unknown {sorted(unknown)}; choose among "
                             f"{', '.join(get_args(Exclusion))}")
        self.min_valid_frac = min_valid_frac
        if not 0.0 < train_stock_fraction <= 1.0:
            raise ValueError(f"--data.train_stock_fraction must be in (0, 1], got "
                             f"{train_stock_fraction}")
        self.train_stock_fraction = train_stock_fraction
        self.n_size_groups, self.norm_sample_days, self.clip = n_size_groups, norm_sample_days, clip
        self.norm_max_windows = norm_max_windows
        self.num_workers, self.shuffle_labels = num_workers, shuffle_labels
        self.panel: Panel | None = None
        self.splits: dict[str, Split] = {}
        self.report: dict[str, int] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.panel is not None:
            return
        self.panel = load_panel(self.market, self.cache_dir)
        # stock-major [S, D, F]: one stock's window is one contiguous block, so a day's
        # batch is a single gather (no transpose of a [W, S, F] slab); build_inputs fills
        # that layout already (ascontiguousarray copies nothing)
        self.inputs = np.ascontiguousarray(
            build_inputs(self.panel, self.features).transpose(1, 0, 2))
        eligible = eligibility(self.panel, self.window, self.min_valid_frac)
        self.log_mcap = log_market_cap(self.panel)
        if not np.isfinite(self.log_mcap).any():
            raise ValueError(f"{self.market.key()}: no share counts (total_shares), so no market "
                             "cap: size groups and size neutralization need it (standard Qlib "
                             "data lacks it; add total_shares, see docs/data.md)")
        eligible &= np.isfinite(self.log_mcap)
        # training / validation days: the training universe; test days: the test universe
        test_universe = self.universe if self.test_universe == "same" else self.test_universe
        first_test = self.panel.date_index(self.dates_cfg[2])
        self.eligible = eligible & self._membership(self.universe)
        self.eligible[first_test:] = (eligible & self._membership(test_universe))[first_test:]
        label_mask = (eligible if self.label_scope == "market" else self.eligible).copy()
        excluded, self.exclusions = self._excluded()
        label_mask &= ~excluded
        self.labels = make_labels(self.panel, self.horizon, label_mask, self.label_transform,
                                  self.neutralize, log_mcap=self.log_mcap)
        if self.shuffle_labels:
            self.labels = _permute_within_days(self.labels, np.random.default_rng(12345))
        self.splits = self._make_splits()
        self.normalizer = self._fit_normalizer()
        self._report()

    def _excluded(self) -> tuple[np.ndarray, dict[str, int]]:
        """[D, S] stock-days given no label (``exclude``) and their counts per reason among
        the eligible stock-days (for the data report)."""
        out = np.zeros(self.panel.valid.shape, bool)
        if not self.exclude:
            return out, {}
        from market.tradability import tradability

        trad = tradability(self.panel)
        no_entry = np.zeros_like(out)  # the last day has no t+1 (and no label anyway)
        no_entry[:-1] = ~trad.can_buy[1:]
        masks = {"st": trad.st, "limit_t": trad.limit_up | trad.limit_down,
                 "no_entry": no_entry}
        counts = {}
        for name in self.exclude:
            counts[f"labels_excluded_{name}"] = int((masks[name] & self.eligible).sum())
            out |= masks[name]
        return out, counts

    def _membership(self, name: str | None) -> np.ndarray | bool:
        if name is None or name == "all":
            return True
        if name not in self.panel.universes:
            raise ValueError(f"universe {name!r} not in the market's memberships "
                             f"{sorted(self.panel.universes)} (nor 'all' / 'same')")
        return self.panel.universes[name]

    def _day_range(self, start: str | None, end_exclusive: int) -> np.ndarray:
        lo = self.panel.date_index(start) if start else 0
        return np.arange(max(lo, self.window - 1), end_exclusive)

    def _make_splits(self) -> dict[str, Split]:
        train_start, val_start, test_start, test_end = self.dates_cfg
        p, gap = self.panel, self.horizon + 1
        v, t = p.date_index(val_start), p.date_index(test_start)
        e = p.date_index(test_end, side="right") if test_end else len(p.dates)
        if not self.window - 1 < v < t < e:
            raise ValueError(f"need data start + window < val_start < test_start < test_end; got "
                             f"{val_start}, {test_start}, {test_end} on {p.dates[0]}..{p.dates[-1]}")
        labelled = np.isfinite(self.labels).sum(axis=1) >= 2
        scored = self.eligible.sum(axis=1) >= 2
        days = {"train": self._day_range(train_start, v - gap),
                "val": np.arange(v, t - gap), "test": np.arange(t, e)}
        out = {}
        for name, d in days.items():
            keep = d[labelled[d]] if name != "test" else d[scored[d]]
            if len(keep) == 0:
                raise ValueError(f"{name} split is empty: dates {self.dates_cfg}, window "
                                 f"{self.window}, horizon {self.horizon} on "
                                 f"{p.dates[0]}..{p.dates[-1]}")
            out[name] = Split(name, keep, train=name == "train")
        return out

    def normalizer_sample(self) -> list[tuple[int, np.ndarray]]:
        """(day, stocks) pairs fitting the normalizers: ``norm_sample_days`` training days
        evenly spread, their eligible stocks, at most ``norm_max_windows`` in all (each
        day thinned by the same seeded fraction). Deterministic, so every normalizer
        (daily and intraday) sees the same stock-days."""
        train_days = self.splits["train"].days
        pick = np.unique(np.linspace(0, len(train_days) - 1, self.norm_sample_days).round()
                         .astype(int))
        days = train_days[pick]
        stocks = [np.nonzero(self.eligible[day])[0] for day in days]
        total = sum(len(s) for s in stocks)
        if total > self.norm_max_windows:  # seeded thinning, the same share from each day
            rng = np.random.default_rng(0)
            keep = self.norm_max_windows / total
            stocks = [np.sort(rng.choice(s, max(1, round(len(s) * keep)), replace=False))
                      for s in stocks]
        return [(int(day), s) for day, s in zip(days, stocks)]

    def _fit_normalizer(self) -> RobustNormalizer:
        wins = [self.raw_windows(day, s) for day, s in self.normalizer_sample()]
        return RobustNormalizer(self.clip).fit(np.concatenate(wins))

    def raw_windows(self, day: int, stocks: np.ndarray) -> np.ndarray:
        """Scale-free windows ``[N, W, F]`` of ``stocks`` on ``day`` (before normalization)."""
        win = self.inputs[stocks, day - self.window + 1:day + 1]  # [N, W, F] gathered copy
        return scale_windows(win, self.features)

    def windows(self, day: int, stocks: np.ndarray) -> torch.Tensor:
        """Normalized windows ``[N, W, F]`` float32 of ``stocks`` on ``day`` (NaN -> 0):
        ``normalizer.transform(raw_windows(day, stocks))`` bit for bit, gathered straight
        into a torch tensor and scaled and normalized in four in-place passes."""
        win = torch.empty((len(stocks), self.window, len(self.features)), dtype=torch.float32)
        torch.index_select(torch.from_numpy(self.inputs[:, day - self.window + 1:day + 1]), 0,
                           torch.from_numpy(np.asarray(stocks, np.int64)), out=win)
        return self.normalizer.scale_transform(win, divisor_columns(self.features))

    def size_groups(self, day: int, stocks: np.ndarray) -> np.ndarray:
        """Equal-count quantile groups 0..G-1 of log market cap among ``stocks`` on ``day``."""
        order = np.argsort(self.log_mcap[day, stocks], kind="stable")
        rank = np.empty(len(stocks), np.int64)
        rank[order] = np.arange(len(stocks))  # = argsort(argsort(.)): ties by position
        return rank * self.n_size_groups // max(len(stocks), 1)

    def _report(self) -> None:
        # eligible days guarantee a bar on t; the window's other days without one are 0
        eligible_days = int(self.eligible.sum())
        valid_in_window = window_counts(self.panel.valid, self.window)
        missing = self.window * eligible_days - int(
            np.sum(valid_in_window, where=self.eligible, dtype=np.int64))
        self.report = {**self.panel.report, **self.exclusions,
                       "eligible_stock_days": eligible_days,
                       "window_days_filled_with_0": missing,
                       **{f"{k}_days": len(s.days) for k, s in self.splits.items()}}
        log.info("data report: %s", self.report)

    def _loader(self, split: str) -> DataLoader:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # set by seed_everything
        dataset = DayDataset(self, self.splits[split], seed)
        sampler = None
        if self.splits[split].train:
            sampler = EpochShuffleSampler(len(dataset), seed)
        return DataLoader(dataset, batch_size=None, sampler=sampler,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")

    def transfer_batch_to_device(self, batch: dict, device: torch.device,
                                 dataloader_idx: int) -> dict:
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _permute_within_days(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffle each day's finite labels among the stocks that have one."""
    out = labels.copy()
    for day in range(len(out)):
        idx = np.nonzero(np.isfinite(out[day]))[0]
        out[day, idx] = out[day, rng.permutation(idx)]
    return out
