"""Performance table of an enhancement run, overall and per calendar year, and its HTML section.

Definitions (daily excess ``e = r_p - r_b``, compounded into an excess NAV; see
``backtest.metrics``): annualized excess return (geometric, 252 days), tracking error
``std(e) sqrt(252)``, information ratio ``mean(e) / std(e) sqrt(252)``, excess max
drawdown (of the excess NAV, a negative fraction), Calmar ``annualized excess /
|excess max drawdown|``, monthly win rate (share of calendar months whose compounded
excess is > 0), average turnover per rebalance (one-sided ``0.5 Σ|w - w⁰|`` and
two-sided ``Σ|w - w⁰|``, the first build from cash excluded), costs paid per year.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl

from backtest.enhance.simulate import EnhanceResult
from backtest.metrics import annualized_return, annualized_volatility, max_drawdown, sharpe_ratio

PERCENT_COLUMNS = ("port_return", "bench_return", "ann_excess", "tracking_error",
                   "excess_max_drawdown", "monthly_win_rate", "turnover_one_sided",
                   "turnover_two_sided", "cost")


def monthly_win_rate(excess: np.ndarray, dates: np.ndarray) -> float:
    """Share of calendar months whose compounded daily excess return is positive."""
    month = np.asarray(dates).astype("datetime64[M]").astype(np.int64)
    _, inv = np.unique(month, return_inverse=True)
    growth = np.exp(np.bincount(inv, np.log1p(np.nan_to_num(excess))))
    return float(np.mean(growth > 1)) if len(growth) else float("nan")


def _row(daily: pl.DataFrame, reb: pl.DataFrame, years: float | None = None) -> dict[str, float]:
    port, bench = daily["port_ret"].to_numpy(), daily["bench_ret"].to_numpy()
    ex = daily["excess_ret"].to_numpy()
    ann_ex, mdd = annualized_return(ex), max_drawdown(ex)
    later = reb.filter(~pl.col("initial"))
    cost = float(reb["cost"].sum()) if reb.height else 0.0
    return {"days": float(daily.height), "port_return": annualized_return(port),
            "bench_return": annualized_return(bench),
            "ann_excess": ann_ex, "tracking_error": annualized_volatility(ex),
            "info_ratio": sharpe_ratio(ex), "excess_max_drawdown": mdd,
            "calmar": ann_ex / abs(mdd) if mdd < 0 else float("nan"),
            "monthly_win_rate": monthly_win_rate(ex, daily["date"].to_numpy()),
            "turnover_one_sided": _mean(later, "turnover_one_sided"),
            "turnover_two_sided": _mean(later, "turnover_two_sided"),
            "cost": cost / years if years else cost, "rebalances": float(reb.height),
            "relaxed": float((reb["step"] != 0).sum()) if reb.height else 0.0}


def _mean(df: pl.DataFrame, col: str) -> float:
    return float(df[col].mean()) if df.height else float("nan")


def performance_table(result: EnhanceResult) -> pl.DataFrame:
    """One row per calendar year plus ``all`` (annualized where the name says so).

    Columns: period, days, port_return, bench_return (annualized), ann_excess, tracking_error,
    info_ratio, excess_max_drawdown, calmar, monthly_win_rate, turnover_one_sided,
    turnover_two_sided (average per rebalance), cost (per year), rebalances, relaxed.
    A year's return figures are annualized over its own days (a partial year too).
    """
    daily = result.daily
    reb = result.rebalances.with_columns(pl.col("trade_date").dt.year().alias("year"))
    years_all = daily.height / 252
    rows = [{"period": "all", **_row(daily, reb, years_all)}]
    for (year,), part in daily.group_by(pl.col("date").dt.year(), maintain_order=True):
        rows.append({"period": str(year), **_row(part, reb.filter(pl.col("year") == year),
                                                  part.height / 252)})
    return pl.DataFrame(rows)


def constraint_summary(result: EnhanceResult) -> pl.DataFrame:
    """Per realized constraint: its bound and the worst value over all rebalances."""
    c, reb = result.constraints, result.rebalances.filter(pl.col("step") >= 0)
    turnover = f"turnover_{c.turnover_kind}"
    rows = [("max |w - b| (tradable stocks)", c.max_deviation, reb["max_deviation"].max()),
            ("constituent weight (min)", c.min_constituent_weight,
             reb["constituent_weight"].min()),
            ("max industry |exposure|", c.industry_bound, reb["max_industry"].max()),
            (f"{turnover} (after the first build)", c.max_turnover,
             reb.filter(~pl.col("initial"))[turnover].max())]
    for col in (x for x in reb.columns if x.startswith("style_")):
        name = col.removeprefix("style_")
        rows.append((f"|{name} exposure|", c.style_band(name), reb[col].abs().max()))
    return pl.DataFrame({"constraint": [r[0] for r in rows],
                         "bound": [r[1] for r in rows],
                         "worst_realized": [r[2] for r in rows]},
                        schema={"constraint": pl.String, "bound": pl.Float64,
                                "worst_realized": pl.Float64})


def _fmt(value: object, percent: bool) -> str:
    if isinstance(value, float):
        if not np.isfinite(value):
            return "-"
        return f"{value:.2%}" if percent else f"{value:.4g}"
    return html.escape(str(value))


def html_table(df: pl.DataFrame, percent: tuple[str, ...] = PERCENT_COLUMNS) -> str:
    """A plain HTML table of ``df`` (columns in ``percent`` formatted as percentages)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v, c in percent)}</td>"
                                    for c, v in zip(df.columns, row)) + "</tr>"
                   for row in df.iter_rows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_section(result: EnhanceResult, title: str, images: dict[str, str]) -> str:
    """The report's HTML ``<section>``: settings, performance, ladder use, constraints.

    images: caption -> base64 PNG (``plots.figure_pngs``).
    """
    settings = {**asdict(result.constraints), **asdict(result.trading), **result.info}
    reb = result.rebalances
    per_date = reb.select([c for c in reb.columns if c not in ("n_forced", "budget_error")])
    ladder = reb.group_by("step", "step_name").len().sort("step")
    figs = "".join(f'<figure><img src="data:image/png;base64,{b64}" alt="{html.escape(cap)}">'
                   f"<figcaption>{html.escape(cap)}</figcaption></figure>"
                   for cap, b64 in images.items())
    return (f"<section class='enhance'><h2>{html.escape(title)}</h2>"
            f"<pre>{html.escape(json.dumps(settings, indent=1, default=str))}</pre>"
            f"<h3>Performance</h3>{html_table(performance_table(result))}{figs}"
            f"<h3>Constraints: bound vs worst realized</h3>"
            f"{html_table(constraint_summary(result), ())}"
            f"<h3>Relaxation ladder</h3>{html_table(ladder, ())}"
            f"<details><summary>Realized constraint values per rebalance</summary>"
            f"{html_table(per_date, ())}</details></section>")


def write_report(result: EnhanceResult, out_dir: str | Path, title: str) -> dict[str, Path]:
    """Write weights, daily NAV, rebalances, metrics and the HTML section into ``out_dir``."""
    from backtest.enhance.plots import figure_pngs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"weights": out / "weights.parquet", "daily": out / "daily.parquet",
             "rebalances": out / "rebalances.parquet", "metrics": out / "metrics.csv",
             "html": out / "enhance.html"}
    result.weights.write_parquet(paths["weights"])
    result.daily.write_parquet(paths["daily"])
    result.rebalances.write_parquet(paths["rebalances"])
    performance_table(result).write_csv(paths["metrics"])
    section = html_section(result, title, figure_pngs(result))
    paths["html"].write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>"
                             f"{html.escape(title)}</title></head><body>{section}</body></html>")
    return paths
