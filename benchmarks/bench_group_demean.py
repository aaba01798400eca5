"""DecompGRU's size-group de-mean, forward + backward, against its previous formulation.

``python benchmarks/bench_group_demean.py [--stocks 4000] [--steps 50] [--hidden 64]
[--rounds 7]``

Reference (kept here): ``h - means[groups]`` with the masking ``torch.where`` copy always
made; its backward is an accumulating ``index_put`` (serial on CPU). Current:
``lightning_modules.components.layers.group_demean`` (``index_select``, whose backward is
an ``index_add``; no copy without a mask). Prints the median times, the ratio measured in
the same run, and the largest difference of outputs and input gradients.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cli.runtime import tune_malloc
from lightning_modules.components.layers import group_demean


def reference(h: torch.Tensor, groups: torch.Tensor | None = None,
              n_groups: int | None = None, inplace: bool = False) -> torch.Tensor:
    """The previous ``group_demean`` (no mask), also the train-step reference's de-mean.
    ``inplace`` (the framework's evaluation-only option) is accepted and ignored: always a
    new tensor."""
    n = h.shape[0]
    if groups is None:
        groups, n_groups = torch.zeros(n, dtype=torch.long), 1
    n_groups = int(groups.max()) + 1 if n_groups is None else n_groups
    flat = h.reshape(n, -1)
    weight = torch.ones(n, dtype=h.dtype)
    valid_flat = torch.where(weight[:, None] > 0, flat, torch.zeros_like(flat))
    sums = flat.new_zeros(n_groups, flat.shape[1]).index_add(0, groups, valid_flat)
    counts = weight.new_zeros(n_groups).index_add(0, groups, weight)
    means = sums / counts.clamp_min(1.0)[:, None]
    return (flat - means[groups]).reshape(h.shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stocks", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    tune_malloc()  # as main.py runs
    torch.manual_seed(0)
    h0 = torch.randn(args.stocks, args.steps, args.hidden)
    groups = torch.randint(0, 5, (args.stocks,))
    grad = torch.randn_like(h0)
    fns = {"reference": lambda h: reference(h, groups, 5),
           "current": lambda h: group_demean(h, groups, n_groups=5)}
    times: dict[str, list[float]] = {k: [] for k in fns}
    outs = {}
    for _ in range(args.rounds):  # interleaved
        for name, fn in fns.items():
            h = h0.clone().requires_grad_()
            t0 = time.perf_counter()
            out = fn(h)
            out.backward(grad)
            times[name].append(time.perf_counter() - t0)
            outs[name] = (out.detach(), h.grad)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name in fns:
        print(f"{name:10s} {med[name] * 1000:7.1f} ms (forward + backward, median of "
              f"{args.rounds})")
    print(f"ratio reference / current: {med['reference'] / med['current']:.2f}x")
    print(f"max |output difference| {(outs['reference'][0] - outs['current'][0]).abs().max():.3g}, "
          f"max |gradient difference| {(outs['reference'][1] - outs['current'][1]).abs().max():.3g}")


if __name__ == "__main__":
    main()
