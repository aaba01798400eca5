"""Figures of an enhancement run as base64 PNGs (matplotlib, Agg backend, no display)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from backtest.enhance.constraints import DEFAULT_LADDER  # noqa: E402
from backtest.enhance.simulate import EnhanceResult  # noqa: E402


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def excess_figure(result: EnhanceResult) -> plt.Figure:
    """Cumulative excess NAV (top; relaxed rebalances marked) and both NAVs (bottom)."""
    d = result.daily
    dates = d["date"].to_numpy()
    excess_nav = np.cumprod(1 + d["excess_ret"].to_numpy())
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    ax1.plot(dates, excess_nav - 1, color="tab:red", lw=1.2)
    relaxed = result.rebalances.filter(pl.col("step") != 0)["trade_date"].to_numpy()
    if len(relaxed):
        pos = np.searchsorted(dates, relaxed)
        ax1.scatter(dates[pos], excess_nav[pos] - 1, s=12, color="k", zorder=3,
                    label="relaxed or held rebalance")
        ax1.legend(loc="upper left")
    ax1.set_ylabel("cumulative excess")
    ax1.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax1.grid(alpha=0.3)
    ax2.plot(dates, d["nav"].to_numpy(), label="portfolio", lw=1)
    ax2.plot(dates, d["bench_nav"].to_numpy(), label="benchmark", lw=1)
    ax2.set_ylabel("NAV")
    ax2.legend(loc="upper left")
    ax2.grid(alpha=0.3)
    return fig


def constraints_figure(result: EnhanceResult) -> plt.Figure:
    """Realized constraint values per rebalance against their bounds (dashed)."""
    c, reb = result.constraints, result.rebalances.filter(~pl.col("initial"))
    dates = reb["trade_date"].to_numpy()
    turnover = f"turnover_{c.turnover_kind}"
    panels = [("max |w - b|, tradable", "max_deviation", [c.max_deviation]),
              (turnover, turnover, [c.max_turnover]),
              ("max |industry exposure|", "max_industry", [c.industry_bound]),
              ("constituent weight", "constituent_weight", [c.min_constituent_weight])]
    styles = [col for col in reb.columns if col.startswith("style_")]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True)
    for ax, (title, col, bounds) in zip(axes.flat, panels):
        values = reb[col].to_numpy()
        ax.plot(dates, values, lw=1)
        for b in bounds:
            if b is not None:
                ax.axhline(b, ls="--", color="k", lw=0.8)
        top = max([*values, *(b for b in bounds if b is not None)], default=1.0)
        ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)  # from 0: solver noise stays invisible
        ax.set_title(title, fontsize=9)
    ax = axes.flat[4]
    for col in styles:
        ax.plot(dates, reb[col].to_numpy(), lw=0.8, label=col.removeprefix("style_"))
    bands = {c.style_band(col.removeprefix("style_")) for col in styles} - {None}
    for b in bands:
        ax.axhline(b, ls="--", color="k", lw=0.6)
        ax.axhline(-b, ls="--", color="k", lw=0.6)
    ax.set_title("style exposures (w - b)ᵀX", fontsize=9)
    ax.legend(fontsize=6)
    ax = axes.flat[5]
    steps = reb["step"].to_numpy()
    ax.step(dates, steps, where="post", lw=1)
    ax.set_ylim(-1.5, max(len(DEFAULT_LADDER) - 1, *steps, 0) + 0.5)
    ax.set_title("ladder step used (0 = as specified, -1 = held)", fontsize=9)
    for ax in axes.flat:
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def figure_pngs(result: EnhanceResult) -> dict[str, str]:
    """Caption -> base64 PNG of the report's figures."""
    return {"Cumulative excess return (daily excess compounded) and NAVs":
            _png(excess_figure(result)),
            "Realized constraints per rebalance (dashed: bounds)":
            _png(constraints_figure(result))}
