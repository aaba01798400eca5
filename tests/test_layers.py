"""Shared layers: causal decomposition, patching, group de-mean, size groups, attention pooling."""

import numpy as np
import pytest
import torch

from lightning_modules.components import DecompGRU
from lightning_modules.components.layers import (
    AttentionPooling,
    CausalMovingAverage,
    DepthwiseSeparablePatchConv,
    PatchConv,
    SeriesDecomposition,
    group_demean,
    size_quintiles,
)


def moving_average_reference(x: np.ndarray, kernel: int) -> np.ndarray:
    """Trailing mean per stock and feature; the start padded with copies of x[:, 0]."""
    n, t, f = x.shape
    padded = np.concatenate([np.repeat(x[:, :1], kernel - 1, axis=1), x], axis=1)
    out = np.empty_like(x)
    for step in range(t):
        out[:, step] = padded[:, step : step + kernel].mean(axis=1)
    return out


@pytest.mark.parametrize("kernel", [1, 5, 7])
def test_moving_average_matches_numpy(kernel: int) -> None:
    x = torch.randn(4, 20, 3, dtype=torch.float64)
    trend = CausalMovingAverage(kernel)(x)
    assert trend.shape == x.shape
    np.testing.assert_allclose(trend.numpy(), moving_average_reference(x.numpy(), kernel))
    # the padded start by hand: trend[1] = (4 * x[0] + x[1]) / 5
    if kernel == 5:
        torch.testing.assert_close(trend[:, 0], x[:, 0])
        torch.testing.assert_close(trend[:, 1], (4 * x[:, 0] + x[:, 1]) / 5)


@pytest.mark.parametrize("kernel", [1, 5, 7])
def test_moving_average_equals_avg_pool_exactly(kernel: int) -> None:
    """The shifted-slice sum is the same arithmetic as the AvgPool1d it replaced."""
    x = torch.randn(50, 40, 6)
    pad = x[:, :1, :].expand(-1, kernel - 1, -1)
    pooled = torch.nn.AvgPool1d(kernel, stride=1)(torch.cat([pad, x], 1).transpose(1, 2))
    assert torch.equal(CausalMovingAverage(kernel)(x), pooled.transpose(1, 2))


@pytest.mark.parametrize("kernel,n_days", [(1, 20), (5, 3), (5, 150), (7, 31)])
def test_decomposition_kernel_is_bit_identical(kernel: int, n_days: int) -> None:
    """Without autograd SeriesDecomposition runs the compiled one-pass kernel; with it, the
    torch ops. Same bits either way (also for windows shorter than the kernel)."""
    x = torch.randn(41, n_days, 6)
    with torch.no_grad():
        trend_k, residual_k = SeriesDecomposition(kernel)(x)
    trend_t, residual_t = SeriesDecomposition(kernel)(x.clone().requires_grad_())
    assert torch.equal(trend_k, trend_t.detach())
    assert torch.equal(residual_k, residual_t.detach())


def test_group_demean_inplace_only_without_autograd() -> None:
    h = torch.randn(30, 4, 16)
    groups = torch.randint(0, 3, (30,))
    expected = group_demean(h, groups)
    with torch.no_grad():
        h2 = h.clone()
        out = group_demean(h2, groups, inplace=True)
    assert torch.equal(out, expected) and out.data_ptr() == h2.data_ptr()
    h3 = h.clone().requires_grad_()
    out3 = group_demean(h3, groups, inplace=True)  # recorded: a new tensor
    assert out3.data_ptr() != h3.data_ptr() and torch.equal(h3.detach(), h)


def test_series_decomposition_sums_back() -> None:
    x = torch.randn(3, 30, 6)
    trend, residual = SeriesDecomposition(5)(x)
    torch.testing.assert_close(trend + residual, x)
    torch.testing.assert_close(trend, CausalMovingAverage(5)(x))


