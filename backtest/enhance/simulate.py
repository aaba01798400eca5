"""Weekly-rebalanced enhancement portfolio: solve, trade, drift, pay costs, track NAV.

Timing: the factor of the last trading day of each week (the signal day s) is traded on
the next trading day t (the first of the next week) at its close or VWAP. Between trades
the holdings drift with prices: a position's value is its weight times the growth of
its adjusted price since the trade; the portfolio's daily return is computed for all
holdings at once from those growths (no loop over days or stocks).

Costs: ``cost_round_trip / 2`` per unit of traded value on each side, i.e. the NAV is
multiplied by ``1 - cost_round_trip / 2 * Σ|w - w⁰|`` at each trade (the first build,
from cash, trades 1.0). Pre-trade weights ``w⁰`` are the drifted weights at the trade
price. When a rebalance is infeasible even after the ladder, the portfolio holds its
drifted weights (no trade) and the date is recorded with step -1; an infeasible first
build raises :class:`~backtest.enhance.problem.InfeasibleError`.

NAVs start at the close of the first trade day: portfolio ``1 - cost`` (times the VWAP to
close growth when trading at VWAP), benchmark 1.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from backtest.enhance.constraints import (DEFAULT_LADDER, EnhanceConstraints, RelaxStep,
                                          TradingSettings)
from backtest.enhance.market import EnhanceMarket, weekly_schedule
from backtest.enhance.problem import EnhanceProblem, InfeasibleError
from backtest.enhance.realized import realized_constraints

log = logging.getLogger(__name__)


@dataclass
class EnhanceResult:
    """Output of :func:`simulate`.

    daily: ``date, port_ret, bench_ret, excess_ret, nav, bench_nav`` from the first trade
        day (excess = port - bench per day).
    rebalances: one row per rebalance: ``signal_date, trade_date, step, step_name,
        seconds, cost`` and the realized constraint values (``realized.py``).
    weights: ``trade_date, code, weight, bench_weight``: post-trade target weights of
        every stock held or in the benchmark (exactly the weights traded to).
    """

    daily: pl.DataFrame
    rebalances: pl.DataFrame
    weights: pl.DataFrame
    constraints: EnhanceConstraints
    trading: TradingSettings
    info: dict[str, Any] = field(default_factory=dict)


def _rebalance(mkt: EnhanceMarket, s: int, t: int, w0: np.ndarray, cons: EnhanceConstraints,
               trading: TradingSettings, ladder: tuple[RelaxStep, ...]
               ) -> tuple[np.ndarray, dict[str, Any], np.ndarray, np.ndarray]:
    """Target weights [S] for one rebalance, its record, and its stocks' (idx, b)."""
    inp = mkt.cross_section(s, t, w0, cons)
    prob = EnhanceProblem(inp, cons, trading.solver)
    target = w0.copy()
    try:
        res = prob.solve(ladder)
        w, step, name, seconds = res.weights, res.step, res.step_name, res.seconds
    except InfeasibleError as err:
        if w0.sum() == 0:
            raise InfeasibleError(f"first build on {mkt.dates[t]}: {err}") from err
        log.warning("rebalance %s infeasible, holding: %s", mkt.dates[t], err)
        w, step, name, seconds = inp.current, -1, f"hold: {err}", float("nan")
    target[inp.stock] = w
    record = {"signal_date": _date(mkt.dates[s]), "trade_date": _date(mkt.dates[t]), "step": step,
              "step_name": name, "seconds": seconds, "n_names": len(inp.mu),
              **realized_constraints(w, inp, cons, prob.lo, prob.hi)}
    return target, record, inp.stock, inp.bench


def _date(day: np.datetime64) -> dt.date:
    return np.datetime64(day, "D").item()


def _hold(mkt: EnhanceMarket, w: np.ndarray, basis: np.ndarray, days: np.ndarray
          ) -> np.ndarray:
    """[len(days)] value multiples Σᵢ wᵢ closeᵢ(u) / basisᵢ of the holdings ``w``."""
    held = np.flatnonzero(w > 0)
    growth = mkt.close[np.ix_(days, held)] / basis[held]  # [L, n_held]
    return growth @ w[held]


