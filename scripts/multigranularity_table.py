"""Table of scripts/multigranularity_synthetic.sh's runs (docs/multigranularity.md).

``python scripts/multigranularity_table.py [--out-dir runs/multigranularity] [--seeds 0]``

For each model (each run's exported factor) and each output ensemble: test Rank IC per
seed = mean over test days of the Spearman correlation with the training label (the
neutralized, z-scored 10-day return of a ``MultiGranularityDataModule(window=60)`` on the
same 300-stock synthetic market, over its eligible stocks: the CLI's ``test/rank_ic``),
mean ICIR, and the mean daily rank correlation with the intraday part and with the
daily-visible part (all minus intraday) of the planted oracle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ["gru_daily_mse", "bi_agru_daily_mse", "gru_60min_mse", "gru_30min_mse",
          "mixed_gru_mse", "mixed_bi_agru_mse", "mgrl_mse"]
ENSEMBLES = ["ensemble_all3", "ensemble_daily_30min"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default="runs/multigranularity", type=Path)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--models", nargs="+", default=[*MODELS, *ENSEMBLES, "oracle"])
    args = p.parse_args()
    from cli.rolling_report import _dense
    from datamodules.multigranularity import MultiGranularityDataModule
    from market.returns import daily_rank_ic
    from market.sources import SyntheticMarket
    from market.synthetic import generate_market, oracle_scores

    source = SyntheticMarket(n_stocks=300)
    dm = MultiGranularityDataModule(market=source, window=60, intraday_days=10,
                                    label_transform="zscore")
    dm.setup("fit")
    test = dm.splits["test"].days
    mask = np.zeros_like(dm.eligible)
    mask[test] = dm.eligible[test]
    gen = generate_market(n_stocks=300, n_days=source.n_days, seed=source.seed,
                          start=source.first_day)
    oracle_all, oracle_intra = oracle_scores(gen, "all"), oracle_scores(gen, "intraday")
    parts = {"intraday": oracle_intra, "daily-visible": oracle_all - oracle_intra}

    def dense(path: Path) -> np.ndarray:
        return _dense(pl.read_parquet(path), "score", dm.panel.dates, dm.panel.codes)

    def files(name: str, seed: int) -> Path:
        if name in ENSEMBLES:
            return args.out_dir / f"{name}_seed{seed}.parquet"
        return next((args.out_dir / name / f"seed{seed}" / "runs" / "factors").glob("*.parquet"))

    seeds = " | ".join(f"seed {s}" for s in args.seeds)
    print(f"| model | {seeds} | mean Rank IC | mean ICIR | rank corr. with the intraday / "
          "daily-visible oracle |")
    print("|---|" + "---|" * (len(args.seeds) + 3))
    for name in args.models:
        ics, irs, corr = [], [], {k: [] for k in parts}
        for seed in args.seeds:
            score = oracle_all if name == "oracle" else dense(files(name, seed))
            ic = daily_rank_ic(score, dm.labels, mask)
            ic = ic[np.isfinite(ic)]
            ics.append(ic.mean())
            irs.append(ic.mean() / ic.std(ddof=1))
            for k, part in parts.items():
                c = daily_rank_ic(score, part, mask)
                corr[k].append(np.nanmean(c))
        per_seed = " | ".join(f"{v:.3f}" for v in ics)
        print(f"| {name} | {per_seed} | {np.mean(ics):.3f} | {np.mean(irs):.2f} | "
              f"{np.mean(corr['intraday']):.2f} / {np.mean(corr['daily-visible']):.2f} |")


if __name__ == "__main__":
    main()
