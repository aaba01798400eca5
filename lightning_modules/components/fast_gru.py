"""``ScanGRU``: ``nn.GRU`` (one layer, one direction, ``batch_first``) with a hand-written
backward through time for CPUs.

PyTorch's CPU ``nn.GRU`` backward computes the weight gradients step by step (one
``[3H, N] @ [N, H]`` matmul and one concatenation of the gate gradients per time step).
:class:`ScanGRU` keeps ``nn.GRU``'s parameters, names and equations (checkpoints load either
way) and on CPU computes:

1. the input projections of every step in one matmul ``x @ W_ih^T + b_ih`` -> [T, N, 3H];
2. the recurrence step by step, writing gates and states into preallocated buffers;
3. the backward through time (:class:`_GRUScan`): per step one ``[N, 3H] @ [3H, H]``
   matmul for the state gradient; the hidden-weight gradient is one matmul over all steps.

Equations (PyTorch's; ``*`` elementwise)::

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
    z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    h' = (1 - z) * n + z * h

On CUDA (cuDNN), for other dtypes, more layers or directions it calls ``nn.GRU.forward``.
``tests/test_fast_gru.py`` checks outputs and gradients against ``nn.GRU``;
``benchmarks/bench_train_step.py`` (variant ``scan``) measures it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _GRUScan(torch.autograd.Function):
    """Recurrence given the input projections ``gi`` [T, N, 3H]; returns states [T, N, H]."""

    @staticmethod
    def forward(ctx, gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
        steps, n_rows, three_h = gi.shape
        hid = three_h // 3
        w_t = w_hh.t()
        out = gi.new_empty(steps, n_rows, hid)
        gates = gi.new_empty(steps, n_rows, three_h)  # sigmoid(r), sigmoid(z), tanh(n)
        gh = gi.new_empty(steps, n_rows, three_h)  # h W_hh^T + b_hh
        h = h0
        for t in range(steps):
            g, a = gh[t], gates[t]
            torch.addmm(b_hh, h, w_t, out=g)
            rz = a[:, : 2 * hid]
            torch.add(gi[t, :, : 2 * hid], g[:, : 2 * hid], out=rz).sigmoid_()
            n = a[:, 2 * hid:]
            torch.addcmul(gi[t, :, 2 * hid:], rz[:, :hid], g[:, 2 * hid:], out=n).tanh_()
            h = torch.lerp(n, h, rz[:, hid:], out=out[t])  # n + z * (h - n)
        ctx.save_for_backward(h0, out, gates, gh, w_hh)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        h0, out, gates, gh, w_hh = ctx.saved_tensors
        steps, _, hid = out.shape
        d_gi = torch.empty_like(gates)  # gradients of the pre-activations (input side)
        d_gh = torch.empty_like(gates)  # ... (hidden side: the n gate differs by r)
        dh = grad_out[-1].clone()
        tmp = torch.empty_like(h0)
        for t in range(steps - 1, -1, -1):
            h_prev = out[t - 1] if t > 0 else h0
            a, di, dg = gates[t], d_gi[t], d_gh[t]
            r, z, n = a[:, :hid], a[:, hid: 2 * hid], a[:, 2 * hid:]
            dr, dz, dn = di[:, :hid], di[:, hid: 2 * hid], di[:, 2 * hid:]
            torch.mul(n, n, out=tmp).neg_().add_(1)  # dn = dh * (1 - z) * (1 - n^2)
            torch.mul(dh, tmp, out=dn)
            dn.sub_(torch.mul(dn, z, out=tmp))
            torch.sub(h_prev, n, out=dz).mul_(dh)  # dz = dh * (h_prev - n) * z * (1 - z)
            torch.mul(z, z, out=tmp)
            dz.mul_(torch.sub(z, tmp, out=tmp))
            torch.mul(dn, r, out=dg[:, 2 * hid:])  # d(h W_hn^T + b_hn) = dn * r
            torch.mul(dg[:, 2 * hid:], gh[t, :, 2 * hid:], out=dr)  # dr = dn gh_n r (1 - r)
            dr.sub_(torch.mul(dr, r, out=tmp))
            dg[:, : 2 * hid].copy_(di[:, : 2 * hid])
            dh.mul_(z).addmm_(dg, w_hh)  # dh_prev = dh * z + d_gh @ W_hh
            if t > 0:
                dh.add_(grad_out[t - 1])
        h_prevs = torch.cat([h0.unsqueeze(0), out[:-1]])
        flat = d_gh.view(-1, 3 * hid)
        return d_gi, dh, flat.t() @ h_prevs.view(-1, hid), flat.sum(0)


class ScanGRU(nn.GRU):
    """``nn.GRU`` with the CPU fast path above (one layer, one direction, batch_first)."""

    def forward(self, input: Tensor, hx: Tensor | None = None):  # noqa: A002 - nn.GRU's name
        if (input.is_cuda or self.num_layers != 1 or self.bidirectional or not self.batch_first
                or input.dim() != 3 or not self.bias or input.dtype != torch.float32
                or torch.is_autocast_enabled("cpu")):
            return super().forward(input, hx)
        n_rows, steps, n_in = input.shape
        h0 = input.new_zeros(n_rows, self.hidden_size) if hx is None else hx[0]
        gi = torch.addmm(self.bias_ih_l0, input.transpose(0, 1).reshape(-1, n_in),
                         self.weight_ih_l0.t()).view(steps, n_rows, -1)  # [T, N, 3H]
        out = _GRUScan.apply(gi, h0, self.weight_hh_l0, self.bias_hh_l0)  # [T, N, H]
        return out.transpose(0, 1), out[-1].unsqueeze(0)


def replace_plain_grus(net: nn.Module, cls: type[nn.GRU]) -> nn.Module:
    """Replace every plain ``nn.GRU`` inside ``net`` by an instance of the ``nn.GRU``
    subclass ``cls`` with the same configuration, weights and device (in place); returns
    ``net``. Parameter names are unchanged, so checkpoints load either way."""
    for name, child in list(net.named_children()):
        if type(child) is nn.GRU:
            new = cls(child.input_size, child.hidden_size, num_layers=child.num_layers,
                      bias=child.bias, batch_first=child.batch_first,
                      bidirectional=child.bidirectional)
            new.load_state_dict(child.state_dict())
            setattr(net, name, new.to(child.weight_hh_l0.device))
        else:
            replace_plain_grus(child, cls)
    return net


def use_scan_gru(net: nn.Module) -> nn.Module:
    """Replace every plain ``nn.GRU`` child of ``net`` by a :class:`ScanGRU` with the same
    weights (in place); returns ``net``."""
    return replace_plain_grus(net, ScanGRU)


__all__ = ["ScanGRU", "replace_plain_grus", "use_scan_gru"]
