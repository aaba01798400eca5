"""FusedGRU (compiled, cache-blocked CPU recurrence) and the patch-conv fold, against nn.GRU
run in float64 on the same weights: outputs and every gradient."""

import copy
import shutil

import pytest
import torch
from torch import nn

from lightning_modules.components import GRU, DecompGRU
from lightning_modules.components.fused_gru import (
    FusedGRU,
    extension_error,
    load_extension,
    patch_gru,
    use_fused_gru,
)
from lightning_modules.components.layers import DepthwiseSeparablePatchConv, PatchConv


@pytest.fixture(scope="module", autouse=True)
def kernel():
    """The kernel must build wherever a compiler and ninja are present (as on CI); the
    tests below would otherwise only exercise the nn.GRU fallback."""
    ext = load_extension()
    if ext is None:
        if shutil.which("c++") and shutil.which("ninja"):
            pytest.fail(f"fused GRU kernel did not build: {extension_error()}")
        pytest.skip(f"no compiler here: {extension_error()}")
    return ext


def _pair(n_in: int, hidden: int, seed: int = 0) -> tuple[nn.GRU, FusedGRU]:
    torch.manual_seed(seed)
    ref = nn.GRU(n_in, hidden, batch_first=True).double()
    fused = FusedGRU(n_in, hidden, batch_first=True)
    fused.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
    return ref, fused


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / (b.abs().max() + 1e-12))


@pytest.mark.parametrize("n_rows,steps,n_in,hidden,with_h0,threads", [
    (70, 9, 16, 32, False, 2),    # rows not a multiple of the 32-row block or the 4-row tile
    (33, 1, 8, 16, True, 1),      # one step, initial state given
    (129, 17, 64, 64, True, 2),   # the nets' size, several blocks per thread
    (5, 4, 3, 48, False, 2),      # three 16-wide column tiles
])
def test_matches_nn_gru_in_double(n_rows, steps, n_in, hidden, with_h0, threads) -> None:
    ref, fused = _pair(n_in, hidden)
    x = torch.randn(n_rows, steps, n_in, dtype=torch.float64)
    h0 = torch.randn(1, n_rows, hidden, dtype=torch.float64) if with_h0 else None
    x_ref = x.clone().requires_grad_()
    x_f = x.float().requires_grad_()
    h0_ref = h0.clone().requires_grad_() if with_h0 else None
    h0_f = h0.float().requires_grad_() if with_h0 else None
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out_ref, hn_ref = ref(x_ref, h0_ref)
        out_f, hn_f = fused(x_f, h0_f)
        assert fused._fused_ok(x_f)
        assert out_f.shape == out_ref.shape and hn_f.shape == hn_ref.shape
        assert _rel(out_f, out_ref) < 2e-6 and _rel(hn_f, hn_ref) < 2e-6
        w = torch.randn_like(out_ref)
        wh = torch.randn_like(hn_ref)
        inputs_ref = [x_ref] + ([h0_ref] if with_h0 else []) + list(ref.parameters())
        inputs_f = [x_f] + ([h0_f] if with_h0 else []) + list(fused.parameters())
        g_ref = torch.autograd.grad((out_ref * w).sum() + (hn_ref * wh).sum(), inputs_ref)
        g_f = torch.autograd.grad((out_f * w.float()).sum() + (hn_f * wh.float()).sum(),
                                  inputs_f)
    finally:
        torch.set_num_threads(old)
    for a, b in zip(g_f, g_ref):
        assert a.shape == b.shape
        assert _rel(a, b) < 1e-5


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_inference_path_matches_nn_gru(mode) -> None:
    """Without autograd the kernel's inference path runs (input projection in the kernel,
    nothing saved); with states=False it keeps only the last state."""
    ref, fused = _pair(8, 32)
    patch = PatchConv(6, 8, 3)
    x = torch.randn(70, 6, 8)
    xs = torch.randn(70, 18, 6)
    with mode():
        out_a, last_a = fused(x)
        _, last_p = patch_gru(patch, fused, xs, torch.randn(70, 6, 8), states=False)
        out_p, last_q = patch_gru(patch, fused, xs)
    out_ref, last_ref = ref(x.double())
    assert _rel(out_a, out_ref) < 2e-6 and _rel(last_a, last_ref) < 2e-6
    out_b, _ = fused(x.requires_grad_())
    assert torch.allclose(out_a, out_b.detach(), atol=1e-6, rtol=0)
    assert last_p.shape == (1, 70, 32) and torch.equal(out_p[:, -1], last_q[0])
    with torch.no_grad():
        out_c, _ = fused(patch(xs))
    assert torch.allclose(out_p, out_c, atol=1e-5, rtol=0)


def test_backward_twice_is_refused() -> None:
    _, fused = _pair(8, 16)
    out, _ = fused(torch.randn(10, 3, 8, requires_grad=True))
    loss = out.sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="cannot run twice"):
        loss.backward()


