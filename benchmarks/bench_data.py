"""Data speed: panel from cache, one day's batch, and whether loading starves the step.

``python benchmarks/bench_data.py [--data cn_shared|synthetic] [--cache-dir .cache/panels]
[--days 30] [--threads 2] [--no-malloc-tuning]``

Measures, on ``../shared/data`` (default when present; all 10 years, all stocks) or the
synthetic market with 4,000 stocks:

1. ``load_panel`` from the memory-mapped cache (and the first build, if the cache is empty);
   ``CrossSectionalDataModule.setup`` (features, eligibility, labels, splits, normalizer);
2. the median time to assemble one test day's batch (``DayDataset[i]``: windows
   ``[N, 150, 6]`` gathered, scaled, normalized; labels, mask, size groups) over ``--days``
   days of the test year, with N = every eligible stock (about 3,300-3,600 on real data),
   next to the reference (the plain per-feature numpy path kept below), and its windows
   alone next to the unfused path (``normalizer.transform(raw_windows(...))``, the batch
   path before the fused one), interleaved day by day. The batch is checked against the
   reference to float rounding (the reference divides by sigma, the batch path multiplies
   by 1 / sigma) and against the unfused path bit for bit;
3. a DecompGRU train step (fused GRU kernel, as FactorModule trains) on such a batch with and
   without the batch assembly in the loop
   (the DataLoader runs in the main process: ``num_workers=0``).

glibc malloc is tuned as ``main.py`` tunes it (``cli.runtime.tune_malloc``) unless
``--no-malloc-tuning``: without it every ~12 MB batch is a fresh ``mmap`` that page-faults.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def reference_batch(dm, day_major: np.ndarray, day: int, stocks: np.ndarray) -> np.ndarray:
    """The straightforward path: day-major gather, per-feature scaling, normalizer."""
    block = day_major[day - dm.window + 1:day + 1]
    win = np.ascontiguousarray(block[:, stocks].transpose(1, 0, 2))
    close = win[:, -1, dm.features.index("close")][:, None].copy()
    for k, name in enumerate(dm.features):
        win[..., k] /= close if name in ("open", "high", "low", "close", "vwap") \
            else win[:, -1, k][:, None]
    norm = dm.normalizer
    win = np.clip((win - norm.median) / norm.sigma, -norm.clip, norm.clip)
    return np.nan_to_num(win, nan=0.0)


def reference_size_groups(log_mcap: np.ndarray, groups: int) -> np.ndarray:
    order = np.argsort(np.argsort(log_mcap, kind="stable"), kind="stable")
    return order * groups // max(len(log_mcap), 1)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="auto", choices=["auto", "cn_shared", "synthetic"])
    p.add_argument("--cache-dir", default=".cache/panels")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="skip cli.runtime.tune_malloc (main.py applies it)")
    args = p.parse_args()
    if not args.no_malloc_tuning:
        from cli.runtime import tune_malloc

        tune_malloc()  # as main.py does
    import torch

    from datamodules import CrossSectionalDataModule
    from lightning_modules.components import DecompGRU
    from lightning_modules.components.fused_gru import use_fused_gru
    from lightning_modules.losses import ICLoss
    from market.cn_shared import default_cn_shared_root
    from market.sources import CNSharedMarket, SyntheticMarket, cache_path, load_panel

    if args.threads:
        torch.set_num_threads(args.threads)
    use_cn = args.data == "cn_shared" or (args.data == "auto" and default_cn_shared_root())
    market = CNSharedMarket() if use_cn else SyntheticMarket(n_stocks=4000, n_days=2500)
    dates = ("2018-01-01", "2019-01-01") if use_cn else ("2023-01-01", "2024-01-01")
    cached = (cache_path(market, args.cache_dir) / "meta.json").exists()
    t0 = time.perf_counter()
    panel = load_panel(market, args.cache_dir)
    first = time.perf_counter() - t0
    if not cached:
        print(f"first build of the panel cache: {first:.1f} s")
    load = median_time(lambda: load_panel(market, args.cache_dir), 3)
    print(f"market {market.key()}: {len(panel.dates)} days x {len(panel.codes)} stocks; "
          f"panel from cache {load:.2f} s (median of 3)")
    dm = CrossSectionalDataModule(market=market, cache_dir=args.cache_dir,
                                  val_start=dates[0], test_start=dates[1])
    t0 = time.perf_counter()
    dm.setup("fit")
    print(f"DataModule.setup (features, eligibility, labels, splits, normalizer): "
          f"{time.perf_counter() - t0:.1f} s")
    ds = dm.test_dataloader().dataset
    day_major = np.ascontiguousarray(dm.inputs.transpose(1, 0, 2))  # the reference layout
    picks = np.linspace(0, len(ds) - 1, args.days).round().astype(int)
    sizes = [len(ds[int(i)]["y"]) for i in picks[:3]]
    it = iter(picks.tolist() * 3)
    ours = median_time(lambda: ds[next(it)], len(picks))

    def ref_once(i=iter(picks.tolist() * 3)):
        day = int(dm.splits["test"].days[next(i)])
        stocks = np.nonzero(dm.eligible[day])[0]
        reference_batch(dm, day_major, day, stocks)
        reference_size_groups(dm.log_mcap[day, stocks], dm.n_size_groups)

    ref = median_time(ref_once, len(picks))
    print(f"one day's batch, N = {sizes} stocks x {dm.window} days x {len(dm.features)} "
          f"features: {ours * 1e3:.1f} ms median (reference path {ref * 1e3:.1f} ms, "
          f"{ref / ours:.1f}x)")
    fused, unfused_times = [], []  # the windows alone, interleaved day by day
    for i in picks.tolist() * 2:
        day = int(dm.splits["test"].days[i])
        stocks = np.nonzero(dm.eligible[day])[0]
        t0 = time.perf_counter()
        dm.windows(day, stocks)
        t1 = time.perf_counter()
        dm.normalizer.transform(dm.raw_windows(day, stocks), count=False)
        fused.append(t1 - t0)
        unfused_times.append(time.perf_counter() - t1)
    a, b = statistics.median(fused), statistics.median(unfused_times)
    print(f"  its windows: {a * 1e3:.1f} ms median, the unfused path (raw_windows + "
          f"normalizer.transform) {b * 1e3:.1f} ms, {b / a:.1f}x")
    day = int(dm.splits["test"].days[picks[0]])
    stocks = np.nonzero(dm.eligible[day])[0]
    batch = ds[int(picks[0])]
    np.testing.assert_allclose(batch["x"].numpy(), reference_batch(dm, day_major, day, stocks),
                               atol=1e-5)
    unfused, _ = dm.normalizer.transform(dm.raw_windows(day, stocks))
    np.testing.assert_array_equal(batch["x"].numpy(), unfused)  # bit for bit
    np.testing.assert_array_equal(batch["size_group"].numpy(), reference_size_groups(
        dm.log_mcap[day, stocks], dm.n_size_groups))

    net, loss_fn = use_fused_gru(DecompGRU()), ICLoss()  # as FactorModule trains it
    opt = torch.optim.Adam(net.parameters())
    batch = ds[int(picks[0])]

    def step(b) -> None:
        loss = loss_fn(net(b["x"], b["size_group"]), b["y"], b["mask"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(batch)
    cached_step = median_time(lambda: step(batch), 5)
    it2 = iter(picks.tolist() * 3)
    loaded_step = median_time(lambda: step(ds[next(it2)]), 5)
    print(f"DecompGRU train step: {cached_step:.3f} s with a ready batch, {loaded_step:.3f} s "
          f"assembling each batch in the loop ({loaded_step / cached_step - 1:+.1%})")


if __name__ == "__main__":
    main()