@pytest.mark.parametrize("t", [0, 7, 28])
def test_decomposition_is_causal(t: int) -> None:
    x = torch.randn(3, 30, 6)
    future = x.clone()
    future[:, t + 1 :] = torch.randn_like(future[:, t + 1 :])
    trend, residual = SeriesDecomposition(5)(x)
    trend_f, residual_f = SeriesDecomposition(5)(future)
    assert torch.equal(trend[:, : t + 1], trend_f[:, : t + 1])
    assert torch.equal(residual[:, : t + 1], residual_f[:, : t + 1])
    assert not torch.allclose(trend[:, t + 1], trend_f[:, t + 1])


@pytest.mark.parametrize("n_days", [150, 151, 152])
def test_decompgru_branches_are_causal(n_days: int) -> None:
    """Changing days after t leaves every patch step that ends by day t unchanged."""
    torch.manual_seed(0)
    net = DecompGRU(group_demean="size_groups").eval()
    x = torch.randn(20, n_days, 6)
    size_group = size_quintiles(torch.randn(20))
    offset, k = n_days % 3, 30  # patch step k covers days offset + 3k .. offset + 3k + 2
    t = offset + 3 * k + 2
    future = x.clone()
    future[:, t + 1 :] += torch.randn_like(future[:, t + 1 :])
    with torch.no_grad():
        branches = []
        for window in (x, future):
            trend, residual = net.decomposition(window)
            branches.append(
                (net.trend_representation(trend, size_group), net.residual_patch(residual))
            )
    for before, after in zip(branches[0], branches[1]):
        assert before.shape == (20, n_days // 3, 64)
        torch.testing.assert_close(before[:, : k + 1], after[:, : k + 1], rtol=0, atol=1e-6)
        assert (before[:, k + 1] - after[:, k + 1]).abs().max() > 1e-4


@pytest.mark.parametrize("layer_cls", [PatchConv, DepthwiseSeparablePatchConv])
def test_patch_convs_keep_most_recent_days(layer_cls: type[torch.nn.Module]) -> None:
    torch.manual_seed(0)
    layer = layer_cls(6, 16, 3)
    x = torch.randn(5, 152, 6)  # 152 % 3 == 2 oldest days dropped
    out = layer(x)
    assert out.shape == (5, 50, 16)
    torch.testing.assert_close(out, layer(x[:, 2:]))
    first_patch = layer(x[:, 2:5])  # [5, 1, 16]
    torch.testing.assert_close(out[:, :1], first_patch)
    with pytest.raises(ValueError, match="shorter"):
        layer(x[:, :2])


def test_depthwise_separable_structure() -> None:
    layer = DepthwiseSeparablePatchConv(6, 64, 3)
    assert layer.depthwise.weight.shape == (6, 1, 3)  # one filter per feature
    n_params = sum(p.numel() for p in layer.parameters())
    assert n_params == (6 * 3 + 6) + (6 * 64 + 64)
    # no mixing across features before the pointwise conv
    x = torch.randn(2, 9, 6)
    x2 = x.clone()
    x2[..., 0] += 1.0
    depthwise = lambda v: layer.depthwise(v.transpose(1, 2))  # noqa: E731
    assert torch.equal(depthwise(x)[:, 1:], depthwise(x2)[:, 1:])


def group_demean_reference(
    h: np.ndarray, groups: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    out = h.copy()
    for g in np.unique(groups):
        members = groups == g
        valid = members & mask
        mean = h[valid].mean(axis=0) if valid.any() else 0.0
        out[members] = h[members] - mean
    return out


def test_group_demean_matches_numpy_loop_with_mask_and_empty_group() -> None:
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(23, 4, 3, generator=gen, dtype=torch.float64)
    groups = torch.tensor([0, 1, 3] * 7 + [0, 1])  # group 2 empty, 4 groups
    mask = torch.rand(23, generator=gen) > 0.3
    mask[groups == 3] = False  # a group without a valid stock: mean 0
    mask[0] = True
    h_nan = h.clone()
    h_nan[~mask] = float("nan")
    out = group_demean(h, groups, mask)
    expected = group_demean_reference(h.numpy(), groups.numpy(), mask.numpy())
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)
    # excluded stocks do not enter the means, even when they are NaN
    out_nan = group_demean(h_nan, groups, mask)
    torch.testing.assert_close(out_nan[mask], out[mask])


def test_group_demean_kernel_matches_index_add_path() -> None:
    """The compiled path (no mask) against the index_add path (an all-True mask takes it):
    values and gradients, incl. an empty group."""
    torch.manual_seed(3)
    h = torch.randn(203, 7, 16, requires_grad=True)
    groups = torch.randint(0, 4, (203,))  # group 4 of 5 empty
    w = torch.randn(203, 7, 16)
    out = group_demean(h, groups, n_groups=5)
    (g_fast,) = torch.autograd.grad((out * w).sum(), h)
    ref = group_demean(h, groups, torch.ones(203, dtype=torch.bool), n_groups=5)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), h)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-6, rtol=0)


