"""Measure the planted predictive structure of the synthetic market (numpy only).

Label (SPEC 1): ``forward_returns(panel, 10)`` (close t+1 -> close t+11), neutralized
per day against log total market cap and industry dummies over the stocks with a bar
at t, then ranked. Scores are evaluated by the mean daily Rank IC (Spearman) over the
stocks with a bar at t, a finite label and at least ``MIN_HISTORY`` trading days since
listing, on days ``t >= MIN_HISTORY``.

Reference scores:
- oracle: ``oracle_scores`` (E[idiosyncratic label return | latent state]), also per component;
- hand: ``z(momentum t-60..t-5) + z(-return t-5..t) * 2 * (1 - size percentile)``, where
  z is the daily cross-sectional z-score of ranks; a simple price-only factor;
- random: i.i.d. normal scores (its mean IC must be ~0).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from market.panel import Panel
from market.returns import cross_sectional_rank, forward_fill, forward_returns, neutralize
from market.returns import daily_rank_ic as _daily_rank_ic
from market.synthetic import generate_market, oracle_scores

MIN_HISTORY = 60
MIN_STOCKS = 20
HORIZON = 10


def daily_rank_ic(score: np.ndarray, label: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[D] daily Rank IC over ``mask`` (:func:`market.returns.daily_rank_ic`, >= MIN_STOCKS)."""
    return _daily_rank_ic(score, label, mask, MIN_STOCKS)


def neutralized_label(panel: Panel, horizon: int = HORIZON) -> np.ndarray:
    """[D, S] ranked label: forward return neutralized vs log market cap + industry."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_cap = np.log(panel.market_cap())
    resid = neutralize(forward_returns(panel, horizon), log_cap, panel.industry, panel.valid)
    with warnings.catch_warnings():  # the last days have no label: NaN rows
        warnings.simplefilter("ignore", RuntimeWarning)
        return cross_sectional_rank(resid, panel.valid)


def history_mask(panel: Panel, min_history: int = MIN_HISTORY) -> np.ndarray:
    """[D, S] bar at t and at least ``min_history`` trading days since listing; t >= min_history."""
    since_listing = np.cumsum(panel.listed, axis=0)
    ok = panel.valid & (since_listing > min_history)
    ok[:min_history] = False
    return ok


def hand_factor(panel: Panel) -> np.ndarray:
    """[D, S] z(60-to-5-day momentum) + z(minus 5-day return) weighted towards small caps."""
    has_bar = np.isfinite(panel["adj_close"])
    price = forward_fill(panel["adj_close"], has_bar)
    with np.errstate(divide="ignore", invalid="ignore"):
        momentum = np.log(_lag(price, 5) / _lag(price, 60))
        recent = np.log(price / _lag(price, 5))
        log_cap = np.log(panel.market_cap())
    valid = panel.valid
    with warnings.catch_warnings():  # the first days have no momentum: NaN rows
        warnings.simplefilter("ignore", RuntimeWarning)
        size_pct = cross_sectional_rank(log_cap, valid) / np.sqrt(12) + 0.5  # uniform [0, 1]
        small = 2 * (1 - size_pct)
        return cross_sectional_rank(momentum, valid) - small * cross_sectional_rank(recent, valid)


def _lag(a: np.ndarray, k: int) -> np.ndarray:
    """[D, S] ``a`` shifted k days later (row t holds a[t-k]), NaN-padded."""
    return np.vstack([np.full((k, a.shape[1]), np.nan), a[:-k]])


def summarize(ic: np.ndarray) -> dict[str, float]:
    ic = ic[np.isfinite(ic)]
    return {"mean": float(ic.mean()), "icir": float(ic.mean() / ic.std(ddof=1)),
            "win_rate": float((ic > 0).mean()), "days": int(len(ic))}


def measure(n_stocks: int = 500, n_days: int = 1250, seed: int = 0) -> dict[str, dict[str, float]]:
    """Rank IC summaries (mean, ICIR, win rate) of the reference scores on one market."""
    t0 = time.perf_counter()
    market = generate_market(n_stocks, n_days, seed)
    seconds = time.perf_counter() - t0
    panel = Panel.from_market(market)
    label, mask = neutralized_label(panel), history_mask(panel)
    scores = {f"oracle_{c}": oracle_scores(market, c)
              for c in ("all", "trend", "reversal", "attention", "intraday")}
    scores["hand"] = hand_factor(panel)
    scores["random"] = np.random.default_rng(seed + 1).standard_normal(panel.shape)
    size = np.log(panel.market_cap())
    out = {name: summarize(daily_rank_ic(s, label, mask)) for name, s in scores.items()}
    with warnings.catch_warnings():  # warm-up days are empty: NaN rows
        warnings.simplefilter("ignore", RuntimeWarning)
        pct = cross_sectional_rank(size, mask) / np.sqrt(12) + 0.5
    for name in ("oracle_all", "hand"):  # by size tercile: the reversal lives in small caps
        for k, (lo, hi) in enumerate(((0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1.01))):
            group = mask & (pct >= lo) & (pct < hi)
            ic = daily_rank_ic(scores[name], label, group)
            out[f"{name}_size_tercile{k + 1}"] = summarize(ic)
    out["generation"] = {"seconds": seconds, "rows": market.bars.height}
    return out


def format_report(result: dict[str, dict[str, float]]) -> str:
    """Markdown table of ``measure``'s result."""
    lines = ["| score | mean Rank IC | ICIR | IC > 0 | days |", "|---|---|---|---|---|"]
    for name, r in result.items():
        if "mean" in r:
            lines.append(f"| {name} | {r['mean']:.4f} | {r['icir']:.2f} | {r['win_rate']:.2f} "
                         f"| {r['days']} |")
    gen = result.get("generation", {})
    lines.append(f"\ngeneration: {gen.get('seconds', float('nan')):.2f}s, {gen.get('rows')} rows")
    return "\n".join(lines)
