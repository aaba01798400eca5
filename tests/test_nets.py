"""Contract tests for every factor net: forward(x [N, T, F], size_group [N] | None) -> [N]."""

from collections.abc import Callable

import pytest
import torch
from torch import nn

from lightning_modules.components import GRU, DecompGRU
from lightning_modules.components.layers import size_quintiles

N_STOCKS, N_DAYS, N_FEATURES = 37, 150, 6

NETS: dict[str, Callable[[], nn.Module]] = {
    "gru": lambda: GRU(),
    "decompgru_size_groups": lambda: DecompGRU(group_demean="size_groups"),
    "decompgru_cross_section": lambda: DecompGRU(group_demean="cross_section"),
    "decompgru_none": lambda: DecompGRU(group_demean="none"),
}


def make_net(name: str) -> nn.Module:
    torch.manual_seed(0)
    return NETS[name]().eval()


def make_day(n_days: int = N_DAYS, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N_STOCKS, n_days, N_FEATURES, generator=gen)  # [N, T, F]
    size_group = size_quintiles(torch.randn(N_STOCKS, generator=gen))  # [N]
    return x, size_group


@pytest.mark.parametrize("n_days", [N_DAYS, N_DAYS + 1])
@pytest.mark.parametrize("name", list(NETS))
def test_output_shape_and_finite(name: str, n_days: int) -> None:
    x, size_group = make_day(n_days)
    out = make_net(name)(x, size_group)
    assert out.shape == (N_STOCKS,)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.std() > 0  # not a constant score


@pytest.mark.parametrize("name", list(NETS))
def test_every_parameter_gets_a_gradient(name: str) -> None:
    net = make_net(name).train()
    x, size_group = make_day()
    weights = torch.randn(N_STOCKS, generator=torch.Generator().manual_seed(5))
    (net(x, size_group) * weights).sum().backward()
    for param_name, param in net.named_parameters():
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, f"{param_name} got a zero gradient"


@pytest.mark.parametrize("name", list(NETS))
def test_output_depends_on_input(name: str) -> None:
    net = make_net(name)
    x, size_group = make_day()
    out = net(x, size_group)
    assert torch.equal(net(x.clone(), size_group), out)  # deterministic in eval mode
    changed = net(x + 0.5 * torch.randn_like(x), size_group)
    assert (changed - out).abs().min() > 0


@pytest.mark.parametrize("name", list(NETS))
def test_most_recent_day_matters(name: str) -> None:
    net = make_net(name)
    x, size_group = make_day()
    x_last = x.clone()
    x_last[:, -1, :] += 1.0
    assert (net(x_last, size_group) - net(x, size_group)).abs().min() > 1e-6


def test_gru_ignores_oldest_remainder_day() -> None:
    # T = 151 with patch 3: the oldest day is dropped, the newest kept
    net = make_net("gru")
    x, _ = make_day(N_DAYS + 1)
    x_old = x.clone()
    x_old[:, 0, :] += 10.0
    assert torch.equal(net(x_old), net(x))
    assert torch.equal(net(x), net(x[:, 1:, :]))


@pytest.mark.parametrize("name", ["gru", "decompgru_none"])
def test_stocks_scored_independently(name: str) -> None:
    net = make_net(name)
    x, size_group = make_day()
    x2 = x.clone()
    x2[0] += 1.0
    diff = (net(x2, size_group) - net(x, size_group)).abs()
    assert diff[0] > 1e-6
    assert torch.allclose(diff[1:], torch.zeros(N_STOCKS - 1), atol=1e-6)


def test_cross_section_demean_couples_all_stocks() -> None:
    net = make_net("decompgru_cross_section")
    x, _ = make_day()
    x2 = x.clone()
    x2[0] += 1.0
    assert (net(x2) - net(x)).abs().min() > 0


def test_size_group_demean_couples_only_the_same_group() -> None:
    net = make_net("decompgru_size_groups")
    x, size_group = make_day()
    x2 = x.clone()
    x2[0] += 1.0
    diff = (net(x2, size_group) - net(x, size_group)).abs()
    same = size_group == size_group[0]
    assert (diff[same] > 0).all()
    assert torch.allclose(diff[~same], torch.zeros(int((~same).sum())), atol=1e-6)


def test_size_groups_change_the_output() -> None:
    net = make_net("decompgru_size_groups")
    x, size_group = make_day()
    other = torch.roll(size_group, 1)
    assert not torch.allclose(net(x, size_group), net(x, other))


def test_decompgru_requires_size_groups() -> None:
    x, _ = make_day()
    with pytest.raises(ValueError, match="size_group"):
        make_net("decompgru_size_groups")(x)
    with pytest.raises(ValueError, match="out of range"):
        make_net("decompgru_size_groups")(x, torch.full((N_STOCKS,), 5, dtype=torch.long))


def test_bad_inputs_raise_value_error() -> None:
    x, size_group = make_day()
    with pytest.raises(ValueError, match="features"):
        GRU()(x[..., :5])
    with pytest.raises(ValueError, match=r"\[N, T, F\]"):
        DecompGRU(group_demean="none")(x[0])
    with pytest.raises(ValueError, match="shape"):
        DecompGRU()(x, size_group[:-1])
    with pytest.raises(ValueError, match="group_demean"):
        DecompGRU(group_demean="industry")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dropout"):
        GRU(dropout=1.0)
