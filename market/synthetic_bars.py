"""Daily bars (open, high, low, vwap, volume, amount) from the per-day close-path quantities.

Input per stock-day: preclose, close, the desired return, the limit, the day's total
volatility ``sigma`` and the attention shock. Each day's bar is built from independent
per-day draws (overnight share of the return, upper / lower excursions, VWAP position,
turnover), so an intraday generator can later split the same day into 60- / 30-minute
bars (a bridge from open to close touching high and low, volume distributed over the
bars) without changing the daily bars.

- open = clip(round(preclose * (1 + 0.3 * r + 0.35 * sigma * N)), limit-down, limit-up)
- high / low = max / min(open, close) +- 0.4 * sigma * preclose * |N|, clipped to the limits
- a day whose desired return exceeds 1.5x the limit (limit-up / limit-down streaks, IPO
  days after the first) trades at one price: open = high = low = close, thin volume
- vwap = (open + high + low + 2 close) / 5 + 0.1 (high - low) N, clipped to [low, high]
- log turnover = log(stock median) + AR(1) liquidity (phi 0.95, sd 0.4)
  + 0.5 log(vol regime) + 0.35 (min(|r| / sigma, 6) - 0.8) + attention shock;
  volume = turnover * float shares in lots of 100; amount = vwap * volume
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.synthetic_paths import Paths, round2
from market.synthetic_signals import Factors, StockTraits, SyntheticLatent, SyntheticParams, ar1

CHUNK_DAYS = 256  # days per vectorized block (bounds the temporaries' memory)
LIQUIDITY_PHI, LIQUIDITY_SD = 0.95, 0.4


@dataclass
class DailyBars:
    """[D, S] float64 arrays, NaN where the stock has no bar."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    vwap: np.ndarray
    volume: np.ndarray
    amount: np.ndarray


def day_sigma(traits: StockTraits, factors: Factors, p: SyntheticParams,
              days: slice) -> np.ndarray:
    """[d, S] float32 total daily return volatility of each stock (for bar shapes)."""
    reg = factors.vol_regime[days, None]
    var = ((traits.beta * p.market_vol) ** 2 * reg ** 2 + p.industry_vol ** 2 * reg
           + (traits.size_z * p.size_factor_vol) ** 2 * reg + traits.idio_vol ** 2 * reg)
    return np.sqrt(var).astype(np.float32)


def limits(paths: Paths, traits: StockTraits, p: SyntheticParams, days: slice) -> np.ndarray:
    """[d, S] daily price limit (IPO day, ST or main board)."""
    t = np.arange(days.start, days.stop)[:, None]
    st_limit = np.where(paths.is_st[days], p.st_price_limit, p.price_limit)
    return np.where(traits.list_day[None, :] == t, p.ipo_price_limit, st_limit)


def daily_bars(rng: np.random.Generator, paths: Paths, traits: StockTraits, factors: Factors,
               latent: SyntheticLatent, p: SyntheticParams) -> DailyBars:
    """Build all bars, ``CHUNK_DAYS`` days at a time."""
    d, s = paths.close.shape
    out = DailyBars(*(np.full((d, s), np.nan) for _ in range(6)))
    liquidity = ar1(rng.standard_normal((d, s), dtype=np.float32)
                    * np.float32(LIQUIDITY_SD * np.sqrt(1 - LIQUIDITY_PHI ** 2)), LIQUIDITY_PHI,
                    y0=rng.standard_normal(s) * LIQUIDITY_SD)
    for lo in range(0, d, CHUNK_DAYS):
        days = slice(lo, min(lo + CHUNK_DAYS, d))
        _chunk(rng, paths, traits, factors, latent, p, days, liquidity[days], out)
    return out


def _chunk(rng: np.random.Generator, paths: Paths, traits: StockTraits, factors: Factors,
           latent: SyntheticLatent, p: SyntheticParams, days: slice, liquidity: np.ndarray,
           out: DailyBars) -> None:
    pre, close, present = paths.preclose[days], paths.close[days], paths.present[days]
    limit = limits(paths, traits, p, days)
    up, dn = round2(pre * (1 + limit)), np.maximum(round2(pre * (1 - limit)), 0.01)
    sigma = day_sigma(traits, factors, p, days)
    r = close / pre - 1
    desired = paths.desired[days]
    first = traits.list_day[None, :] == np.arange(days.start, days.stop)[:, None]
    one_price = ~first & (((close >= up) & (desired >= 1.5 * limit))
                          | ((close <= dn) & (desired <= -1.5 * limit)))
    draws = rng.standard_normal((4, *close.shape), dtype=np.float32)
    opn = np.clip(round2(pre * (1 + 0.3 * r + 0.35 * sigma * draws[0])), dn, up)
    high = np.minimum(round2(np.maximum(opn, close) + 0.4 * sigma * pre * np.abs(draws[1])), up)
    low = np.maximum(round2(np.minimum(opn, close) - 0.4 * sigma * pre * np.abs(draws[2])), dn)
    opn, high, low = (np.where(one_price, close, x) for x in (opn, high, low))
    vwap = np.clip((opn + high + low + 2 * close) / 5 + 0.1 * (high - low) * draws[3], low, high)
    log_to = (np.log(traits.turnover) + liquidity + 0.5 * np.log(factors.vol_regime[days, None])
              + 0.35 * (np.minimum(np.abs(r) / sigma, 6.0) - 0.8) + latent.attention[days])
    turnover = np.clip(np.exp(log_to), 1e-4, 0.5) * np.where(one_price, 0.05, 1.0)
    volume = np.maximum(np.round(turnover * paths.float_shares[days] / 100), 1) * 100
    for name, value in (("open", opn), ("high", high), ("low", low), ("vwap", vwap),
                        ("volume", volume), ("amount", vwap * volume)):
        getattr(out, name)[days] = np.where(present, value, np.nan)
