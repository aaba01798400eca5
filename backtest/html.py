"""Self-contained HTML for the report: readable (pivoted) tables and base64 PNG figures."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import polars as pl

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f0f0f0}td.t{text-align:left}p.note{color:#555;font-size:13px}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4f}"
    return html.escape(str(v))


def table_html(df: pl.DataFrame, max_rows: int = 400) -> str:
    """An HTML table of ``df`` (floats with 4 decimals, at most ``max_rows`` rows)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = []
    for row in df.head(max_rows).iter_rows():
        cells = "".join(f'<td class="t">{_fmt(v)}</td>' if isinstance(v, str)
                        else f"<td>{_fmt(v)}</td>" for v in row)
        rows.append(f"<tr>{cells}</tr>")
    more = f"<p class='note'>{df.height - max_rows} more rows in the parquet file</p>" \
        if df.height > max_rows else ""
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def image_html(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _pivot(df: pl.DataFrame, on: str, index: list[str], values: str) -> pl.DataFrame:
    out = df.pivot(on=on, index=index, values=values, sort_columns=True)
    return out.rename({c: f"{on} {c}" for c in out.columns if c not in index})


def ic_view(summary: pl.DataFrame) -> pl.DataFrame:
    """One row per factor x universe x horizon: IC and Rank IC statistics side by side."""
    keys = ["factor", "universe", "horizon"]
    ic = summary.filter(pl.col("metric") == "ic").select(
        *keys, pl.col("mean").alias("IC"), pl.col("icir").alias("ICIR"))
    rank = summary.filter(pl.col("metric") == "rank_ic").select(
        *keys, pl.col("mean").alias("Rank IC"), pl.col("icir").alias("Rank ICIR"),
        pl.col("win_rate").alias("Rank IC > 0"), pl.col("t_stat").alias("Rank IC t"),
        pl.col("n_days").cast(pl.Int64).alias("days"))
    return ic.join(rank, on=keys, maintain_order="left")


def views(tables: dict[str, pl.DataFrame], main_horizon: int) -> list[tuple[str, str, pl.DataFrame]]:
    """(title, explanation, table) in report order, for the tables present."""
    t = tables
    out: list[tuple[str, str, pl.DataFrame]] = []

    def add(name: str, title: str, note: str, fn) -> None:
        if name in t and not t[name].is_empty():
            out.append((title, note, fn(t[name])))

    add("coverage", "Coverage", "Rows read, dropped, days and the share of valid stocks scored.",
        lambda d: d.drop("file"))
    add("ic_summary", "IC tests", "Mean daily IC / Rank IC, ICIR = mean / std, share of days "
        "with Rank IC > 0, t-stat, per universe and forward horizon.", ic_view)
    add("ic_yearly", f"Rank IC by year ({main_horizon}-day)", "Mean daily Rank IC per year.",
        lambda d: _pivot(d.filter((pl.col("metric") == "rank_ic")
                                  & (pl.col("horizon") == main_horizon)),
                         "year", ["factor", "universe"], "mean"))
    add("ic_decay", "Rank IC decay", "Mean Rank IC against h-day forward returns.",
        lambda d: _pivot(d, "horizon", ["factor", "universe"], "rank_ic"))
    add("groups_summary", "Group test: top group", "Weekly rebalance, equal weight, no cost; "
        "excess over the equal-weighted average of the eligible stocks.", lambda d: d)
    add("groups_annual", "Group test: annualized return per group", "Group 1 = lowest scores.",
        lambda d: _pivot(d, "group", ["factor", "universe"], "ann_return"))
    add("groups_yearly", "Group test: top group excess by year", "",
        lambda d: _pivot(d, "year", ["factor", "universe"], "top_excess"))
    add("topk_summary", "Top-k portfolios", "Track-averaged; *_net after the round-trip fee; "
        "excess over the equal-weighted market.", lambda d: d)
    add("topk_yearly", "Top-k: net excess by year", "",
        lambda d: _pivot(d, "year", ["factor", "portfolio", "rebalance", "price"], "excess_net"))
    add("factor_correlation", "Factor correlation", "Mean daily rank correlation.", lambda d: d)
    add("style_exposure", "Style exposure", "Mean daily rank correlation with each style.",
        lambda d: _pivot(d, "style", ["factor"], "exposure"))
    return out


def render(title: str, header: dict[str, Any], sections: list[tuple[str, str, pl.DataFrame]],
           images: list[Path]) -> str:
    """The whole page: header facts, tables, figures (embedded)."""
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td class='t'>{_fmt(v)}</td></tr>"
                    for k, v in header.items())
    body = [f"<h1>{html.escape(title)}</h1><table>{facts}</table>"]
    for name, note, df in sections:
        body.append(f"<h2>{html.escape(name)}</h2>")
        if note:
            body.append(f"<p class='note'>{html.escape(note)}</p>")
        body.append(table_html(df))
    if images:
        body.append("<h2>Figures</h2>")
        body.extend(f"<h3>{html.escape(p.name)}</h3>{image_html(p)}" for p in images)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
