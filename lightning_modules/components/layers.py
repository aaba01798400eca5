"""Shared building blocks for the factor nets; reused by every architecture, never copied.

Shape letters: ``N`` stocks of one trading day (the cross-section), ``T`` days in the
look-back window (oldest first, most recent last), ``F`` input features, ``P`` patched
steps (``T // patch``), ``H`` hidden size, ``G`` groups.
"""

import torch
from torch import Tensor, nn

from lightning_modules.components.kernels import GroupDemean, load_extension


def _check_sequence(x: Tensor, n_features: int, patch: int) -> None:
    if x.ndim != 3:
        raise ValueError(f"expected x of shape [N, T, F], got {tuple(x.shape)}")
    if x.shape[2] != n_features:
        raise ValueError(f"expected {n_features} features in x[..., F], got {x.shape[2]}")
    if x.shape[1] < patch:
        raise ValueError(f"window of {x.shape[1]} steps is shorter than one patch ({patch})")


def _keep_recent_multiple(x: Tensor, patch: int) -> Tensor:
    """Drop the oldest ``T % patch`` steps so that the last patch ends on the most recent day.

    A plain ``Conv1d`` without padding would instead drop the *newest* steps, i.e. throw
    away the most informative data; slicing from the old end keeps patches aligned to today.
    x: [N, T, F] -> [N, P * patch, F].
    """
    return x[:, x.shape[1] % patch :, :]