def test_group_demean_zero_group_means_at_every_step() -> None:
    h = torch.randn(40, 6, 8, dtype=torch.float64)
    groups = size_quintiles(torch.randn(40))
    out = group_demean(h, groups)
    for g in range(5):
        group_means = out[groups == g].mean(dim=0)  # [T, H]
        torch.testing.assert_close(group_means, torch.zeros(6, 8, dtype=torch.float64))
    whole = group_demean(h)
    torch.testing.assert_close(whole.mean(dim=0), torch.zeros(6, 8, dtype=torch.float64))
    torch.testing.assert_close(whole, h - h.mean(dim=0, keepdim=True))
    flat = group_demean(h[:, 0], groups)  # [N, H] input
    torch.testing.assert_close(flat, out[:, 0])


def test_group_demean_is_differentiable_and_validates() -> None:
    h = torch.randn(10, 3, 2, requires_grad=True)
    groups = torch.tensor([0, 1] * 5)
    (group_demean(h, groups) * torch.randn(10, 3, 2)).sum().backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="LongTensor"):
        group_demean(h, groups.int())
    with pytest.raises(ValueError, match=">= 0"):
        group_demean(h, groups - 1)
    with pytest.raises(ValueError, match="out of range"):
        group_demean(h, groups, n_groups=1)
    with pytest.raises(ValueError, match="mask"):
        group_demean(h, groups, mask=torch.ones(10))


@pytest.mark.parametrize("n", [37, 50, 3])
def test_size_quintiles_equal_counts_and_order(n: int) -> None:
    log_mcap = torch.randn(n, dtype=torch.float64)
    groups = size_quintiles(log_mcap)
    assert groups.dtype == torch.long
    counts = torch.bincount(groups, minlength=5)
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1
    if n % 5 == 0:
        assert (counts == n // 5).all()
    order = torch.argsort(log_mcap)
    assert (torch.diff(groups[order]) >= 0).all()  # bigger caps never in a smaller group
    assert groups[order[0]] == 0 and groups[order[-1]] == (4 if n >= 5 else groups.max())
    with pytest.raises(ValueError, match="finite"):
        size_quintiles(torch.tensor([1.0, float("nan")]))


def test_attention_pooling_weights_sum_to_one() -> None:
    torch.manual_seed(0)
    pool = AttentionPooling(16)
    h = torch.randn(7, 11, 16)
    pooled, weights = pool(h, return_weights=True)
    assert pooled.shape == (7, 16) and weights.shape == (7, 11)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(7))
    assert (weights > 0).all()
    torch.testing.assert_close(pooled, (weights[..., None] * h).sum(dim=1))
    torch.testing.assert_close(pool(h), pooled)
    assert weights.std(dim=1).min() > 0  # learned scores, not uniform
