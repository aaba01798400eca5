"""The ``enhance`` subcommand: factor file(s) + market -> weekly enhancement portfolio + report.

``python -m backtest enhance --factors F.parquet --benchmark csi500 --data auto
--preset report1`` (or ``python -m backtest.enhance ...``) writes, per factor, into
``--out/<factor>_<benchmark>_<preset>/``: ``weights.parquet`` (post-trade weights per
rebalance), ``daily.parquet`` (NAVs and returns), ``rebalances.parquet`` (ladder step,
costs and every realized constraint per date), ``metrics.csv`` (overall and per year) and
``enhance.html`` (the report section with plots). Any preset field can be overridden.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from backtest.enhance.benchmark import benchmark_returns, cap_weights, read_benchmark_weights
from backtest.enhance.constraints import PRESETS, preset
from backtest.enhance.market import EnhanceMarket
from backtest.enhance.report import performance_table, write_report
from backtest.enhance.simulate import EnhanceResult, simulate

log = logging.getLogger(__name__)
OVERRIDES = ("max_deviation", "min_constituent_weight", "universe", "style_bound",
             "style_bounds", "industry_bound", "max_turnover", "turnover_kind",
             "cost_round_trip", "trade_price", "solver")


def _float_or_none(text: str) -> float | None:
    return None if text.lower() in ("none", "off") else float(text)


def _style_bounds(text: str) -> dict[str, float]:
    try:
        return {k.strip(): float(v) for k, v in (p.split("=") for p in text.split(",") if p)}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--style-bounds wants name=value,..., got {text!r}"
                                         ) from exc


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``enhance`` options (preset fields documented in ``constraints.py``)."""
    p.add_argument("--factors", nargs="+", required=True, help="factor parquet file(s)")
    p.add_argument("--benchmark", default="csi500", help="universe name: csi300|csi500|csi1000")
    p.add_argument("--data", default="auto", help="market spec (backtest.data.market_source)")
    p.add_argument("--cache-dir", default=".cache/panels", help="panel cache ('' = none)")
    p.add_argument("--preset", default="report1", choices=sorted(PRESETS))
    p.add_argument("--out", default="runs/enhance", help="output directory")
    p.add_argument("--start", help="first signal date (ISO)")
    p.add_argument("--end", help="last simulated date (ISO)")
    p.add_argument("--benchmark-weights", help="real index weights: date, code, weight file")
    p.add_argument("--benchmark-returns", choices=("index", "members"), default="index")
    p.add_argument("--styles", help="comma-separated style names (default: all)")
    p.add_argument("--allow-unmatched", action="store_true")
    g = p.add_argument_group("overrides of the preset (fields of EnhanceConstraints / "
                             "TradingSettings, see docs/enhance.md)")
    g.add_argument("--max-deviation", type=float, help="|w_i - b_i| <= d (0.008 = 0.8%%)")
    g.add_argument("--min-constituent-weight", type=float, help="Σ member weights >= c; 0 = off")
    g.add_argument("--universe", choices=("all", "constituents"), help="stocks that may be bought")
    g.add_argument("--style-bound", type=_float_or_none, default=argparse.SUPPRESS,
                   help="|(w - b)ᵀX_k| <= s for every style, or 'none'")
    g.add_argument("--style-bounds", type=_style_bounds, help="per style, e.g. size=0,beta=0.5")
    g.add_argument("--industry-bound", type=_float_or_none, default=argparse.SUPPRESS,
                   help="|active weight| per industry (0 = neutral), or 'none'")
    g.add_argument("--max-turnover", type=_float_or_none, default=argparse.SUPPRESS,
                   help="turnover cap per rebalance, or 'none'")
    g.add_argument("--turnover-kind", choices=("one_sided", "two_sided"),
                   help="one_sided = 0.5 Σ|w - w0|, two_sided = Σ|w - w0|")
    g.add_argument("--cost-round-trip", type=float, help="0.0025 = 0.25%% round trip")
    g.add_argument("--trade-price", choices=("close", "vwap"), help="of the trade day")
    g.add_argument("--solver", choices=("CLARABEL", "HIGHS", "SCS", "OSQP"))


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """Given options only; the three ``*_or_none`` options may explicitly be None."""
    out = {}
    for name in OVERRIDES:
        if name in ("style_bound", "industry_bound", "max_turnover"):
            if hasattr(args, name):
                out[name] = getattr(args, name)
        elif getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    return out


def run(args: argparse.Namespace) -> list[EnhanceResult]:
    """Load market and factors, simulate every factor, write the reports."""
    from backtest.data import load_factors, market_source
    from backtest.styles import style_factors
    from market.sources import load_panel

    cons, trading = preset(args.preset, _overrides(args))
    panel = load_panel(market_source(args.data, args.factors), args.cache_dir or None)
    factors = load_factors(args.factors, panel, args.allow_unmatched)
    weights = read_benchmark_weights(args.benchmark_weights, panel) if args.benchmark_weights \
        else cap_weights(panel, args.benchmark)
    bench = benchmark_returns(panel, args.benchmark, weights, args.benchmark_returns)
    names = args.styles.split(",") if args.styles else None
    styles = style_factors(panel, names)
    results = []
    for name in factors.names:
        mkt = EnhanceMarket.build(panel, factors.values[name], weights, styles,
                                  trading.trade_price)
        result = simulate(mkt, bench.returns, cons, trading, start=args.start, end=args.end)
        result.info.update({"factor": name, "benchmark": args.benchmark, "preset": args.preset,
                            "benchmark_weights": args.benchmark_weights or
                            "free-float cap within members (approximation)",
                            "benchmark_returns": bench.source})
        out = Path(args.out) / f"{name}_{args.benchmark}_{args.preset}"
        paths = write_report(result, out, f"Index enhancement: {name} vs {args.benchmark} "
                                          f"({args.preset})")
        _print_summary(result, paths["html"])
        results.append(result)
    return results


def run_command(args: argparse.Namespace) -> int:
    """``run`` for the ``python -m backtest`` registry (exit code 0)."""
    run(args)
    return 0


def _print_summary(result: EnhanceResult, html_path: Path) -> None:
    table = performance_table(result)
    cols = ["period", "ann_excess", "tracking_error", "info_ratio", "excess_max_drawdown",
            "calmar", "monthly_win_rate", "turnover_two_sided"]
    print(f"\n{result.info.get('factor')} vs {result.info.get('benchmark')}: "
          f"{result.rebalances.height} rebalances, ladder steps "
          f"{dict(result.rebalances['step'].value_counts().iter_rows())}")
    print("  ".join(f"{c:>14}" for c in cols))
    for row in table.select(cols).iter_rows():
        print("  ".join(f"{v:>14}" if isinstance(v, str) else f"{v:>14.4f}" for v in row))
    print(f"report: {html_path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m backtest.enhance``."""
    parser = argparse.ArgumentParser(prog="python -m backtest enhance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_command(args)
