"""One trading day = one item: the day's stocks, windows, labels, mask and size groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

if TYPE_CHECKING:
    from datamodules.datamodule import CrossSectionalDataModule


@dataclass
class Split:
    """A named set of day indices; ``train`` splits keep only labelled stocks."""

    name: str
    days: np.ndarray
    train: bool = False


class DayDataset(Dataset):
    """Items are dicts of tensors for one day:

    x: [N, W, F] float32 normalized windows; y: [N] float32 labels (NaN-free: 0 where
    unknown); mask: [N] bool label known; size_group: [N] int64;
    day: [] int64 index into the panel calendar; stock: [N] int64 index into panel codes.
    Training items contain only stocks with a label (with ``train_stock_fraction < 1`` a
    random subset of them, drawn within each size group); evaluation items contain every
    eligible stock (the factor is exported for all of them).

    Indices are day positions, or ``(position, epoch)`` pairs from
    :class:`EpochShuffleSampler` so that the training subset depends only on (seed, epoch,
    day) and a resumed run draws the same stocks.
    """

    def __init__(self, dm: "CrossSectionalDataModule", split: Split, seed: int = 0) -> None:
        self.dm, self.split, self.seed = dm, split, seed

    def __len__(self) -> int:
        return len(self.split.days)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        i, epoch = index if isinstance(index, tuple) else (index, 0)
        dm, day = self.dm, int(self.split.days[i])
        y_all = dm.labels[day]
        stocks = np.nonzero(dm.eligible[day] & (np.isfinite(y_all) | (not self.split.train)))[0]
        groups = dm.size_groups(day, stocks)  # quantiles of the day's whole cross-section
        if self.split.train and dm.train_stock_fraction < 1.0:
            keep = stratified_subset(groups, dm.train_stock_fraction,
                                     np.random.default_rng([self.seed, epoch, day]))
            stocks, groups = stocks[keep], groups[keep]
        y = y_all[stocks]
        mask = np.isfinite(y)
        return {"x": dm.windows(day, stocks),
                "y": torch.from_numpy(np.where(mask, y, np.float32(0.0))),
                "mask": torch.from_numpy(mask),
                "size_group": torch.from_numpy(groups),
                "day": torch.tensor(day, dtype=torch.int64),
                "stock": torch.from_numpy(stocks.astype(np.int64))}


def stratified_subset(groups: np.ndarray, fraction: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of a random ``fraction`` of the items of every group (at least one
    per non-empty group), so each size group keeps its share of the day's stocks."""
    keep = []
    for g in np.unique(groups):
        members = np.nonzero(groups == g)[0]
        k = max(1, int(round(len(members) * fraction)))
        keep.append(rng.choice(members, k, replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


class EpochShuffleSampler(Sampler[tuple[int, int]]):
    """Shuffles day indices with a permutation that depends only on (seed, epoch).

    Lightning calls ``set_epoch`` at every epoch start, so a run resumed from a checkpoint
    sees exactly the day order an uninterrupted run would have seen (the global RNG is
    not part of checkpoints). Yields ``(day position, epoch)`` pairs: the epoch seeds the
    per-day stock subset of ``train_stock_fraction``.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # a generator: the permutation is drawn at the first index, after Lightning's
        # set_epoch (on resume Lightning creates the iterator before calling set_epoch)
        rng = np.random.default_rng([self.seed, self.epoch])
        epoch = self.epoch
        for i in rng.permutation(self.n).tolist():
            yield i, epoch