def _drift(mkt: EnhanceMarket, w: np.ndarray, basis: np.ndarray, t: int
           ) -> tuple[np.ndarray, float]:
    """Pre-trade weights at day t's trade price and the value multiple since ``basis``."""
    if w.sum() == 0:
        return w, 1.0
    value = w * np.where(w > 0, mkt.trade[t] / basis, 0.0)
    total = float(value.sum())
    return value / total, total


def simulate(mkt: EnhanceMarket, bench_ret: np.ndarray, cons: EnhanceConstraints,
             trading: TradingSettings, ladder: tuple[RelaxStep, ...] = DEFAULT_LADDER,
             start: str | None = None, end: str | None = None) -> EnhanceResult:
    """Run the weekly enhancement (module docstring) between ``start`` and ``end`` (ISO).

    bench_ret: [D] daily benchmark returns (``benchmark.benchmark_returns``).
    """
    signal, trade = _schedule(mkt, start, end)
    last = _last_day(mkt.dates, trade[-1], end)
    nav = np.full(len(mkt.dates), np.nan)
    w, basis, value = np.zeros(len(mkt.codes)), np.ones(len(mkt.codes)), 1.0
    records, frames, half = [], [], trading.cost_round_trip / 2
    for k, (s, t) in enumerate(zip(signal, trade)):
        w0, growth = _drift(mkt, w, basis, t)
        value *= growth
        target, rec, idx, b = _rebalance(mkt, s, t, w0, cons, trading, ladder)
        rec["cost"] = half * float(np.abs(target - w0).sum())
        rec["initial"] = k == 0
        value *= 1 - rec["cost"]
        w, basis = target, mkt.trade[t].copy()
        stop = trade[k + 1] if k + 1 < len(trade) else last + 1
        first = t if trading.trade_price == "vwap" else t + 1
        days = np.arange(first, stop)
        nav[days] = value * _hold(mkt, w, basis, days)
        if trading.trade_price == "close":
            nav[t] = value
        records.append(rec)
        keep = (w[idx] > 0) | (b > 0)
        frames.append(pl.DataFrame({"trade_date": np.repeat(mkt.dates[t], keep.sum()),
                                    "code": mkt.codes[idx[keep]], "weight": w[idx[keep]],
                                    "bench_weight": b[keep]}))
    return EnhanceResult(_daily(mkt.dates, nav, bench_ret, trade[0], last),
                         pl.DataFrame(records), pl.concat(frames), cons, trading)


def _schedule(mkt: EnhanceMarket, start: str | None, end: str | None
              ) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(mkt.score).any(axis=1) & (mkt.bench.sum(axis=1) > 0)
    signal, trade = weekly_schedule(mkt.dates, ok)
    keep = np.ones(len(signal), bool)
    if start is not None:
        keep &= mkt.dates[signal] >= np.datetime64(start, "D")
    if end is not None:
        keep &= mkt.dates[trade] <= np.datetime64(end, "D")
    if not keep.any():
        raise ValueError(f"no weekly signal day with factor scores and benchmark members "
                         f"between {start} and {end}")
    return signal[keep], trade[keep]


def _last_day(dates: np.ndarray, last_trade: int, end: str | None) -> int:
    """The last trading day of the week of the last trade (the next signal day), or ``end``."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    week = (days - 4) // 7
    last = int(np.flatnonzero(week == week[last_trade])[-1])
    if end is not None:
        last = min(last, int(np.searchsorted(dates, np.datetime64(end, "D"), "right")) - 1)
    return max(last, last_trade)


def _daily(dates: np.ndarray, nav: np.ndarray, bench_ret: np.ndarray, first: int,
           last: int) -> pl.DataFrame:
    sl = slice(first, last + 1)
    values = nav[sl]
    port = np.diff(values, prepend=1.0) / np.concatenate([[1.0], values[:-1]])
    bench = np.asarray(bench_ret, np.float64)[sl].copy()
    bench[0] = 0.0  # the benchmark NAV starts at 1 at the first trade day's close
    bench = np.nan_to_num(bench)
    return pl.DataFrame({"date": dates[sl], "port_ret": port, "bench_ret": bench,
                         "excess_ret": port - bench, "nav": values,
                         "bench_nav": np.cumprod(1 + bench)})
