"""Training losses for one trading day's cross-section, as plain functions plus thin modules.

Every function takes ``pred`` [N], ``target`` [N] and an optional bool ``mask`` [N] for one
day. A stock counts ("is valid") when ``mask`` is True (or no mask is given) **and** its
target is finite, so missing labels may be passed as NaN. :func:`pearson_corr` is the one
correlation kernel, shared by :func:`ic_loss` and the IC metrics in
:mod:`lightning_modules.metrics`.

The ``nn.Module`` wrappers (:class:`ICLoss`, :class:`WeightedMSELoss`, :class:`MSELoss`)
exist so that a loss can be chosen in YAML by ``class_path``.
"""

import torch
from torch import Tensor, nn

# Spread below this many float ulps of the largest |value| is rounding noise, not signal.
_CONSTANT_ULPS = 100.0


def valid_mask(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Bool [N]: stocks that enter a loss or metric (``mask`` and a finite target).

    Raises ValueError unless ``pred`` and ``target`` are 1-D of equal length and ``mask``
    (if given) is a bool tensor of the same shape.
    """
    if pred.ndim != 1 or pred.shape != target.shape:
        raise ValueError(
            f"expected pred and target of the same shape [N] (one day), got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    valid = torch.isfinite(target)
    if mask is None:
        return valid
    if mask.shape != pred.shape or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(pred.shape)}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    return valid & mask


def _centered(x: Tensor, weight: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    """Weighted-centered values [N] (0 where weight is 0) and their sum of squares."""
    centered = (x - (x * weight).sum() / n.clamp_min(1.0)) * weight  # [N]
    return centered, (centered * centered).sum()


def _is_spread(sum_sq: Tensor, x: Tensor, n: Tensor) -> Tensor:
    """False where the centered sum of squares is only rounding noise (a constant day).

    NaN sums of squares count as spread so that NaN predictions surface as a NaN result.
    """
    with torch.no_grad():
        scale = x.abs().max() if x.numel() else x.new_zeros(())
        tol = n * (_CONSTANT_ULPS * torch.finfo(x.dtype).eps * scale) ** 2
    return ~(sum_sq <= tol)


def pearson_corr(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-sectional Pearson correlation of one day, over the valid stocks.

    ``corr = sum(dp * dt) / sqrt(sum(dp^2) * sum(dt^2))`` with ``dp``, ``dt`` the
    deviations from the valid stocks' means.

    Returns a 0-d tensor, differentiable w.r.t. ``pred``. It is **0 (not NaN)** when fewer
    than 2 stocks are valid or when either side is constant over the valid stocks
    (spread below ~100 ulps of its magnitude), so a degenerate day neither poisons an
    average of daily ICs nor produces NaN gradients. A NaN prediction on a valid stock
    gives NaN, so bugs are not hidden.
    """
    valid = valid_mask(pred, target, mask)
    dtype = torch.promote_types(pred.dtype, torch.float32)
    weight = valid.to(dtype)  # [N]
    n = weight.sum()
    p = torch.where(valid, pred.to(dtype), torch.zeros((), dtype=dtype, device=pred.device))
    t = torch.where(valid, target.to(dtype), torch.zeros((), dtype=dtype, device=pred.device))
    dp, ss_p = _centered(p, weight, n)  # [N], []
    dt, ss_t = _centered(t, weight, n)  # [N], []
    defined = (n >= 2) & _is_spread(ss_p, p, n) & _is_spread(ss_t, t, n)
    denominator = torch.where(defined, ss_p * ss_t, torch.ones_like(ss_p))
    corr = (dp * dt).sum() / denominator.sqrt()
    return torch.where(defined, corr, torch.zeros_like(corr))


def ic_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Minus the cross-sectional Pearson IC of one day: ``-pearson_corr(pred, target)``.

    pred, target: [N]; mask: bool [N]. Returns a 0-d tensor in [-1, 1] (0 on a
    degenerate day, see :func:`pearson_corr`).
    """
    return -pearson_corr(pred, target, mask)


def _masked_pair(pred: Tensor, target: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """pred, target [N] with invalid entries set to 0, so NaN there reaches neither value
    nor gradient (``where`` selects gradients instead of multiplying them)."""
    zero = torch.zeros((), dtype=pred.dtype, device=pred.device)
    return torch.where(valid, pred, zero), torch.where(valid, target.to(pred.dtype), zero)


def _masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Sum of ``values`` [N] (0 off ``valid``) over the valid count; 0, still on the graph,
    if no stock is valid."""
    return values.sum() / valid.sum().clamp_min(1).to(values.dtype)


def mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over the valid stocks of one day: ``mean((pred - y)^2)``.

    pred, target: [N]; mask: bool [N]. Returns a 0-d tensor (0 if no stock is valid).
    """
    valid = valid_mask(pred, target, mask)
    pred, target = _masked_pair(pred, target, valid)  # [N], [N]
    return _masked_mean((pred - target) ** 2, valid)


def weighted_mse(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    tau: float = 1.0,
    alpha: float = 2.0,
) -> Tensor:
    """MSE that up-weights stocks whose (z-scored) label is above ``tau`` (long side).

    ``s = relu(y - tau)``, ``w = 1 + alpha * (sigmoid(s) - 0.5)``,
    ``L = mean(w * (pred - y)^2)`` over the valid stocks. Weights run from 1 (labels
    ``<= tau``) to ``1 + alpha / 2`` (labels far above ``tau``); they depend on the label
    only, so no gradient flows through them.

    pred, target: [N]; mask: bool [N]. Returns a 0-d tensor (0 if no stock is valid).
    """
    valid = valid_mask(pred, target, mask)
    pred, target = _masked_pair(pred, target, valid)  # [N], [N]
    weight = 1.0 + alpha * (torch.sigmoid(torch.relu(target - tau)) - 0.5)  # [N]
    return _masked_mean(weight * (pred - target) ** 2, valid)


class ICLoss(nn.Module):
    """Minus the daily Pearson IC (report 1's IC loss); use with rank-standardized labels."""

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """pred, target: [N]; mask: bool [N] -> 0-d loss."""
        return ic_loss(pred, target, mask)


class WeightedMSELoss(nn.Module):
    """Long-side weighted MSE (report 1); use with z-scored labels. See :func:`weighted_mse`."""

    def __init__(self, tau: float = 1.0, alpha: float = 2.0) -> None:
        """
        Args:
            tau: Label threshold (in label standard deviations) above which weights grow.
            alpha: Weight amplitude; the largest weight is ``1 + alpha / 2``.
        """
        super().__init__()
        self.tau = tau
        self.alpha = alpha

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """pred, target: [N]; mask: bool [N] -> 0-d loss."""
        return weighted_mse(pred, target, mask, tau=self.tau, alpha=self.alpha)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, alpha={self.alpha}"


class MSELoss(nn.Module):
    """Plain MSE over the valid stocks of one day (report 2). See :func:`mse`."""

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """pred, target: [N]; mask: bool [N] -> 0-d loss."""
        return mse(pred, target, mask)


__all__ = [
    "ICLoss",
    "MSELoss",
    "WeightedMSELoss",
    "ic_loss",
    "mse",
    "pearson_corr",
    "valid_mask",
    "weighted_mse",
]
