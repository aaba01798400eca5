"""Inference/export speed: score and write a whole test year for the full market.

``python benchmarks/bench_inference.py [--data auto|cn_shared|synthetic] [--year 2019]
[--model decompgru|gru] [--variants torch:32-true torch:bf16-mixed fused:32-true]
[--threads 0]``

Times ``trainer.test`` on the test year with ``FactorWriter`` attached, which is what the
CLI runs after fit: every test day's batch (all eligible stocks, about 3,300-3,600 a day on
``../shared/data``; 4,000 on the synthetic market), the net's forward pass, the daily
IC / Rank IC and the parquet export. The net is untrained (speed does not depend on the
weights). DataModule setup is excluded (bench_data.py times it). glibc malloc is tuned as
``main.py`` tunes it unless ``--no-malloc-tuning``. A variant is ``gru_kernel:precision``:
``torch`` = plain ``nn.GRU`` (``FactorModule(gru_kernel="torch")``; the compiled group
de-mean and decomposition, a few ms a day, still run: all variants share one process),
``fused`` = the compiled recurrence (the default; under bf16 autocast it runs ``nn.GRU``). Each variant is timed
after one warm-up day; the reference is ``torch:32-true`` in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="auto", choices=["auto", "cn_shared", "synthetic"])
    p.add_argument("--cache-dir", default=".cache/panels")
    p.add_argument("--year", type=int, default=None)
    p.add_argument("--synthetic-stocks", type=int, default=4000,
                   help="stocks of the synthetic market (about 72%% are eligible on a day: "
                        "5,600 give ~4,000 a day)")
    p.add_argument("--model", default="decompgru", choices=["decompgru", "gru"])
    p.add_argument("--variants", nargs="+",
                   default=["torch:32-true", "torch:bf16-mixed", "fused:32-true"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--limit-days", type=int, default=None, help="score only the first days")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="skip cli.runtime.tune_malloc (main.py applies it)")
    args = p.parse_args()
    import lightning as L
    import polars as pl
    import torch

    from callbacks import FactorWriter
    from datamodules import CrossSectionalDataModule
    from lightning_modules import FactorModule
    from lightning_modules.components import GRU, DecompGRU
    from lightning_modules.losses import ICLoss
    from market.cn_shared import default_cn_shared_root
    from market.sources import CNSharedMarket, SyntheticMarket

    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.no_malloc_tuning:
        from cli.runtime import tune_malloc

        tune_malloc()  # as main.py does
    use_cn = args.data == "cn_shared" or (args.data == "auto" and default_cn_shared_root())
    market = CNSharedMarket() if use_cn else SyntheticMarket(n_stocks=args.synthetic_stocks, n_days=2500)
    year = args.year or (2019 if use_cn else 2023)
    dm = CrossSectionalDataModule(market=market, cache_dir=args.cache_dir,
                                  val_start=f"{year - 1}-01-01", test_start=f"{year}-01-01",
                                  test_end=f"{year}-12-31")
    dm.setup("fit")
    test = dm.splits["test"].days
    print(f"{market.key()}: test year {year}, {len(test)} days, "
          f"{int(dm.eligible[test].sum())} stock-days "
          f"({dm.eligible[test].sum(axis=1).mean():.0f} stocks a day)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            kernel, precision = variant.split(":")
            torch.manual_seed(0)
            net = DecompGRU() if args.model == "decompgru" else GRU()
            module = FactorModule(net=net, loss=ICLoss(), gru_kernel=kernel)
            writer = FactorWriter(dirpath=tmp, filename=f"{kernel}_{precision}.parquet")
            trainer = L.Trainer(accelerator="cpu", precision=precision, logger=False,
                                enable_progress_bar=False, enable_model_summary=False,
                                callbacks=[writer], limit_test_batches=args.limit_days)
            L.Trainer(accelerator="cpu", precision=precision, logger=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      limit_test_batches=1).test(module, datamodule=dm, verbose=False)
            t0 = time.perf_counter()
            trainer.test(module, datamodule=dm, verbose=False)
            results[variant] = time.perf_counter() - t0
            factor = pl.read_parquet(writer.last_path)
            ref = results.get("torch:32-true")
            ratio = f", {ref / results[variant]:.2f}x vs torch:32-true" if ref else ""
            print(f"{args.model} {variant}: {results[variant]:.1f} s for the year "
                  f"({factor.height} rows exported; target < 30 s){ratio}")


if __name__ == "__main__":
    main()
