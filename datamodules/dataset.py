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
    Training items contain only stocks with a label; evaluation items contain every
    eligible stock (the factor is exported for all of them).
    """

    def __init__(self, dm: "CrossSectionalDataModule", split: Split) -> None:
        self.dm, self.split = dm, split

    def __len__(self) -> int:
        return len(self.split.days)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        dm, day = self.dm, int(self.split.days[i])
        y_all = dm.labels[day]
        stocks = np.nonzero(dm.eligible[day] & (np.isfinite(y_all) | (not self.split.train)))[0]
        y = y_all[stocks]
        mask = np.isfinite(y)
        return {"x": dm.windows(day, stocks),
                "y": torch.from_numpy(np.where(mask, y, np.float32(0.0))),
                "mask": torch.from_numpy(mask),
                "size_group": torch.from_numpy(dm.size_groups(day, stocks)),
                "day": torch.tensor(day, dtype=torch.int64),
                "stock": torch.from_numpy(stocks.astype(np.int64))}


class EpochShuffleSampler(Sampler[int]):
    """Shuffles day indices with a permutation that depends only on (seed, epoch).

    Lightning calls ``set_epoch`` at every epoch start, so a run resumed from a checkpoint
    sees exactly the day order an uninterrupted run would have seen (the global RNG is
    not part of checkpoints).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        # a generator: the permutation is drawn at the first index, after Lightning's
        # set_epoch (on resume Lightning creates the iterator before calling set_epoch)
        rng = np.random.default_rng([self.seed, self.epoch])
        yield from rng.permutation(self.n).tolist()
