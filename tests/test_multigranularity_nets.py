"""Contract tests for the multi-granularity nets, attention weights, the residual network's
auxiliary loss and MGRLModule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_modules import FactorModule
from lightning_modules.components import GRU
from lightning_modules.components.multigranularity import (GranularityGRU, MixedGranularityGRU,
                                                           MultiGranularityResidualNet)
from lightning_modules.losses import MSELoss, mse
from lightning_modules.mgrl_module import MGRLModule

N, DAYS, K, F, H = 23, 60, 10, 6, 16  # stocks, daily window, intraday days, features, hidden
STEPS = {"daily": DAYS, "60min": 4 * K, "30min": 8 * K}

NETS: dict[str, Callable[[], nn.Module]] = {
    "gru_daily": lambda: GranularityGRU("daily", hidden=H),
    "gru_60min": lambda: GranularityGRU("60min", hidden=H),
    "gru_30min": lambda: GranularityGRU("30min", hidden=H),
    "bi_agru_daily": lambda: GranularityGRU("daily", encoder="bi_agru", hidden=H),
    "bi_agru_30min": lambda: GranularityGRU("30min", encoder="bi_agru", hidden=H),
    "mixed_gru": lambda: MixedGranularityGRU(hidden=H, mlp_hidden=H),
    "mixed_bi_agru": lambda: MixedGranularityGRU(encoder="bi_agru", hidden=H, mlp_hidden=H),
    "mgrl_confidence": lambda: MultiGranularityResidualNet(["daily", "30min"], align_dim=H,
                                                           hidden=H),
    "mgrl_mean_3": lambda: MultiGranularityResidualNet(["daily", "60min", "30min"],
                                                       align_dim=H, hidden=H, combine="mean"),
}


def make_net(name: str) -> nn.Module:
    torch.manual_seed(0)
    return NETS[name]().eval()


def make_day(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {g: torch.randn(N, t, F, generator=gen) for g, t in STEPS.items()}  # [N, T_g, F]


@pytest.mark.parametrize("name", list(NETS))
def test_output_shape_finite_and_granularities_declared(name: str) -> None:
    net = make_net(name)
    out = net(make_day())
    assert out.shape == (N,) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.std() > 0
    assert set(net.granularities) <= set(STEPS) and isinstance(net.factor_name, str)


@pytest.mark.parametrize("name", list(NETS))
def test_every_parameter_gets_a_gradient(name: str) -> None:
    net = make_net(name).train()
    weights = torch.randn(N, generator=torch.Generator().manual_seed(5))
    (net(make_day()) * weights).sum().backward()
    for param_name, param in net.named_parameters():
        assert param.grad is not None, f"{param_name} got no gradient"
        assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", list(NETS))
def test_output_depends_on_every_declared_granularity_only(name: str) -> None:
    net = make_net(name)
    x = make_day()
    out = net(x)
    for g in STEPS:
        changed = dict(x)
        changed[g] = x[g].clone()
        changed[g][:, -1, :] += 1.0  # the most recent step of that granularity
        diff = (net(changed) - out).abs()
        if g in net.granularities:
            assert diff.min() > 1e-7, g
        else:
            assert diff.max() == 0, g


@pytest.mark.parametrize("name", list(NETS))
def test_stocks_are_scored_independently(name: str) -> None:
    net = make_net(name)
    x = make_day()
    moved = {g: v.clone() for g, v in x.items()}
    for v in moved.values():
        v[0] += 1.0
    diff = (net(moved) - net(x)).abs()
    assert diff[0] > 1e-6 and torch.allclose(diff[1:], torch.zeros(N - 1), atol=1e-6)


def test_single_granularity_accepts_a_tensor_and_matches_the_gru_baseline() -> None:
    x = make_day()["daily"]
    torch.manual_seed(0)
    ours = GranularityGRU("daily", hidden=H).eval()
    base = GRU(hidden=H).eval()
    state = {k.replace("encoder.", ""): v for k, v in ours.state_dict().items()}
    base.load_state_dict(state)
    assert torch.allclose(ours(x), base(x), atol=1e-6)
    assert torch.equal(ours(x), ours({"daily": x}))
    with pytest.raises(ValueError, match="30min"):
        GranularityGRU("30min")({"daily": x})


@pytest.mark.parametrize("name", ["bi_agru_daily", "bi_agru_30min", "mixed_bi_agru"])
def test_attention_weights_sum_to_one_over_time(name: str) -> None:
    net = make_net(name)
    weights = net.attention_weights(make_day())
    assert set(weights) == set(net.granularities)
    for g, w in weights.items():
        steps = STEPS[g] // (3 if g == "daily" else STEPS[g] // K)
        assert w.shape == (N, steps)
        assert (w >= 0).all()
        assert torch.allclose(w.sum(dim=1), torch.ones(N), atol=1e-6)
        assert w.std() > 0  # not uniform: learned scores per step
    with pytest.raises(ValueError, match="attention"):
        make_net("gru_daily").attention_weights(make_day())


def test_residual_auxiliary_loss_reaches_the_reconstruction_net() -> None:
    net = make_net("mgrl_mean_3").train()
    out = net.forward_with_aux(make_day())
    assert out.block_preds.shape == (3, N) and torch.isfinite(out.recon_loss)
    assert 0.5 < out.recon_loss.item() < 10  # two relative energies of order one at init
    assert torch.allclose(out.pred, out.block_preds.mean(0))
    out.recon_loss.backward()
    for name, param in net.named_parameters():
        # the coarser blocks (their aligned inputs and GRUs) and the reconstruction nets;
        # not the finest block's GRU, nor any head or norm
        reaches = name.startswith(("reconstruct.", "align.", "gru.daily", "gru.60min"))
        got = param.grad is not None and param.grad.abs().sum() > 0
        assert got == reaches, name


def test_confidence_weights_sum_to_one_and_combine_the_blocks() -> None:
    out = make_net("mgrl_confidence").forward_with_aux(make_day())
    assert torch.allclose(out.weights.sum(0), torch.ones(N), atol=1e-6)
    assert out.weights.std() > 0
    assert torch.allclose(out.pred, (out.weights * out.block_preds).sum(0))


def test_residual_net_rejects_bad_setups() -> None:
    with pytest.raises(ValueError, match="coarse to fine"):
        MultiGranularityResidualNet(["30min", "daily"])
    with pytest.raises(ValueError, match="split"):
        MultiGranularityResidualNet(["daily", "30min"], patches={"daily": 2, "30min": 3})
    x = make_day()
    x["daily"] = torch.randn(N, 12, F)  # 12 days cannot be aligned with 10 days of 30-min bars
    x["30min"] = torch.randn(N, 8 * 13, F)
    net = MultiGranularityResidualNet(["daily", "30min"], align_dim=H, hidden=H)
    with pytest.raises(ValueError, match="longer"):
        net(x)
    with pytest.raises(ValueError, match="granularities"):
        MixedGranularityGRU(["daily", "daily"])


def batch_for(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    y = torch.randn(N, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(N, dtype=torch.bool)
    mask[:3] = False
    return {"x": x["daily"], "x_60min": x["60min"], "x_30min": x["30min"], "y": y,
            "mask": mask, "size_group": torch.zeros(N, dtype=torch.long)}


def test_factor_module_passes_the_declared_windows() -> None:
    batch = batch_for(make_day())
    module = FactorModule(make_net("mixed_gru"), MSELoss())
    assert set(module.net_input(batch)) == {"daily", "60min", "30min"}
    assert torch.equal(FactorModule(GRU(), MSELoss()).net_input(batch), batch["x"])
    del batch["x_30min"]
    with pytest.raises(ValueError, match="x_30min"):
        module(batch)


def test_mgrl_module_objective_and_checkpoint(tmp_path: Path) -> None:
    batch = batch_for(make_day())
    module = MGRLModule(make_net("mgrl_confidence"), MSELoss(), recon_weight=0.5,
                        weight_decay=0.01, final_weight=2.0)
    pred = module(batch)
    loss = module.compute_loss(pred, batch)
    out = module.net.forward_with_aux(module.net_input(batch))
    y, m = batch["y"], batch["mask"]
    l2 = sum(p.pow(2).sum() for p in module.net.parameters())
    expect = (2.0 * mse(out.pred, y, m) + sum(mse(p, y, m) for p in out.block_preds)
              + 0.5 * out.recon_loss + 0.005 * l2)
    assert torch.allclose(loss, expect, rtol=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in module.net.reconstruct.parameters())
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": "2.5.0"}, tmp_path / "m.ckpt")
    loaded = MGRLModule.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=False).eval()
    assert loaded.recon_weight == 0.5 and loaded.final_weight == 2.0
    with torch.no_grad():
        assert torch.allclose(loaded(batch), module.eval()(batch))
    with pytest.raises(ValueError, match="MultiGranularityResidualNet"):
        MGRLModule(GRU())
