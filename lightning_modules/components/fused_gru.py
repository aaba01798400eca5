"""``FusedGRU``: ``nn.GRU`` (one layer, one direction, ``batch_first``) with a compiled, cache-
blocked CPU recurrence for forward and backward (``csrc/fused_gru.cpp``), and ``patch_gru``,
which folds a patch conv into the GRU's input projection.

PyTorch's CPU ``nn.GRU`` runs every time step as about ten separate ops over the whole
cross-section (each streaming a ``[N, 3H]`` block through memory), and its backward adds a
weight-gradient matmul and a concatenation per step. :class:`FusedGRU` keeps ``nn.GRU``'s
parameters, names and equations (checkpoints load either way). Its kernel cuts the stocks
into blocks of 64 and runs all time steps of a block while the block's state, gates and the
weights stay in cache; blocks run in parallel on torch's intra-op threads. Per step:

- forward: the input projections ``x_t W_ih^T + b_ih`` and ``h W_hh^T + b_hh`` (register-
  blocked AVX-512 tiles), then the gate arithmetic in one vectorized pass; for training the
  activations (r, z, n) and ``h W_hn^T + b_hn`` are kept for the backward, in evaluation
  nothing is kept and, where the caller uses only the last state, no states either;
- backward: the gate gradients in one pass, ``dh W_hh`` for the previous state, the input
  gradient ``d_gi W_ih`` (input widths that are multiples of 16; one matmul otherwise), and
  the weight and bias gradients ``dg^T h``, ``x^T d_gi`` accumulated per thread in cache.

The kernel is compiled on first use (``kernels.load_extension``: g++ and ninja, about 30 s
once per machine). Where it cannot be built, or for inputs it does not cover (CUDA, not
float32, autocast, hidden size not a multiple of 16, more layers or directions, an empty
window), :class:`FusedGRU` runs ``nn.GRU.forward``. The gate activations use a polynomial
``exp`` (Cephes' ``expf``): outputs agree with ``nn.GRU`` to ~1e-6
(``tests/test_fused_gru.py`` checks outputs and every gradient against ``nn.GRU`` in
float64). The same extension holds the group de-mean and series decomposition of
``layers.py``. Measured in docs/speed.md.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_modules.components.fast_gru import replace_plain_grus
from lightning_modules.components.kernels import extension_error, load_extension
from lightning_modules.components.layers import (
    DepthwiseSeparablePatchConv,
    PatchConv,
    _check_sequence,
    _keep_recent_multiple,
)

class _GRURecurrence(torch.autograd.Function):
    """The recurrence given its inputs: (x, h0, W_ih, b_ih, W_hh, b_hh[, x2, W2]) -> (states
    out [N, T, H], last state [N, H]). The input projection is ``x W_ih^T + b_ih`` plus
    ``x2 W2^T`` when an extra input ``x2`` [N, T, K] is given (a folded patch conv)."""

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, w_ih: Tensor, b_ih: Tensor, w_hh: Tensor,
                b_hh: Tensor, x2: Tensor | None = None, w2: Tensor | None = None):
        ctx.set_materialize_grads(False)
        inputs, w_ts = _projection_operands(x, w_ih, x2, w2)
        out, gates, ghn = load_extension().gru_forward(
            inputs, w_ts, h0.contiguous(), w_hh.contiguous(), b_hh.contiguous(),
            b_ih.contiguous(), True, True)
        ctx.save_for_backward(inputs[0], h0, w_ih, w_hh, gates, ghn, out,
                              inputs[1] if x2 is not None else None, w2)
        ctx.consumed = False
        return out, out[:, -1].clone()

    @staticmethod
    def backward(ctx, grad_out: Tensor | None, grad_last: Tensor | None):
        if ctx.consumed:
            raise RuntimeError("FusedGRU's backward reuses its saved buffers: it cannot run "
                               "twice on one graph (retain_graph=True is not supported)")
        ctx.consumed = True
        x, h0, w_ih, w_hh, gates, ghn, out, x2, w2 = ctx.saved_tensors
        needs = ctx.needs_input_grad
        # weight gradients x^T d_gi and input gradients d_gi W (widths multiple of 16) are
        # computed inside the kernel, block by block while the block's rows are in cache
        dw_for = [(x, needs[2]), (x2, x2 is not None and needs[7])]
        dx_for = [(x, w_ih, needs[0]), (x2, w2, x2 is not None and needs[6])]
        inputs = [t for t, need in dw_for if need]
        in_kernel = [need and t.shape[-1] % 16 == 0 for t, _, need in dx_for]
        dx_weights = [w.contiguous() for (_, w, _), k in zip(dx_for, in_kernel) if k]
        none = gates.new_empty(0)
        # gates is overwritten with d_gi, the gradients of the input-side pre-activations
        dh0, dw_hh, db_hh, db_ih, *rest = load_extension().gru_backward(
            none if grad_out is None else grad_out.contiguous(),
            none if grad_last is None else grad_last.contiguous(),
            gates, ghn, out, h0.contiguous(), w_hh.contiguous(), inputs, dx_weights)
        dw_t, dx_kernel = rest[:len(inputs)], rest[len(inputs):]
        dws = [dw_t.pop(0).t() if need else None for _, need in dw_for]
        dxs = []
        for (t, w, need), k in zip(dx_for, in_kernel):
            if k:
                dxs.append(dx_kernel.pop(0))
            elif need:  # a width the kernel's tiles do not cover: one matmul over all steps
                dxs.append((gates.view(-1, gates.shape[-1]) @ w).view(*t.shape))
            else:
                dxs.append(None)
        return (dxs[0], dh0 if needs[1] else None, dws[0], db_ih if needs[3] else None,
                dw_hh if needs[4] else None, db_hh if needs[5] else None, dxs[1], dws[1])


def _projection_operands(x: Tensor, w_ih: Tensor, x2: Tensor | None,
                         w2: Tensor | None) -> tuple[list[Tensor], list[Tensor]]:
    """The kernel's input projection operands: inputs [N, T, K] and transposed weights."""
    inputs, w_ts = [x.contiguous()], [w_ih.t().contiguous()]
    if x2 is not None:
        inputs.append(x2.contiguous())
        w_ts.append(w2.t().contiguous())
    return inputs, w_ts


