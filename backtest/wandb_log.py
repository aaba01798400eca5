"""Optional: log a backtest to Weights & Biases (offline by default) as tables and images.

Logged: every non-daily table as a ``wandb.Table`` under ``backtest/<name>``, each PNG as
``plots/<name>``, headline scalars (Rank IC at the main horizon in the first universe,
top-group annualized excess) in the run summary. ``wandb sync <dir>/wandb/offline-run-*``
uploads an offline run later.
"""

from __future__ import annotations

from pathlib import Path

from backtest.analysis import AnalysisResult
from backtest.report import DAILY_TABLES


def log_to_wandb(result: AnalysisResult, written: dict[str, Path], project: str,
                 mode: str = "offline", directory: str = "runs") -> str:
    """Create a run, log tables / images / headline numbers, finish; returns the run dir."""
    import wandb

    Path(directory).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project, mode=mode, dir=directory, job_type="backtest",
                     config={"universes": result.universes,
                             "horizons": list(result.config.horizons),
                             "fee": result.config.fee})
    try:
        payload = {}
        for name, df in result.tables.items():
            if name in DAILY_TABLES or df.is_empty():
                continue
            payload[f"backtest/{name}"] = wandb.Table(columns=df.columns,
                                                      data=[list(r) for r in df.iter_rows()])
        for key, path in written.items():
            if key.startswith("plot:"):
                payload[f"plots/{path.stem}"] = wandb.Image(str(path))
        run.log(payload)
        run.summary.update(headline(result))
        return str(run.dir)
    finally:
        run.finish()


def headline(result: AnalysisResult) -> dict[str, float]:
    """``<factor>/rank_ic``, ``<factor>/rank_icir``, ``<factor>/top_ann_excess``."""
    out: dict[str, float] = {}
    t, first, h = result.tables, result.universes[0], result.config.main_horizon
    if "ic_summary" in t:
        for row in t["ic_summary"].iter_rows(named=True):
            if row["metric"] == "rank_ic" and row["universe"] == first and row["horizon"] == h:
                out[f"{row['factor']}/rank_ic"] = row["mean"]
                out[f"{row['factor']}/rank_icir"] = row["icir"]
    if "groups_summary" in t:
        for row in t["groups_summary"].iter_rows(named=True):
            if row["universe"] == first:
                out[f"{row['factor']}/top_ann_excess"] = row["top_ann_excess"]
    return out
