"""Seeded synthetic A-share-like market: the framework's built-in dataset and CI data.

``generate_market`` returns a :class:`SyntheticMarketData` (a ``MarketData``) in the
canonical long schema, with csi300/csi500/csi1000-like memberships and cap-weighted
index levels, plus the latent state that makes the planted predictive structure
checkable (``oracle_scores``). The data-generating process, the planted signals and
their measured strength are documented in ``docs/synthetic_market.md``; the pieces
live in ``synthetic_signals`` (latent returns), ``synthetic_paths`` (close paths and
frictions), ``synthetic_bars`` (OHLC, VWAP, volume) and ``synthetic_universe``
(calendar, codes, indexes). ``python -m market.synthetic --measure`` reproduces the
documented Rank ICs.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from market.schema import MarketData
from market.synthetic_bars import DailyBars, daily_bars
from market.synthetic_paths import Paths, simulate_paths
from market.synthetic_signals import (BURN_IN, SyntheticLatent, SyntheticParams,
                                      intraday_shocks, simulate_factors, simulate_latent,
                                      simulate_traits)
from market.synthetic_universe import (UNIVERSES, index_levels, industry_names, memberships,
                                       stock_codes, trading_calendar)

__all__ = ["SyntheticMarketData", "SyntheticParams", "generate_market", "oracle_factor",
           "oracle_scores"]


@dataclass
class SyntheticMarketData(MarketData):
    """``MarketData`` plus the generator's latent state and parameters.

    latent: ``[D, S]`` arrays aligned with ``Panel.from_market(market)`` (its ``dates``
        are the synthetic calendar, its ``codes`` the sorted codes); None when the
        market was generated with ``keep_latent=False``.
    params: the data-generating parameters (signal strengths already scaled).
    intraday_shock: ``[D, S]`` float32 late-session pressure shocks (aligned like
        ``latent``); kept even with ``keep_latent=False`` because the intraday bars
        (``market.synthetic_intraday``) are built from it.
    seed: the generator seed (the intraday bars draw their own stream from it).
    """

    latent: SyntheticLatent | None = None
    params: SyntheticParams = field(default_factory=SyntheticParams)
    intraday_shock: np.ndarray | None = None
    seed: int = 0


def generate_market(n_stocks: int = 500, n_days: int = 1250, seed: int = 0,
                    start: str = "2015-01-05", *, signal_scale: float = 1.0,
                    listing_fraction: float | None = None, suspension_rate: float | None = None,
                    holidays: bool = True, keep_latent: bool = True,
                    params: SyntheticParams | None = None) -> SyntheticMarketData:
    """Generate a synthetic market (deterministic for given arguments).

    n_stocks: number of stocks ever listed (10 .. 19998).
    n_days: number of trading days (>= 20).
    seed: random seed; every component draws from its own child stream.
    start: first calendar day (``YYYY-MM-DD``); trading days are weekdays from there.
    signal_scale: multiplies the four planted signals (trend, size-dependent reversal,
        abnormal-volume reversal, late-session pressure seen only intraday); 0 gives a
        market with no predictable idiosyncratic return (useful for look-ahead tests: any
        positive IC there is a leak).
    listing_fraction: share of stocks that list during the sample (default 0.2).
    suspension_rate: probability per stock-day that a suspension spell starts (0.005).
    holidays: remove a few fixed holiday weeks from the weekday calendar.
    keep_latent: keep the ``[D, S]`` latent state (needed by ``oracle_scores``).
    params: every other knob of the process (see ``SyntheticParams``).
    """
    if not 10 <= n_stocks <= 19998 or n_days < 20:
        raise ValueError(f"need 10 <= n_stocks <= 19998 and n_days >= 20, got {n_stocks}, {n_days}")
    if signal_scale < 0:
        raise ValueError(f"signal_scale must be >= 0, got {signal_scale}")
    p = params or SyntheticParams()
    overrides = {k: v for k, v in (("listing_fraction", listing_fraction),
                                   ("suspension_rate", suspension_rate)) if v is not None}
    p = replace(p, **overrides)
    # child 5 (intraday shocks) was added after 0-4: spawn keys keep 0-4's draws unchanged
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    dates = trading_calendar(start, n_days, holidays)
    codes = stock_codes(n_stocks)
    traits = simulate_traits(rngs[0], n_stocks, n_days, p)
    factors = simulate_factors(rngs[1], n_days, p)
    shocks = intraday_shocks(rngs[5], n_days, n_stocks)
    latent = simulate_latent(rngs[2], traits, factors, p, signal_scale, intraday=shocks)
    paths = simulate_paths(rngs[3], dates, traits, factors, latent, p)
    bars = daily_bars(rngs[4], paths, traits, factors, latent, p)
    members = memberships(dates, codes, paths, traits.list_day,
                          traits.price0 * traits.float_shares0)
    frame = _long_frame(dates, codes, industry_names(p.n_industries), traits.industry, paths, bars)
    return SyntheticMarketData(
        bars=frame, memberships=members, index_close=index_levels(dates, codes, paths, members),
        index_codes={name: code for name, (code, _, _) in UNIVERSES.items()},
        source=f"synthetic(seed={seed}, n_stocks={n_stocks}, n_days={n_days})",
        latent=latent if keep_latent else None, params=latent.params,
        intraday_shock=shocks[BURN_IN:], seed=seed)


def _long_frame(dates: np.ndarray, codes: np.ndarray, names: list[str], industry: np.ndarray,
                paths: Paths, bars: DailyBars) -> pl.DataFrame:
    """Canonical long bars, rows sorted by (code, date)."""
    si, di = np.nonzero(paths.present.T)
    columns = {"open": bars.open, "high": bars.high, "low": bars.low, "close": paths.close,
               "volume": bars.volume, "amount": bars.amount, "vwap": bars.vwap,
               "preclose": paths.preclose, "total_shares": paths.total_shares,
               "float_shares": paths.float_shares}
    code_series = pl.Series("code", codes, pl.String)
    industry_series = pl.Series("industry", np.array(names)[industry], pl.String)
    return pl.DataFrame([
        pl.Series("date", dates[di]).cast(pl.Date),
        code_series.gather(si),
        *(pl.Series(name, arr[di, si].astype(np.float64)) for name, arr in columns.items()),
        industry_series.gather(si),
        pl.Series("is_st", paths.is_st[di, si]),
    ])


def oracle_scores(market: SyntheticMarketData, component: str = "all") -> np.ndarray:
    """[D, S] float32 oracle: E[idiosyncratic return of days t+2..t+11 | latent state at t].

    This is the expected part of the 10-day label (close t+1 -> close t+11) that the
    planted signals create; aligned with ``Panel.from_market(market)``; NaN where the
    stock has no bar. component: ``all``, ``trend``, ``reversal``, ``attention`` or
    ``intraday`` (the late-session pressure, visible only in intraday bars).
    """
    if market.latent is None:
        raise ValueError("the market was generated with keep_latent=False; no oracle available")
    return market.latent.expected_label(component)


def oracle_factor(market: SyntheticMarketData, component: str = "all") -> pl.DataFrame:
    """The oracle as a factor frame ``date, code, score`` (one row per bar)."""
    score = oracle_scores(market, component)
    bars = market.bars.select("date", "code")
    dates = np.unique(bars["date"].to_numpy())
    codes = np.unique(bars["code"].to_numpy().astype(str))
    di = np.searchsorted(dates, bars["date"].to_numpy())
    si = np.searchsorted(codes, bars["code"].to_numpy().astype(str))
    return bars.with_columns(pl.Series("score", score[di, si].astype(np.float64)))


def main(argv: list[str] | None = None) -> None:
    """CLI: time one generation, or (``--measure``) print the documented Rank ICs."""
    parser = argparse.ArgumentParser(prog="python -m market.synthetic", description=__doc__)
    parser.add_argument("--measure", action="store_true",
                        help="measure oracle / hand / random Rank IC")
    parser.add_argument("--n-stocks", type=int, default=500)
    parser.add_argument("--n-days", type=int, default=1250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.measure:
        from market.synthetic_measure import format_report, measure

        print(format_report(measure(args.n_stocks, args.n_days, args.seed)))
        return
    t0 = time.perf_counter()
    market = generate_market(args.n_stocks, args.n_days, args.seed)
    print(f"{market.source}: {market.bars.height} rows in {time.perf_counter() - t0:.2f}s")


if __name__ == "__main__":
    main()