def _recurrence(x: Tensor, h0: Tensor, w_ih: Tensor, b_ih: Tensor, w_hh: Tensor, b_hh: Tensor,
                x2: Tensor | None = None, w2: Tensor | None = None,
                states: bool = True) -> tuple[Tensor | None, Tensor]:
    """(states [N, T, H] or None, last state [N, H]). With autograd recording and an input
    that needs a gradient: :class:`_GRURecurrence`; otherwise (evaluation, export) the
    kernel's inference path, which builds no [N, T, 3H] buffer and, with ``states=False``,
    keeps only the last state."""
    tensors = (x, h0, w_ih, b_ih, w_hh, b_hh, x2, w2)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _GRURecurrence.apply(*tensors)
    inputs, w_ts = _projection_operands(x, w_ih, x2, w2)
    (res,) = load_extension().gru_forward(inputs, w_ts, h0.contiguous(), w_hh.contiguous(),
                                          b_hh.contiguous(), b_ih.contiguous(), False, states)
    return (res, res[:, -1]) if states else (None, res)


class FusedGRU(nn.GRU):
    """``nn.GRU`` with the compiled CPU recurrence above (one layer, one direction,
    batch_first, float32); anything else, or no compiler, runs ``nn.GRU.forward``."""

    def _fused_ok(self, input: Tensor) -> bool:  # noqa: A002 - nn.GRU's name
        return (input.device.type == "cpu" and input.dim() == 3 and input.shape[1] > 0
                and self.num_layers == 1 and not self.bidirectional and self.batch_first
                and self.bias and input.dtype == torch.float32
                and self.hidden_size % 16 == 0 and not torch.is_autocast_enabled("cpu")
                and all(p.dtype == torch.float32 for p in self._flat_weights)
                and load_extension() is not None)

    def forward(self, input: Tensor, hx: Tensor | None = None):  # noqa: A002 - nn.GRU's name
        if not self._fused_ok(input):
            return super().forward(input, hx)
        h0 = input.new_zeros(input.shape[0], self.hidden_size) if hx is None else hx[0]
        out, last = _recurrence(input, h0, self.weight_ih_l0, self.bias_ih_l0,
                                self.weight_hh_l0, self.bias_hh_l0)
        return out, last.unsqueeze(0)


