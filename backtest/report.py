"""Write an analysis: ``report.html`` (self-contained), ``results.json``, parquet tables, PNGs.

Output directory layout::

    out/report.html          tables + embedded figures, opens offline
    out/results.json         run facts, timings and every non-daily table as records
    out/tables/<name>.parquet every table, long form (daily series included)
    out/plots/<name>.png      the figures (names in backtest.plots)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from backtest import html, plots
from backtest.analysis import AnalysisResult

DAILY_TABLES = ("ic_daily", "groups_daily", "topk_daily")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, dates -> ISO strings, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def make_plots(result: AnalysisResult, out: Path) -> list[Path]:
    """Every figure whose tables exist; returns the PNG paths in report order."""
    out.mkdir(parents=True, exist_ok=True)
    t, cfg = result.tables, result.config
    first = result.universes[0]
    paths: list[Path] = []
    if "ic_daily" in t:
        paths.append(plots.cumulative_ic(t["ic_daily"], first, cfg.main_horizon, out))
    if "ic_decay" in t and not t["ic_decay"].is_empty():
        paths.append(plots.ic_decay(t["ic_decay"], out))
    if "groups_annual" in t:
        paths.extend(plots.group_returns(t["groups_annual"], u, out) for u in result.universes)
        paths.append(plots.top_group_excess(t["groups_daily"], out))
        paths.append(plots.yearly_excess(t["groups_yearly"], first, out))
    if "topk_daily" in t:
        paths.append(plots.topk_excess(t["topk_daily"], out))
    if "factor_correlation" in t:
        paths.append(plots.heatmap(t["factor_correlation"], "factor", out,
                                   "factor_correlation.png", "Mean daily rank correlation"))
    if "style_exposure" in t:
        wide = t["style_exposure"].pivot(on="style", index="factor", values="exposure")
        paths.append(plots.heatmap(wide, "factor", out, "style_exposure.png",
                                   "Style exposure (mean daily rank correlation)"))
    return paths


def write_report(result: AnalysisResult, out_dir: str | Path,
                 facts: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write every output; returns name -> path (``html``, ``json``, tables, plots)."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, df in result.tables.items():
        path = out / "tables" / f"{name}.parquet"
        df.write_parquet(path)
        written[name] = path
    images = make_plots(result, out / "plots")
    header = {"created": time.strftime("%Y-%m-%d %H:%M:%S"), **(facts or {}),
              "universes": ", ".join(result.universes),
              "fee (round trip)": result.config.fee,
              "seconds": round(sum(result.timings.values()), 2)}
    page = html.render("Factor backtest report", header,
                       html.views(result.tables, result.config.main_horizon), images)
    (out / "report.html").write_text(page, encoding="utf-8")
    summary = {"facts": header, "config": asdict(result.config), "timings_s": result.timings,
               "tables": {n: df.to_dicts() for n, df in result.tables.items()
                          if n not in DAILY_TABLES},
               "files": {"tables": sorted(p.name for p in (out / "tables").iterdir()),
                         "plots": [p.name for p in images]}}
    (out / "results.json").write_text(json.dumps(_clean(summary), indent=1, allow_nan=False),
                                      encoding="utf-8")
    written.update({"html": out / "report.html", "json": out / "results.json"})
    written.update({f"plot:{p.stem}": p for p in images})
    return written
