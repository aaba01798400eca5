"""Train-step speed: GRU / DecompGRU on one full-market day, against a plain fp32 reference.

``python benchmarks/bench_train_step.py [--stocks 4000] [--window 150] [--hidden 64]
[--models gru decompgru] [--variants ...] [--rounds 3] [--steps 5]``

``python benchmarks/bench_train_step.py --scaling [--variants ref] [--grid-stocks 1000 2000
4000] [--grid-windows 60 150 250]``: the planning table (step time, epoch time, peak memory).

One step = forward + IC loss + backward + Adam step on one day's cross-section
``[N, window, 6]`` (random inputs: the arithmetic does not depend on the values). Variants:

- ``ref``: the reference, plain fp32 ``nn.GRU`` nets (the framework's nets are asserted
  to be built from ``nn.GRU``; every variant but ``fused+alloc`` runs with the compiled
  kernels switched off, ``DEEPFACTOR_FUSED_GRU=0``), glibc's default allocator settings,
  and DecompGRU's
  size-group de-mean in its plain form (``h - means[groups]``, kept in
  ``bench_group_demean.py``; the framework's ``group_demean`` has a faster backward);
- ``bf16``: the same under ``torch.autocast("cpu", torch.bfloat16)``, which is what
  ``--trainer.precision=bf16-mixed`` does on a CPU;
- ``alloc``: fp32 with glibc malloc tuned to keep freed blocks (``cli.runtime.tune_malloc``,
  which ``main.py`` applies; large temporary tensors otherwise page-fault on every
  allocation);
- ``bf16+alloc``: both;
- ``scan+alloc``: fp32 with the nets' ``nn.GRU`` replaced by ``ScanGRU`` (hand-written
  backward through time, ``lightning_modules/components/fast_gru.py``) and malloc tuning;
- ``fused+alloc``: what ``main.py`` trains with by default: ``FusedGRU`` (compiled
  cache-blocked recurrence, patch convs folded into the GRU input projections, compiled
  group de-mean; ``lightning_modules/components/fused_gru.py``) and malloc tuning.

Each variant runs in its own subprocess (allocator settings are per process);
the variants are interleaved over ``--rounds`` rounds so machine noise hits all of them, and
each figure is the median over rounds of the per-process median step time, after two warm-up
steps. Ratios are against ``ref`` measured in the same run. It also measures this CPU's
dense fp32 and bf16 matmul throughput (4096^3) and reports the rate of the GRU matmul FLOPs
each variant performs (``gru_flops``) as a fraction of both peaks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# variant -> (bf16 autocast, malloc tuning, GRU implementation replacing nn.GRU)
VARIANTS = {"ref": (False, False, None), "bf16": (True, False, None),
            "alloc": (False, True, None), "bf16+alloc": (True, True, None),
            "scan+alloc": (False, True, "scan"), "fused+alloc": (False, True, "fused")}


def _net(model: str, hidden: int):
    from torch import nn

    from lightning_modules.components import GRU, DecompGRU

    net = GRU(hidden=hidden) if model == "gru" else DecompGRU(hidden=hidden)
    grus = [m for m in net.modules() if isinstance(m, nn.GRU)]
    assert grus and all(type(m) is nn.GRU for m in grus), "reference must use plain nn.GRU"
    return net


def gru_flops(model: str, n: int, window: int, hidden: int, patch: int = 3,
              n_features: int = 6, fused: bool = False) -> float:
    """Multiply-add FLOPs (x2) of one train step's GRU matmuls as the variant performs them.

    Unfused (``nn.GRU``, ``ScanGRU``): per GRU the input and hidden projections forward and
    twice backward (input gradient and weight gradient), inputs of width ``hidden``.
    Fused: the patch convs are folded into the projections (``patch * n_features`` wide
    inputs, no input gradient for the raw data), DecompGRU's second GRU reads the de-meaned
    trend (width ``hidden``, with its input gradient) plus the folded residual patches.
    """
    steps = window // patch
    mm = 2 * n * steps * 3 * hidden  # FLOPs per input width of one projection [N*P, 3H]
    hidden_side = 3 * mm * hidden  # forward, state gradient, weight gradient
    if not fused:
        return (hidden_side + 3 * mm * hidden) * (1 if model == "gru" else 2)
    folded = 2 * mm * patch * n_features  # forward and weight gradient
    if model == "gru":
        return hidden_side + folded
    return 2 * hidden_side + folded + 3 * mm * hidden + folded


def worker(args: argparse.Namespace) -> None:
    import torch

    from lightning_modules.losses import ICLoss

    if VARIANTS[args.variant][1]:
        from cli.runtime import tune_malloc

        assert tune_malloc(), "mallopt refused the settings"
    if args.variant == "ref":  # the plain de-mean the framework used before (see below)
        import lightning_modules.components.decompgru as decompgru_module
        from bench_group_demean import reference

        decompgru_module.group_demean = reference
    torch.manual_seed(0)
    net = _net(args.model, args.hidden)
    if VARIANTS[args.variant][2] == "scan":
        from lightning_modules.components.fast_gru import use_scan_gru

        use_scan_gru(net)
    elif VARIANTS[args.variant][2] == "fused":
        from lightning_modules.components.fused_gru import extension_error, use_fused_gru

        use_fused_gru(net)
        x0 = torch.randn(2, 3, net.gru.input_size)
        assert net.gru._fused_ok(x0), f"fused GRU kernel unavailable: {extension_error()}"
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = ICLoss()
    x = torch.randn(args.stocks, args.window, 6)
    y = torch.randn(args.stocks)
    groups = torch.randint(0, 5, (args.stocks,))
    bf16 = VARIANTS[args.variant][0]
    times = []
    for i in range(args.steps + 2):
        t0 = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            score = net(x, groups)
        loss = loss_fn(score.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_s": statistics.median(times), "loss": float(loss),
                      "peak_mb": peak_mb}))


def matmul_peak() -> dict[str, float]:
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(4096, 4096).to(dtype)
        b = torch.randn(4096, 4096).to(dtype)
        a @ b
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        out[name] = 2 * 4096 ** 3 / best / 1e9
    return out


def run_variant(model: str, variant: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "DEEPFACTOR_MALLOC_TUNING": "1"}
    if VARIANTS[variant][2] != "fused":  # no compiled kernel at all (decomposition included)
        env["DEEPFACTOR_FUSED_GRU"] = "0"
    cmd = [sys.executable, __file__, "--worker", "--model", model, "--variant", variant,
           "--stocks", str(args.stocks), "--window", str(args.window),
           "--hidden", str(args.hidden), "--steps", str(args.steps)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    if res.returncode:
        raise RuntimeError(f"{model}/{variant} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stocks", type=int, default=4000)
    p.add_argument("--window", type=int, default=150)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--models", nargs="+", default=["gru", "decompgru"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--scaling", action="store_true",
                   help="table of step time / epoch time / peak memory over --grid-stocks x "
                        "--grid-windows for --variants (one process each)")
    p.add_argument("--grid-stocks", nargs="+", type=int, default=[1000, 2000, 4000])
    p.add_argument("--grid-windows", nargs="+", type=int, default=[60, 150, 250])
    p.add_argument("--epoch-days", type=int, default=1500,
                   help="training days per epoch for the epoch-time column")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.worker:
        worker(args)
        return
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"N={args.stocks} window={args.window} hidden={args.hidden}")
    if args.scaling:
        scaling(args)
        return
    peak = matmul_peak()
    print(f"matmul 4096^3: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s")
    for model in args.models:
        samples: dict[str, list[float]] = {v: [] for v in args.variants}
        for _ in range(args.rounds):
            for variant in args.variants:
                samples[variant].append(run_variant(model, variant, args)["median_s"])
        ref = statistics.median(samples["ref"]) if "ref" in samples else None
        for variant, values in samples.items():
            sec = statistics.median(values)
            flops = gru_flops(model, args.stocks, args.window, args.hidden,
                              fused=VARIANTS[variant][2] == "fused")
            rate = flops / sec / 1e9
            ratio = f"{ref / sec:5.2f}x vs ref" if ref else ""
            print(f"{model:10s} {variant:11s} {sec * 1000:8.1f} ms/step  {ratio}  "
                  f"GRU matmuls {flops / 1e9:4.1f} GFLOP at {rate:5.1f} GFLOP/s = "
                  f"{rate / peak['fp32']:.0%} of fp32 / {rate / peak['bf16']:.0%} of bf16 peak")


def scaling(args: argparse.Namespace) -> None:
    """Markdown table: per model, window and universe size, the step time, the epoch time
    (``--epoch-days`` steps; validation not included) and the process's peak RSS."""
    print(f"| model | variant | stocks | window | s/step | min/epoch ({args.epoch_days} days) "
          "| peak RSS (GB) |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        for window in args.grid_windows:
            for stocks in args.grid_stocks:
                for variant in args.variants:
                    sub = argparse.Namespace(**{**vars(args), "stocks": stocks,
                                                "window": window})
                    res = run_variant(model, variant, sub)
                    print(f"| {model} | {variant} | {stocks} | {window} | "
                          f"{res['median_s']:.3f} | {res['median_s'] * args.epoch_days / 60:.1f} "
                          f"| {res['peak_mb'] / 1024:.2f} |", flush=True)


if __name__ == "__main__":
    main()