def _patch_map(patch: PatchConv | DepthwiseSeparablePatchConv) -> tuple[Tensor, Tensor]:
    """A patch conv as one linear map of each patch's ``patch * F`` values (in (day,
    feature) order): (weight [H, patch * F], bias [H]), built from its parameters with
    autograd ops, so gradients flow back to them."""
    if isinstance(patch, PatchConv):
        w = patch.conv.weight  # [H, F, patch]
        bias = patch.conv.bias if patch.conv.bias is not None else w.new_zeros(w.shape[0])
        return w.permute(0, 2, 1).reshape(w.shape[0], -1), bias
    w_dw = patch.depthwise.weight[:, 0, :]  # [F, patch]
    w_pw = patch.pointwise.weight[:, :, 0]  # [H, F]
    w = (w_pw[:, None, :] * w_dw.t()[None, :, :]).reshape(w_pw.shape[0], -1)  # [H, patch*F]
    bias = w_pw.new_zeros(w_pw.shape[0])
    if patch.depthwise.bias is not None:
        bias = bias + w_pw @ patch.depthwise.bias
    if patch.pointwise.bias is not None:
        bias = bias + patch.pointwise.bias
    return w, bias


def patch_gru(patch: PatchConv | DepthwiseSeparablePatchConv, gru: nn.GRU, x: Tensor,
              h: Tensor | None = None, states: bool = True) -> tuple[Tensor | None, Tensor]:
    """``gru(patch(x))``, or ``gru(h + patch(x))`` when ``h`` [N, P, H_in] is given: the GRU's
    (states [N, P, H], last state [1, N, H]) as ``nn.GRU`` returns them. ``states=False``
    says the caller uses only the last state: the fused kernel's inference path then keeps
    no states and returns None for them (other paths return them anyway).

    When ``gru`` is a :class:`FusedGRU` whose kernel runs on ``x``, the patch conv is folded
    into the GRU's input projection: both are linear, so ``W_ih (W_conv p + b_conv) + b_ih =
    (W_ih W_conv) p + (W_ih b_conv + b_ih)`` for each patch ``p`` of ``patch * F`` values
    (18 for 3 days of 6 features instead of the conv's 64 outputs). The conv's output is never
    built: its forward, its backward and ``d_gi @ W_ih`` of the GRU's input gradient go away;
    the folded weight's gradient is ``d_gi^T p`` and autograd carries it back to ``W_ih``,
    ``b_ih`` and the conv's parameters. Same function and parameters; values differ from the
    unfolded order of operations by float rounding only (tested).
    """
    if not (isinstance(gru, FusedGRU) and gru._fused_ok(x)):
        y = patch(x)
        return gru(y if h is None else h + y)
    _check_sequence(x, patch.in_features, patch.patch)
    xk = _keep_recent_multiple(x, patch.patch)  # [N, P * patch, F]
    n_rows, n_days, n_feat = xk.shape
    xp = xk.reshape(n_rows, n_days // patch.patch, patch.patch * n_feat)  # [N, P, patch * F]
    w_patch, b_patch = _patch_map(patch)
    w_fold = gru.weight_ih_l0 @ w_patch  # [3H, patch * F]
    b_fold = torch.addmv(gru.bias_ih_l0, gru.weight_ih_l0, b_patch)
    h0 = x.new_zeros(n_rows, gru.hidden_size)
    if h is None:
        out, last = _recurrence(xp, h0, w_fold, b_fold, gru.weight_hh_l0, gru.bias_hh_l0,
                                states=states)
    else:
        out, last = _recurrence(h, h0, gru.weight_ih_l0, b_fold, gru.weight_hh_l0,
                                gru.bias_hh_l0, xp, w_fold, states=states)
    return out, last.unsqueeze(0)


def use_fused_gru(net: nn.Module) -> nn.Module:
    """Replace every plain ``nn.GRU`` inside ``net`` by a :class:`FusedGRU` with the same
    weights (in place); returns ``net``."""
    return replace_plain_grus(net, FusedGRU)


__all__ = ["FusedGRU", "extension_error", "load_extension", "patch_gru", "use_fused_gru"]
