"""The ``report`` subcommand: factor files + market -> HTML / JSON / parquet (+ W&B)."""

from __future__ import annotations

import argparse
import glob
import logging
import time
from pathlib import Path

from backtest.analysis import (SECTIONS, AnalysisConfig, available_universes,
                               load_factors_preparing, run_analysis)
from backtest.context import TRADE_PRICES, MarketContext
from backtest.data import market_source, universe_masks
from backtest.market_cache import MarketCache
from backtest.report import write_report
from backtest.styles import STYLE_NAMES
from backtest.topk import DEFAULT_FEE, PORTFOLIOS, REBALANCE
from market.sources import cache_path, load_panel

log = logging.getLogger(__name__)
INDEX_UNIVERSES = ("all", "csi300", "csi500", "csi1000")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip() and x.strip() != "none")


def _pairs(text: str, cast=int) -> dict:
    out = {}
    for part in _names(text):
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"{part!r} is not name=value")
        key, value = part.split("=", 1)
        out[key.strip()] = cast(value.strip())
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--factors", nargs="+", required=True,
                   help="factor parquet files (date, code, score), directories or globs")
    p.add_argument("--data", default="auto", help="auto | synthetic[:k=v,...] | "
                   "cn_shared[:root] | <market directory> (see docs/backtest.md)")
    p.add_argument("--cache-dir", default=None, help="panel cache directory (memory-mapped); "
                   "also caches the market-side arrays (forward returns and their sorts, "
                   "tradability, trade prices, styles) under <panel>/derived")
    p.add_argument("--no-market-cache", action="store_true",
                   help="with --cache-dir, do not read or store the market-side arrays")
    p.add_argument("--out", default="runs/backtest", help="output directory")
    p.add_argument("--universes", default="auto", help="comma list among all, csi300, "
                   "csi500, csi1000 and --membership names; auto = those the market has")
    p.add_argument("--membership", action="append", default=[], metavar="NAME=FILE",
                   help="extra universe from a membership file (repeatable)")
    p.add_argument("--horizons", type=_ints, default=(5, 10, 20))
    p.add_argument("--main-horizon", type=int, default=10)
    p.add_argument("--decay-horizons", type=_ints, default=(1, 2, 5, 10, 20))
    p.add_argument("--groups", type=_pairs, default={},
                   help="universe=N overrides, e.g. all=20,csi300=5 (defaults 20/5/10/10)")
    p.add_argument("--topk-universe", default="all")
    p.add_argument("--prices", type=_names, default=TRADE_PRICES,
                   help=f"trade prices among {','.join(TRADE_PRICES)}")
    p.add_argument("--rebalance", type=_pairs, default=dict(REBALANCE),
                   help="name=period days, e.g. weekly=5,biweekly=10")
    p.add_argument("--fee", type=float, default=DEFAULT_FEE, help="round-trip fee fraction")
    p.add_argument("--portfolios", type=_names, default=PORTFOLIOS)
    p.add_argument("--styles", type=_names, default=STYLE_NAMES, help="styles or 'none'")
    p.add_argument("--sections", type=_names, default=SECTIONS)
    p.add_argument("--allow-unmatched", action="store_true",
                   help="drop (and count) factor rows whose date/code is not in the market")
    p.add_argument("--wandb", action="store_true", help="also log to a W&B run")
    p.add_argument("--wandb-project", default="deepfactor-backtest")
    p.add_argument("--wandb-mode", default="offline", choices=("offline", "online"))
    p.add_argument("--wandb-dir", default="runs")


def expand_factor_paths(items: list[str]) -> list[Path]:
    """Files, directories (their *.parquet) and globs, in the order given."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*.parquet"))
        elif p.exists():
            found = [p]
        else:
            found = sorted(Path(f) for f in glob.glob(item))
        if not found:
            raise FileNotFoundError(f"no factor file matches {item!r}")
        out.extend(found)
    return out


def _universes(args: argparse.Namespace, ctx: MarketContext) -> dict:
    extra = _pairs(",".join(args.membership), str) if args.membership else {}
    if args.universes == "auto":
        names = available_universes(ctx, INDEX_UNIVERSES)
    else:
        names = [u for u in _names(args.universes) if u not in extra]
    return universe_masks(ctx.panel, names, extra)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    paths = expand_factor_paths(args.factors)
    source = market_source(args.data, paths)
    log.info("market %s", source.key())
    panel = load_panel(source, args.cache_dir)
    cache = (MarketCache(cache_path(source, args.cache_dir) / "derived")
             if args.cache_dir and not args.no_market_cache else None)
    ctx = MarketContext.from_panel(panel, cache)
    universes = _universes(args, ctx)
    config = AnalysisConfig(horizons=args.horizons, main_horizon=args.main_horizon,
                            decay_horizons=args.decay_horizons, n_groups=args.groups,
                            topk_universe=args.topk_universe, prices=args.prices,
                            rebalance=args.rebalance, fee=args.fee,
                            portfolios=args.portfolios, styles=args.styles,
                            sections=args.sections)
    # the market-side arrays are built while the factor files load
    factors, _ = load_factors_preparing(paths, ctx, config, args.allow_unmatched)
    t_load = time.perf_counter() - t0  # the panel, the factors and the market-side arrays
    result = run_analysis(ctx, factors, universes, config)
    result.timings = {"load": t_load, **result.timings}
    facts = {"market": source.key(), "factors": ", ".join(factors.names),
             "panel": f"{panel.shape[0]} days x {panel.shape[1]} stocks"}
    if cache is not None:
        facts["market cache"] = (f"{cache.dir}: {len(cache.hits)} entries read, "
                                 f"{len(cache.misses)} computed and stored")
    written = write_report(result, args.out, facts)
    if args.wandb:
        from backtest.wandb_log import log_to_wandb

        log_to_wandb(result, written, args.wandb_project, args.wandb_mode, args.wandb_dir)
    print(summary_text(result, written, time.perf_counter() - t0))
    return 0


def summary_text(result, written: dict, seconds: float) -> str:
    """A short console summary: headline numbers per factor and the output paths."""
    lines = []
    t, h = result.tables, result.config.main_horizon
    first = result.universes[0]
    if "ic_summary" in t:
        for row in t["ic_summary"].filter((t["ic_summary"]["metric"] == "rank_ic")
                                          & (t["ic_summary"]["horizon"] == h)
                                          & (t["ic_summary"]["universe"] == first)).iter_rows(
                named=True):
            lines.append(f"{row['factor']:<30} rank_ic@{h} {row['mean']:.4f}  "
                         f"icir {row['icir']:.2f}  win {row['win_rate']:.2f}")
    if "groups_summary" in t:
        for row in t["groups_summary"].filter(t["groups_summary"]["universe"] == first
                                              ).iter_rows(named=True):
            lines.append(f"{row['factor']:<30} top group ann {row['top_ann_return']:.2%}  "
                         f"excess {row['top_ann_excess']:.2%}  sharpe {row['top_sharpe']:.2f}")
    lines.append(f"report   {written['html']}")
    lines.append(f"results  {written['json']}")
    lines.append(f"seconds  {seconds:.1f}")
    return "\n".join(lines)
