"""ScanGRU (hand-written backward through time) against nn.GRU: outputs and every gradient."""

from __future__ import annotations

import torch

from lightning_modules.components import DecompGRU
from lightning_modules.components.fast_gru import ScanGRU, _GRUScan, use_scan_gru


def test_scan_matches_nn_gru_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    ref = torch.nn.GRU(8, 16, batch_first=True)
    scan = ScanGRU(8, 16, batch_first=True)
    scan.load_state_dict(ref.state_dict())
    x = torch.randn(37, 11, 8)
    h0 = torch.randn(1, 37, 16)
    grads = []
    for net in (ref, scan):
        xi, hi = x.clone().requires_grad_(), h0.clone().requires_grad_()
        out, last = net(xi, hi)
        (out.sin().sum() + last.cos().sum()).backward()
        grads.append([out.detach(), last.detach(), xi.grad, hi.grad,
                      *[p.grad for p in net.parameters()]])
        net.zero_grad()
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_scan_gradcheck_in_double() -> None:
    torch.manual_seed(1)
    t, n, h = 4, 3, 5
    args = (torch.randn(t, n, 3 * h, dtype=torch.double), torch.randn(n, h, dtype=torch.double),
            torch.randn(3 * h, h, dtype=torch.double), torch.randn(3 * h, dtype=torch.double))
    assert torch.autograd.gradcheck(_GRUScan.apply, [a.requires_grad_() for a in args])


def test_use_scan_gru_keeps_the_function() -> None:
    torch.manual_seed(2)
    net = DecompGRU(hidden=16)
    x, groups = torch.randn(50, 30, 6), torch.randint(0, 5, (50,))
    before = net(x, groups)
    use_scan_gru(net)
    assert isinstance(net.gru, ScanGRU) and isinstance(net.trend_gru, ScanGRU)
    torch.testing.assert_close(net(x, groups), before, rtol=1e-4, atol=1e-5)