def test_falls_back_where_the_kernel_does_not_apply() -> None:
    torch.manual_seed(0)
    fused = FusedGRU(8, 20, batch_first=True)  # hidden not a multiple of 16
    ref = nn.GRU(8, 20, batch_first=True)
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(6, 4, 8)
    assert not fused._fused_ok(x)
    assert torch.equal(fused(x)[0], ref(x)[0])
    bi = FusedGRU(8, 16, batch_first=True, bidirectional=True)
    assert not bi._fused_ok(x) and bi(x)[0].shape == (6, 4, 32)
    with torch.autocast("cpu", torch.bfloat16):
        assert not FusedGRU(8, 16, batch_first=True)._fused_ok(x)


@pytest.mark.parametrize("conv_cls,with_h", [(PatchConv, False), (PatchConv, True),
                                              (DepthwiseSeparablePatchConv, True)])
def test_patch_fold_matches_conv_then_gru(conv_cls, with_h) -> None:
    """``patch_gru`` = ``gru(patch(x))`` or ``gru(h + patch(x))``: states, last state and the
    gradients of x, h and every parameter."""
    torch.manual_seed(1)
    patch = conv_cls(6, 32, 3).double()
    ref = nn.GRU(32, 32, batch_first=True).double()
    fused = FusedGRU(32, 32, batch_first=True)
    fused.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
    patch_f = copy.deepcopy(patch).float()
    x = torch.randn(37, 20, 6, dtype=torch.float64, requires_grad=True)  # 20 % 3: 2 dropped
    h = torch.randn(37, 6, 32, dtype=torch.float64, requires_grad=True) if with_h else None
    y = patch(x)
    out_ref, last_ref = ref(y if h is None else h + y)
    x_f = x.detach().float().requires_grad_()
    h_f = h.detach().float().requires_grad_() if with_h else None
    out_f, last_f = patch_gru(patch_f, fused, x_f, h_f)
    assert _rel(out_f, out_ref) < 2e-6 and _rel(last_f, last_ref) < 2e-6
    w = torch.randn_like(out_ref)
    wl = torch.randn_like(last_ref)
    extra_ref, extra_f = ([h], [h_f]) if with_h else ([], [])
    g_ref = torch.autograd.grad((out_ref * w).sum() + (last_ref * wl).sum(),
                                [x] + extra_ref + list(patch.parameters())
                                + list(ref.parameters()))
    g_f = torch.autograd.grad((out_f * w.float()).sum() + (last_f * wl.float()).sum(),
                              [x_f] + extra_f + list(patch_f.parameters())
                              + list(fused.parameters()))
    for a, b in zip(g_f, g_ref):
        assert _rel(a, b) < 1e-5


def test_last_state_alone_gets_gradients() -> None:
    """Only the last state used (as the nets do): no gradient of the states is materialized."""
    ref, fused = _pair(8, 16)
    x = torch.randn(21, 5, 8, dtype=torch.float64)
    x_f = x.float().requires_grad_()
    _, last_ref = ref(x.requires_grad_())
    _, last_f = fused(x_f)
    g_ref = torch.autograd.grad(last_ref.square().sum(), [x] + list(ref.parameters()))
    g_f = torch.autograd.grad(last_f.square().sum(), [x_f] + list(fused.parameters()))
    for a, b in zip(g_f, g_ref):
        assert _rel(a, b) < 1e-5


@pytest.mark.parametrize("cls", [GRU, DecompGRU])
def test_nets_with_fused_gru_match_plain_nets(cls) -> None:
    torch.manual_seed(2)
    net = cls(hidden=32).double()
    fused = use_fused_gru(copy.deepcopy(net)).float()
    assert all(type(m) is FusedGRU for m in fused.modules() if isinstance(m, nn.GRU))
    x = torch.randn(45, 30, 6, dtype=torch.float64)
    groups = torch.randint(0, 5, (45,))
    y_ref, y_f = net(x, groups), fused(x.float(), groups)
    assert _rel(y_f, y_ref) < 2e-6
    y_ref.square().sum().backward()
    y_f.square().sum().backward()
    for (name, a), (_, b) in zip(net.named_parameters(), fused.named_parameters()):
        assert _rel(b.grad, a.grad) < 2e-5, name


@pytest.mark.parametrize("cls", [GRU, DecompGRU])
def test_empty_day_and_empty_window(cls) -> None:
    """No stocks: empty scores and gradients through the kernels; no days: nn.GRU's error."""
    net = use_fused_gru(cls(hidden=32))
    y = net(torch.randn(0, 30, 6), torch.zeros(0, dtype=torch.long))
    assert y.shape == (0,)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="sequence length"):
        FusedGRU(8, 16, batch_first=True)(torch.randn(3, 0, 8))
