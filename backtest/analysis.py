"""The whole factor evaluation: IC tests, group test, top-k, correlations, styles.

:func:`run_analysis` returns named polars tables (documented in ``docs/backtest.md``) and
the seconds each part took; :mod:`backtest.report` writes them out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from backtest.context import TRADE_PRICES, MarketContext
from backtest.correlation import factor_correlation, style_exposure
from backtest.data import Factors, load_factors
from backtest.groups import group_tables
from backtest.ic import ic_analysis
from backtest.kernels import SortedRows
from backtest.styles import STYLE_NAMES, StyleConfig
from backtest.topk import DEFAULT_FEE, PORTFOLIOS, REBALANCE, topk_tables

SECTIONS = ("ic", "groups", "topk", "correlation", "styles")


@dataclass
class AnalysisConfig:
    """What to compute.

    horizons: forward-return horizons (days) of the IC tests; main_horizon: the one the
    plots use; decay_horizons: Rank IC decay curve (first universe); n_groups: universe
    -> number of groups (defaults: all 20, csi300 5, csi500/csi1000 10, others 10);
    topk_universe: universe of the top-k portfolios and their benchmark; prices: trade
    price conventions; rebalance: name -> period in trading days; fee: round trip;
    portfolios: ``topNpct`` / ``topK`` names; sections: parts to run.
    """

    horizons: tuple[int, ...] = (5, 10, 20)
    main_horizon: int = 10
    decay_horizons: tuple[int, ...] = (1, 2, 5, 10, 20)
    n_groups: dict[str, int] = field(default_factory=dict)
    topk_universe: str = "all"
    prices: tuple[str, ...] = TRADE_PRICES
    rebalance: dict[str, int] = field(default_factory=lambda: dict(REBALANCE))
    fee: float = DEFAULT_FEE
    portfolios: tuple[str, ...] = PORTFOLIOS
    styles: tuple[str, ...] = STYLE_NAMES
    style_config: StyleConfig = field(default_factory=StyleConfig)
    sections: tuple[str, ...] = SECTIONS

    def __post_init__(self) -> None:
        bad = sorted(set(self.sections) - set(SECTIONS))
        if bad:
            raise ValueError(f"unknown section(s) {bad}; choose from {list(SECTIONS)}")
        if self.main_horizon not in self.horizons:
            raise ValueError(f"main_horizon {self.main_horizon} not in horizons {self.horizons}")
        if any(h < 1 for h in (*self.horizons, *self.decay_horizons)):
            raise ValueError("horizons must be >= 1 day")
        if self.fee < 0:
            raise ValueError(f"fee must be >= 0, got {self.fee}")


@dataclass
class AnalysisResult:
    """tables: name -> polars table; timings: part -> seconds; config used."""

    tables: dict[str, pl.DataFrame]
    timings: dict[str, float]
    config: AnalysisConfig
    universes: list[str]


def run_analysis(ctx: MarketContext, factors: Factors, universes: Mapping[str, np.ndarray],
                 config: AnalysisConfig | None = None) -> AnalysisResult:
    """Run every section of ``config`` on the aligned ``factors``."""
    cfg = config or AnalysisConfig()
    if not universes:
        raise ValueError("no universe to evaluate in")
    tables: dict[str, pl.DataFrame] = {"coverage": factors.coverage}
    timings: dict[str, float] = {}
    values, spans = factors.values, factors.spans

    def timed(part: str, fn, *args, **kwargs) -> None:
        t0 = time.perf_counter()
        tables.update(fn(*args, **kwargs))
        timings[part] = time.perf_counter() - t0

    sorts: dict[str, SortedRows] = {}
    sections = set(cfg.sections)
    if ({"ic", "groups", "topk"} & sections or ("styles" in sections and cfg.styles)
            or ("correlation" in sections and len(values) > 1)):  # one row sort per factor
        t0 = time.perf_counter()
        sorts = {name: SortedRows(v) for name, v in values.items()}
        timings["factor_sort"] = time.perf_counter() - t0
    if "ic" in cfg.sections:
        hs = sorted(set(cfg.horizons) | set(cfg.decay_horizons))
        t0 = time.perf_counter()
        forward = {h: ctx.forward_sorted(h) for h in hs}
        timings["forward_returns"] = time.perf_counter() - t0
        timed("ic", ic_analysis, factors, forward, ctx.dates, universes, cfg.horizons,
              cfg.decay_horizons, sorts)
    if "groups" in cfg.sections:
        timed("groups", group_tables, ctx, values, spans, universes, cfg.n_groups, sorts)
    if "topk" in cfg.sections:
        if cfg.topk_universe not in universes:
            raise ValueError(f"top-k universe {cfg.topk_universe!r} not among {list(universes)}")
        timed("topk", topk_tables, ctx, values, spans, cfg.topk_universe,
              universes[cfg.topk_universe], cfg.prices, cfg.rebalance, cfg.fee, cfg.portfolios,
              sorts)
    if "correlation" in cfg.sections and len(values) > 1:
        timed("correlation", lambda: {"factor_correlation": factor_correlation(
            values, sorts=sorts)})
    if "styles" in cfg.sections and cfg.styles:
        t0 = time.perf_counter()
        styles = ctx.styles_sorted(cfg.styles, cfg.style_config)
        timings["style_factors"] = time.perf_counter() - t0
        timed("style_exposure", lambda: {"style_exposure": style_exposure(values, styles,
                                                                            spans, sorts)})
    return AnalysisResult(tables, timings, cfg, list(universes))


def prepare_market(ctx: MarketContext, config: AnalysisConfig) -> float:
    """Compute (or read from the market cache) every market-side array the sections of
    ``config`` use: forward returns and their sorts, tradability, trade prices, styles.
    Returns the seconds taken. :func:`run_analysis` would compute them on first use; this
    lets them be built while the factor files load (:func:`load_factors_preparing`)."""
    t0 = time.perf_counter()
    sections = set(config.sections)
    if sections & {"groups", "topk"}:
        ctx.can_buy  # noqa: B018 - computes the tradability masks
    if "topk" in sections:
        for price in config.prices:
            ctx.trade_price(price)
    if "ic" in sections:
        for h in sorted(set(config.horizons) | set(config.decay_horizons)):
            ctx.forward_sorted(h)
    if "styles" in sections and config.styles:
        ctx.styles_sorted(config.styles, config.style_config)
    return time.perf_counter() - t0


def load_factors_preparing(paths: Sequence[str | Path], ctx: MarketContext,
                           config: AnalysisConfig, allow_unmatched: bool = False
                           ) -> tuple[Factors, float]:
    """:func:`backtest.data.load_factors` in a second thread while this one runs
    :func:`prepare_market` (the factor's parquet read and alignment mostly use one core, the
    market-side kernels both). Returns (factors, seconds of the market preparation).

    Only the market side runs parallel compiled kernels; the loading thread runs polars and
    one single-threaded kernel, so no two parallel kernels are ever launched at once."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(load_factors, paths, ctx.panel, allow_unmatched)
        seconds = prepare_market(ctx, config)
        return future.result(), seconds


def available_universes(ctx: MarketContext, wanted: Sequence[str]) -> list[str]:
    """``wanted`` minus the index universes this market lacks (``all`` always exists)."""
    return [u for u in wanted if u == "all" or u in ctx.panel.universes]
