"""Daily cross-sectional IC metrics: the mean (or ICIR, win rate) of per-day values.

Each ``update`` receives one trading day (``pred`` [N], ``target`` [N], optional bool
``mask`` [N]) and stores that day's correlation; ``compute`` summarizes the per-day values.
A daily IC is never a pooled correlation over the stocks of several days: pooling mixes
level differences between days into the score.

Valid stocks, degenerate days (fewer than 2 valid stocks or a constant side count as
IC 0) and NaN handling follow :func:`lightning_modules.losses.pearson_corr`, the kernel
shared with the IC loss.
"""

from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lightning_modules.losses import pearson_corr, valid_mask

Statistic = Literal["mean", "icir", "win_rate"]


def rank_average_ties(x: Tensor) -> Tensor:
    """1-based ranks of ``x`` [N], ties sharing their average rank (``scipy.stats.rankdata``).

    E.g. ``[10, 20, 20, 5] -> [2, 3.5, 3.5, 1]``. NaN entries get rank NaN (non-NaN
    entries are ranked among themselves). Vectorized (sort + ``unique_consecutive``).
    Returns a float tensor [N] (float32, or float64 for float64 input).
    """
    if x.ndim != 1:
        raise ValueError(f"expected x of shape [N], got {tuple(x.shape)}")
    dtype = torch.promote_types(x.dtype, torch.float32)
    sorted_x, order = torch.sort(x, stable=True)  # [N], NaN last
    _, inverse, counts = torch.unique_consecutive(
        sorted_x, return_inverse=True, return_counts=True
    )  # [N], [U]
    ends = torch.cumsum(counts, dim=0).to(dtype)  # [U] rank of each tie block's last member
    average = ends - (counts.to(dtype) - 1.0) / 2.0  # [U] mean of ranks end-count+1 .. end
    ranks = torch.empty(x.shape[0], dtype=dtype, device=x.device)
    ranks[order] = average[inverse]
    return torch.where(torch.isnan(x), torch.full_like(ranks, float("nan")), ranks)


def spearman_corr(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-sectional rank (Spearman) correlation of one day over the valid stocks.

    Both sides are ranked among the valid stocks only (average ranks for ties), then
    :func:`~lightning_modules.losses.pearson_corr` is applied. Not differentiable.
    """
    valid = valid_mask(pred, target, mask)
    return pearson_corr(rank_average_ties(pred[valid]), rank_average_ties(target[valid]))


def summarize_daily(values: Tensor, statistic: Statistic = "mean") -> Tensor:
    """Summary of per-day values [D] as a 0-d tensor.

    - ``mean``: average over days (NaN if no day).
    - ``icir``: ``mean / std`` with the sample std (ddof = 1); NaN with fewer than two days
      or zero std.
    - ``win_rate``: share of days with a value > 0 (NaN if no day).
    """
    if values.ndim != 1:
        raise ValueError(f"expected values of shape [D], got {tuple(values.shape)}")
    nan = torch.full((), float("nan"), dtype=values.dtype, device=values.device)
    if statistic == "mean":
        return values.mean() if values.numel() else nan
    if statistic == "win_rate":
        return (values > 0).to(values.dtype).mean() if values.numel() else nan
    if statistic == "icir":
        if values.numel() < 2:
            return nan
        std = values.std(correction=1)
        return torch.where(std > 0, values.mean() / std, nan)
    raise ValueError(f"statistic must be 'mean', 'icir' or 'win_rate', got {statistic!r}")


class DailyIC(Metric):
    """Mean over days of the cross-sectional Pearson IC (or its ICIR / win rate).

    ``update(pred [N], target [N], mask [N] | None)`` adds one day; ``compute()`` returns
    :func:`summarize_daily` of the stored per-day values (state ``values``, concatenated
    across processes). Days with a constant side or fewer than 2 valid stocks count as 0.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, statistic: Statistic = "mean", **kwargs: Any) -> None:
        """
        Args:
            statistic: Summary of the daily values: ``mean`` (the IC), ``icir`` (mean over
                sample std, ddof=1) or ``win_rate`` (share of days with IC > 0).
            **kwargs: Passed to ``torchmetrics.Metric``.
        """
        super().__init__(**kwargs)
        if statistic not in ("mean", "icir", "win_rate"):
            raise ValueError(
                f"statistic must be 'mean', 'icir' or 'win_rate', got {statistic!r}"
            )
        self.statistic = statistic
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def _daily_value(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        return pearson_corr(pred, target, mask)

    def update(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Add one day: pred, target [N]; mask bool [N] (None = all stocks)."""
        value = self._daily_value(pred.detach(), target.detach(), mask)  # []
        self.values.append(value.reshape(1))

    def daily_values(self) -> Tensor:
        """Per-day values [D] in update order.

        Local to this process: only ``compute()`` gathers the values of all processes, so
        under DDP log an ICIR through ``DailyRankICIR`` / ``statistic="icir"``, not from here.
        """
        if isinstance(self.values, Tensor):  # already concatenated by a distributed sync
            return self.values
        if not self.values:
            return torch.zeros(0, device=self.device)
        return dim_zero_cat(self.values)

    def compute(self) -> Tensor:
        """0-d tensor: the chosen statistic of the per-day values."""
        return summarize_daily(self.daily_values(), self.statistic)


class DailyRankIC(DailyIC):
    """Mean over days of the cross-sectional Spearman rank IC (or its ICIR / win rate).

    Ranks use average ranks for ties, computed among the day's valid stocks only; then
    the Pearson kernel. See :class:`DailyIC` for ``update`` / ``compute``.
    """

    def _daily_value(self, pred: Tensor, target: Tensor, mask: Tensor | None) -> Tensor:
        return spearman_corr(pred, target, mask)


class DailyRankICIR(DailyRankIC):
    """Rank ICIR: mean over sample std (ddof = 1) of the daily rank ICs."""

    def __init__(self, **kwargs: Any) -> None:
        """
        Args:
            **kwargs: Passed to ``torchmetrics.Metric``.
        """
        super().__init__(statistic="icir", **kwargs)


__all__ = [
    "DailyIC",
    "DailyRankIC",
    "DailyRankICIR",
    "rank_average_ties",
    "spearman_corr",
    "summarize_daily",
]
