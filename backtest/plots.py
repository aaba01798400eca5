"""Report figures (matplotlib, Agg backend): one PNG per figure, fixed file names.

| file | what |
|---|---|
| cumulative_ic.png | cumulative daily Rank IC, main horizon, first universe, one line per factor |
| ic_decay.png | mean Rank IC by forward-return horizon (first universe) |
| group_returns_<universe>.png | annualized return of each group, factors side by side |
| top_group_excess.png | cumulative excess NAV of the top group over the universe average |
| yearly_excess.png | top group's excess return per calendar year (first universe) |
| topk_excess.png | cumulative net excess NAV of the top-k portfolios (weekly, T+1 VWAP) |
| factor_correlation.png | heatmap of the mean daily rank correlation between factors |
| style_exposure.png | heatmap of factors x style exposures |
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

DPI = 100


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _nav_lines(ax: plt.Axes, frame: pl.DataFrame, column: str, label_cols: list[str]) -> None:
    for key, grp in frame.group_by(label_cols, maintain_order=True):
        r = np.nan_to_num(grp[column].to_numpy())
        ax.plot(grp["date"].to_numpy(), np.cumprod(1 + r), label=" / ".join(map(str, key)))
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.legend(fontsize=7)


def cumulative_ic(daily: pl.DataFrame, universe: str, horizon: int, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4))
    sel = daily.filter((pl.col("universe") == universe) & (pl.col("horizon") == horizon))
    for (name,), grp in sel.group_by(["factor"], maintain_order=True):
        ax.plot(grp["date"].to_numpy(), np.nancumsum(grp["rank_ic"].to_numpy()), label=name)
    ax.set_title(f"Cumulative daily Rank IC ({universe}, {horizon}-day forward return)")
    ax.legend(fontsize=7)
    return _save(fig, out / "cumulative_ic.png")


def ic_decay(decay: pl.DataFrame, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for (name,), grp in decay.group_by(["factor"], maintain_order=True):
        ax.plot(grp["horizon"].to_numpy(), grp["rank_ic"].to_numpy(), marker="o", label=name)
    ax.set_xlabel("horizon (trading days)")
    ax.set_ylabel("mean Rank IC")
    ax.set_title("Rank IC decay")
    ax.legend(fontsize=7)
    return _save(fig, out / "ic_decay.png")


def group_returns(annual: pl.DataFrame, universe: str, out: Path) -> Path:
    sel = annual.filter(pl.col("universe") == universe)
    names = sel["factor"].unique(maintain_order=True).to_list()
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        grp = sel.filter(pl.col("factor") == name)
        ax.bar(grp["group"].to_numpy() + (k - (len(names) - 1) / 2) * width,
               grp["ann_return"].to_numpy(), width, label=name)
    groups = sorted(sel["group"].unique().to_list())
    ax.set_xticks(groups, [str(g) for g in groups])
    ax.set_xlabel("group (1 = lowest scores)")
    ax.set_ylabel("annualized return")
    ax.set_title(f"Annualized return by group ({universe})")
    ax.legend(fontsize=7)
    return _save(fig, out / f"group_returns_{universe}.png")


def top_group_excess(daily: pl.DataFrame, out: Path) -> Path:
    universes = daily["universe"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(len(universes), 1, figsize=(9, 3 * len(universes)), squeeze=False)
    for ax, uni in zip(axes[:, 0], universes):
        sel = daily.filter(pl.col("universe") == uni).with_columns(
            (pl.col("top") - pl.col("benchmark")).alias("excess"))
        _nav_lines(ax, sel, "excess", ["factor"])
        ax.set_title(f"Top group cumulative excess over the equal-weighted average ({uni})")
    return _save(fig, out / "top_group_excess.png")


def yearly_excess(yearly: pl.DataFrame, universe: str, out: Path) -> Path:
    sel = yearly.filter(pl.col("universe") == universe)
    names = sel["factor"].unique(maintain_order=True).to_list()
    years = sorted(sel["year"].unique().to_list())
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        grp = sel.filter(pl.col("factor") == name)
        lookup = dict(zip(grp["year"].to_list(), grp["top_excess"].to_list()))
        ax.bar(np.arange(len(years)) + (k - (len(names) - 1) / 2) * width,
               [lookup.get(y, np.nan) for y in years], width, label=name)
    ax.set_xticks(np.arange(len(years)), [str(y) for y in years])
    ax.set_title(f"Top group excess return by year ({universe})")
    ax.legend(fontsize=7)
    return _save(fig, out / "yearly_excess.png")


def topk_excess(daily: pl.DataFrame, out: Path, rebalance: str = "weekly",
                price: str = "vwap_t1") -> Path:
    sel = daily.filter((pl.col("rebalance") == rebalance) & (pl.col("price") == price))
    if sel.is_empty():  # fall back to the first configuration present
        first = daily.row(0, named=True)
        rebalance, price = first["rebalance"], first["price"]
        sel = daily.filter((pl.col("rebalance") == rebalance) & (pl.col("price") == price))
    fig, ax = plt.subplots(figsize=(9, 4))
    _nav_lines(ax, sel, "excess_net", ["factor", "portfolio"])
    ax.set_title(f"Top-k cumulative excess after fees ({rebalance}, {price})")
    return _save(fig, out / "topk_excess.png")


def heatmap(table: pl.DataFrame, row_col: str, out: Path, name: str, title: str) -> Path:
    rows = table[row_col].to_list()
    cols = [c for c in table.columns if c != row_col]
    mat = table.select(cols).to_numpy().astype(float)
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 3, 0.5 * len(rows) + 2))
    im = ax.imshow(mat, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    return _save(fig, out / name)