class PatchConv(nn.Module):
    """Non-overlapping patching: ``Conv1d`` over time with kernel = stride = ``patch``, no padding.

    Input [N, T, F] -> output [N, T // patch, hidden]. If ``T % patch != 0`` the oldest
    ``T % patch`` days are dropped (the most recent days are always kept), so output step
    ``p`` summarizes days ``r + p*patch .. r + (p+1)*patch - 1`` with ``r = T % patch``.
    """

    def __init__(self, in_features: int = 6, hidden: int = 64, patch: int = 3) -> None:
        """
        Args:
            in_features: Number of input features per day (F).
            hidden: Number of output channels per patch (H).
            patch: Days per patch; kernel size and stride of the convolution.
        """
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        self.in_features = in_features
        self.patch = patch
        self.conv = nn.Conv1d(in_features, hidden, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        """x: [N, T, F] -> [N, T // patch, hidden]."""
        _check_sequence(x, self.in_features, self.patch)
        x = _keep_recent_multiple(x, self.patch)  # [N, P*patch, F]
        return self.conv(x.transpose(1, 2)).transpose(1, 2)  # [N, P, H]


class DepthwiseSeparablePatchConv(nn.Module):
    """Depthwise-separable patching: one ``patch``-day filter per feature, then a 1x1 mixing conv.

    Depthwise ``Conv1d(F, F, kernel=stride=patch, groups=F)`` (no padding, no mixing of
    features) followed by pointwise ``Conv1d(F, hidden, kernel=1)``. Input [N, T, F] ->
    output [N, T // patch, hidden]; the oldest ``T % patch`` days are dropped as in
    :class:`PatchConv`.
    """

    def __init__(self, in_features: int = 6, hidden: int = 64, patch: int = 3) -> None:
        """
        Args:
            in_features: Number of input features per day (F); also the depthwise groups.
            hidden: Number of output channels of the pointwise conv (H).
            patch: Days per patch; kernel size and stride of the depthwise conv.
        """
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        self.in_features = in_features
        self.patch = patch
        self.depthwise = nn.Conv1d(
            in_features, in_features, kernel_size=patch, stride=patch, groups=in_features
        )
        self.pointwise = nn.Conv1d(in_features, hidden, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """x: [N, T, F] -> [N, T // patch, hidden]."""
        _check_sequence(x, self.in_features, self.patch)
        x = _keep_recent_multiple(x, self.patch).transpose(1, 2)  # [N, F, P*patch]
        x = self.pointwise(self.depthwise(x))  # [N, H, P]
        return x.transpose(1, 2)  # [N, P, H]


class CausalMovingAverage(nn.Module):
    """Trailing ``kernel``-day simple moving average that never looks into the future.

    ``trend[t] = mean(x[t-kernel+1 .. t])``. The window start is padded with ``kernel - 1``
    copies of the oldest value ``x[0]`` (padding only at the oldest end, unlike the
    centred average of Autoformer/DLinear), so e.g. ``trend[0] = x[0]`` and
    ``trend[1] = ((kernel-1)*x[0] + x[1]) / kernel``. Output length equals input length
    and ``trend[t]`` depends only on ``x[<= t]``. Input/output [N, T, F].
    """

    def __init__(self, kernel: int = 5) -> None:
        """
        Args:
            kernel: Number of trailing days averaged (5 in the DecompGRU report).
        """
        super().__init__()
        if kernel < 1:
            raise ValueError(f"kernel must be >= 1, got {kernel}")
        self.kernel = kernel

    def forward(self, x: Tensor) -> Tensor:
        """x: [N, T, F] -> trend [N, T, F]."""
        if x.ndim != 3:
            raise ValueError(f"expected x of shape [N, T, F], got {tuple(x.shape)}")
        pad = x[:, :1, :].expand(-1, self.kernel - 1, -1)  # [N, kernel-1, F]
        padded = torch.cat([pad, x], dim=1)  # [N, T+kernel-1, F]
        # the kernel's shifted slices summed in order, then / kernel: the same additions as
        # AvgPool1d (bit-identical, tested) at a quarter of its time on [4000, 150, 6]
        steps = x.shape[1]
        trend = padded[:, :steps].clone()
        for lag in range(1, self.kernel):
            trend += padded[:, lag: lag + steps]
        return trend.div_(self.kernel)  # [N, T, F]


class SeriesDecomposition(nn.Module):
    """Split a window into a causal trend and the residual: ``x = trend + residual``.

    ``trend = CausalMovingAverage(kernel)(x)``, ``residual = x - trend``; both [N, T, F].
    """

    def __init__(self, kernel: int = 5) -> None:
        """
        Args:
            kernel: Trailing moving-average length in days.
        """
        super().__init__()
        self.moving_average = CausalMovingAverage(kernel)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: [N, T, F] -> (trend [N, T, F], residual [N, T, F])."""
        if (x.ndim == 3 and x.device.type == "cpu" and x.dtype == torch.float32
                and not (torch.is_grad_enabled() and x.requires_grad)):
            ext = load_extension()
            if ext is not None:  # one compiled pass, bit-identical to the two lines below
                trend, residual = ext.decompose(x.contiguous(), self.moving_average.kernel)
                return trend, residual
        trend = self.moving_average(x)  # [N, T, F]
        return trend, x - trend


class AttentionPooling(nn.Module):
    """Attention-weighted sum over time: a learned score per step, softmax over the steps.

    ``a[n, t] = softmax_t(w . h[n, t] + b)``, ``out[n] = sum_t a[n, t] * h[n, t]``.
    Input [N, T, H] -> output [N, H] (and the weights [N, T], which sum to one over T).
    """

    def __init__(self, hidden: int = 64) -> None:
        """
        Args:
            hidden: Size of the per-step representation (H).
        """
        super().__init__()
        self.score = nn.Linear(hidden, 1)

    def forward(self, h: Tensor, return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """h: [N, T, H] -> pooled [N, H], or (pooled [N, H], weights [N, T]) if asked."""
        if h.ndim != 3:
            raise ValueError(f"expected h of shape [N, T, H], got {tuple(h.shape)}")
        weights = torch.softmax(self.score(h).squeeze(-1), dim=1)  # [N, T]
        pooled = torch.einsum("nt,nth->nh", weights, h)  # [N, H]
        return (pooled, weights) if return_weights else pooled


def _check_groups(groups: Tensor, n: int, n_groups: int | None) -> int:
    """Validate group ids [N]; return the number of groups G."""
    if groups.shape != (n,):
        raise ValueError(f"expected groups of shape [{n}], got {tuple(groups.shape)}")
    if groups.dtype != torch.long:
        raise ValueError(f"groups must be a LongTensor of group ids, got {groups.dtype}")
    if n == 0:
        return n_groups or 1
    low, high = int(groups.min()), int(groups.max())
    if low < 0:
        raise ValueError(f"group ids must be >= 0, got {low}")
    if n_groups is not None and high >= n_groups:
        raise ValueError(f"group id {high} out of range for n_groups={n_groups}")
    return high + 1 if n_groups is None else n_groups


def group_demean(
    h: Tensor, groups: Tensor | None = None, mask: Tensor | None = None,
    n_groups: int | None = None, inplace: bool = False,
) -> Tensor:
    """Subtract from each stock the mean representation of its group, separately per step.

    ``out[n, ...] = h[n, ...] - mean_{m: groups[m] == groups[n], mask[m]} h[m, ...]``.

    Args:
        h: Representations, [N, T, H] (one mean per time step and channel) or [N, H].
        groups: LongTensor [N] of group ids ``0..G-1`` (e.g. size quintiles); ``None``
            de-means over the whole cross-section. Empty groups are fine.
        mask: Bool [N]; stocks where it is False are excluded from the means (they are
            still de-meaned by their group's mean of the valid stocks). A group with no
            valid stock has mean 0.
        n_groups: Number of groups G; ids must be ``< n_groups``. ``None`` infers
            ``max(groups) + 1``.
        inplace: may overwrite ``h`` with the result when no gradient is recorded (the
            caller's ``h`` is a temporary: saves a copy in evaluation and export).

    Returns:
        Tensor of the same shape as ``h``; differentiable. Without a mask, float32 on a CPU,
        a compiled two-pass kernel (csrc/fused_gru.cpp; its backward is the same de-mean of
        the gradient); otherwise vectorized with ``index_add`` (no loop over stocks or
        groups). Both agree to float rounding (tested).
    """
    if h.ndim not in (2, 3):
        raise ValueError(f"expected h of shape [N, T, H] or [N, H], got {tuple(h.shape)}")
    n = h.shape[0]
    if groups is None:
        groups = torch.zeros(n, dtype=torch.long, device=h.device)
    n_groups = _check_groups(groups, n, n_groups)
    if mask is None and h.device.type == "cpu" and h.dtype == torch.float32 and n > 0:
        if load_extension() is not None:  # compiled two-pass kernel (csrc/fused_gru.cpp)
            flat = h.flatten(1)
            if inplace and not (torch.is_grad_enabled() and h.requires_grad) \
                    and h.is_contiguous():
                return load_extension().group_demean(flat, groups.contiguous(), n_groups,
                                                     True).view(h.shape)
            return GroupDemean.apply(flat, groups.contiguous(), n_groups).reshape(h.shape)
    if mask is None:
        weight = torch.ones(n, dtype=h.dtype, device=h.device)
    elif mask.shape != (n,) or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of shape [{n}], got {mask.dtype} {tuple(mask.shape)}"
        )
    else:
        weight = mask.to(h.dtype)
    flat = h.flatten(1)  # [N, D]
    # torch.where, not multiplication, so that NaN/inf in excluded stocks cannot leak in
    valid_flat = flat if mask is None else torch.where(weight[:, None] > 0, flat,
                                                       torch.zeros_like(flat))  # [N, D]
    sums = flat.new_zeros(n_groups, flat.shape[1]).index_add(0, groups, valid_flat)  # [G, D]
    counts = weight.new_zeros(n_groups).index_add(0, groups, weight)  # [G]
    means = sums / counts.clamp_min(1.0)[:, None]  # [G, D]
    # index_select, not means[groups]: same values, and its backward is an index_add
    # (parallel) instead of an accumulating index_put (serial; 63 ms of a 4,000-stock step)
    return (flat - means.index_select(0, groups)).reshape(h.shape)


def size_quintiles(log_mcap: Tensor, n_groups: int = 5) -> Tensor:
    """Equal-count size groups of one day's cross-section, by rank of (log) market cap.

    ``group[n] = floor(rank[n] * n_groups / N)`` with 0-based ranks (ties broken by
    position), so group 0 holds the smallest stocks, ``n_groups - 1`` the largest, and
    group counts differ by at most one.

    Args:
        log_mcap: Float [N], the SIZE exposure (log market cap) of each stock; finite.
        n_groups: Number of groups (5 = quintiles).

    Returns:
        LongTensor [N] of group ids ``0..n_groups-1``.
    """
    if log_mcap.ndim != 1:
        raise ValueError(f"expected log_mcap of shape [N], got {tuple(log_mcap.shape)}")
    if n_groups < 1:
        raise ValueError(f"n_groups must be >= 1, got {n_groups}")
    if not bool(torch.isfinite(log_mcap).all()):
        raise ValueError("log_mcap must be finite; drop stocks without a market cap first")
    n = log_mcap.shape[0]
    order = torch.argsort(log_mcap, stable=True)  # [N]
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(n, device=log_mcap.device)
    return torch.div(ranks * n_groups, max(n, 1), rounding_mode="floor")  # [N]


__all__ = [
    "AttentionPooling",
    "CausalMovingAverage",
    "DepthwiseSeparablePatchConv",
    "PatchConv",
    "SeriesDecomposition",
    "group_demean",
    "size_quintiles",
]
