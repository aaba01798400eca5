"""End of a rolling experiment: stitch, ensemble, score per year, print and save a summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from cli.cell import Cell
from cli.stitch import write_experiment
from market.returns import daily_rank_ic


def _labels(fit_args: list[str], cell: Cell):  # -> (dates, codes, labels [D, S])
    from main import cli_main

    cli = cli_main([*fit_args, *cell.fit_args(), "--trainer.logger=false"], run=False)
    cli.datamodule.setup("fit")
    dm = cli.datamodule
    return dm.panel.dates, dm.panel.codes, dm.labels, dm.market.key()


def _dense(df: pl.DataFrame, col: str, dates: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = np.full((len(dates), len(codes)), np.nan)
    di = np.searchsorted(dates, df["date"].to_numpy().astype("datetime64[D]"))
    si = np.searchsorted(codes, df["code"].to_numpy().astype(str))
    out[di, si] = df[col].to_numpy()
    return out


def _yearly_rank_ic(factor: pl.DataFrame, dates: np.ndarray, codes: np.ndarray,
                    labels: np.ndarray) -> dict[str, dict[str, float]]:
    cols = [c for c in factor.columns if c.startswith("score")]
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    out: dict[str, dict[str, float]] = {}
    for col in cols:
        ic = daily_rank_ic(_dense(factor, col, dates, codes), labels)
        for year in np.unique(years[np.isfinite(ic)]):
            v = ic[(years == year) & np.isfinite(ic)]
            out.setdefault(str(year), {})[col] = float(v.mean())
        v = ic[np.isfinite(ic)]
        out.setdefault("all", {})[col] = float(v.mean())
        out.setdefault("all_icir", {})[col] = float(v.mean() / v.std(ddof=1))
    return out


def experiment_summary(root: Path, cells: list[Cell], results: list[dict],
                       fit_args: list[str], seeds: list[int], console: Console) -> dict:
    """Stitch every seed's windows, write the ensemble factor, print the summary table."""
    dates, codes, labels, data_key = _labels(fit_args, cells[0])
    files = {s: [Path(r["factor"]) for r in results if r["seed"] == s] for s in seeds}
    meta = {"experiment": root.name, "fit_args": fit_args, "data": data_key,
            "test_years": sorted({c.year for c in cells})}
    path = write_experiment(root, files, dates, meta)
    ic = _yearly_rank_ic(pl.read_parquet(path), dates, codes, labels)
    table = Table(title=f"rolling experiment {root.name}: test Rank IC vs the training label")
    for col in ("window", "seed", "best epoch", "val rank_ic", "test rank_ic", "test icir"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r["year"]), str(r["seed"]), str(r["best_epoch"]),
                      f"{r['best_val_rank_ic']:.4f}", f"{r.get('test/rank_ic', float('nan')):.4f}",
                      f"{r.get('test/rank_icir', float('nan')):.3f}")
    for year in sorted(k for k in ic if k.isdigit()):
        table.add_row(year, "ensemble", "", "", f"{ic[year]['score']:.4f}", "")
    table.add_row("all", "ensemble", "", "", f"{ic['all']['score']:.4f}",
                  f"{ic['all_icir']['score']:.3f}")
    console.print(table)
    summary = {"factor": str(path), "cells": results, "rank_ic": ic}
    tmp = root / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str))
    tmp.replace(root / "summary.json")
    console.print(f"experiment factor: {path}  (per seed: {root}/factor_seed<k>.parquet)")
    return summary
