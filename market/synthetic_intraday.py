"""Intraday bars of the synthetic market, consistent with its daily bars (generated lazily).

Each stock-day's daily bar (open O, high H, low L, close C, VWAP V, volume) is split
into 8 half-hour bars; the 60-minute bars merge pairs of them exactly. The daily bars
are not changed, and nothing in them depends on the intraday draws.

1. **Path.** Bar closes ``P_1..P_8`` in log price relative to the open:
   ``x_k = (k/8) log(C/O) + B_k - shape * R * l * g_k`` where ``B`` is a Brownian bridge
   (``B_0 = B_8 = 0``, step sd ``0.35 R``), ``R = log(H/L)`` the day's log range,
   ``l`` the day's late-session pressure shock (``market.latent.intraday``, N(0, 1)) and
   ``g`` a tent that rises from 0 at the open to 1 at 14:00 (``P_6``) and returns to 0 at
   the close. A stock under late buying pressure (``l > 0``) thus sags into 14:00 and
   rallies in the last hour: the last hour's return ``log(C / P_6)`` carries
   ``+shape * R * l``. The path is mapped into ``[L, H]`` by a monotone piecewise-linear
   map that fixes ``O`` and ``C`` and sends the path's extremes to ``H`` and ``L``, and
   rounded to the 0.01 CNY tick.
2. **Bars.** Bar b opens at ``P_{b-1}`` (``P_0 = O``) and closes at ``P_b``; its high /
   low add an excursion ``0.1 (H - L) |N|`` (clipped to the day's range); the bar with
   the highest (lowest) body touches ``H`` (``L``) exactly.
3. **Volume.** A U-shaped profile (heavy at the open and into the close) times
   ``exp(0.3 N)`` noise, split in whole lots of 100 shares that sum exactly to the daily
   volume (largest-remainder rounding).
4. **VWAP.** Bar VWAP ``= low + lambda (high - low)`` with one ``lambda`` per stock-day
   chosen so that the volume-weighted bar VWAPs equal the daily VWAP (clipped to [0, 1];
   when clipped the daily VWAP is only approximated).

The late-session pressure feeds future daily returns (``SyntheticLatent.expected_idio``:
``+ intraday_strength * (1 - rho_l) * L``, ``L[t] = rho_l L[t-1] + l[t-1]``), so only a
model that sees intraday bars can use it. See docs/multigranularity.md.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from market.intraday import BAR_FIELDS, IntradayBars, bars_per_day
from market.synthetic import SyntheticMarketData
from market.synthetic_paths import round2

CHUNK_DAYS = 128  # days per vectorized block (bounds the temporaries' memory)
BRIDGE_SD = 0.35  # bridge step sd in units of the day's log range
EXCURSION = 0.1  # intrabar high/low excursion in units of the day's range
VOLUME_NOISE = 0.3
U_SHAPE = np.array([1.7, 1.1, 0.9, 0.8, 0.9, 0.9, 1.0, 1.6])  # 30-min volume profile
TENT = np.array([1, 2, 3, 4, 5, 6, 3, 0]) / 6  # g_k at P_1..P_8: peak at 14:00 (P_6)
DAILY = ("open", "high", "low", "close", "vwap", "volume")


def synthetic_intraday(market: SyntheticMarketData, granularity: str = "30min",
                       seed: int | None = None) -> IntradayBars:
    """Dense intraday bars ``[D, S, B, 6]`` of a synthetic market, aligned with its panel.

    granularity: ``30min`` (8 bars a day) or ``60min`` (4, pairs of the 30-min bars).
    seed: stream of the intraday draws; None = the market's seed. Deterministic for
    given arguments. Requires the market's ``intraday_shock`` (set by generate_market).
    """
    bars_per_day(granularity)
    if market.intraday_shock is None:
        raise ValueError("the market has no intraday shocks; generate it with "
                         "market.synthetic.generate_market")
    dates, codes, daily = _dense_daily(market.bars)
    if market.intraday_shock.shape != daily["close"].shape:
        raise ValueError("intraday shocks do not align with the market's bars")
    rng = np.random.default_rng([market.seed if seed is None else seed, 0x1A7])
    shape = market.params.intraday_shape
    values = np.full((*daily["close"].shape, len(U_SHAPE), len(BAR_FIELDS)), np.nan,
                     np.float32)
    for lo in range(0, len(dates), CHUNK_DAYS):
        days = slice(lo, min(lo + CHUNK_DAYS, len(dates)))
        values[days] = _chunk(rng, {k: v[days] for k, v in daily.items()},
                              market.intraday_shock[days], shape)
    bars = IntradayBars("30min", dates, codes, values)
    return bars if granularity == "30min" else bars.aggregate(granularity)


def _dense_daily(bars: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Calendar, sorted codes and [D, S] float64 daily fields (NaN where no bar)."""
    dates = np.unique(bars["date"].to_numpy()).astype("datetime64[D]")
    codes = np.unique(bars["code"].to_numpy().astype(str))
    di = np.searchsorted(dates, bars["date"].to_numpy().astype("datetime64[D]"))
    si = np.searchsorted(codes, bars["code"].to_numpy().astype(str))
    out = {}
    for name in DAILY:
        arr = np.full((len(dates), len(codes)), np.nan)
        arr[di, si] = bars[name].to_numpy()
        out[name] = arr
    return dates, codes, out


def _chunk(rng: np.random.Generator, day: dict[str, np.ndarray], shock: np.ndarray,
           shape: float) -> np.ndarray:
    """[d, S, 8, F] bars of a block of days."""
    o, h, lo, c = (day[k][..., None] for k in ("open", "high", "low", "close"))  # [d, S, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rng_log = np.log(h / lo)  # [d, S, 1] day's log range R
        steps = rng.standard_normal((*shock.shape, 8)) * BRIDGE_SD * rng_log
        walk = np.cumsum(steps, axis=-1)  # [d, S, 8]
        k = np.arange(1, 9) / 8
        bridge = walk - k * walk[..., -1:]
        x = k * np.log(c / o) + bridge - shape * rng_log * shock[..., None] * TENT
        path = _fit_range(o * np.exp(x), o, c, h, lo)  # [d, S, 8]
    path = round2(path)
    path[..., -1] = c[..., 0]
    opn = np.concatenate([o, path[..., :-1]], axis=-1)  # [d, S, 8]
    top, bottom = np.maximum(opn, path), np.minimum(opn, path)
    exc = np.abs(rng.standard_normal((2, *shock.shape, 8))) * EXCURSION * (h - lo)
    high = np.minimum(round2(top + exc[0]), h)
    low = np.maximum(round2(bottom - exc[1]), lo)
    # the day's high / low happen in the bar whose body reaches highest / lowest
    np.put_along_axis(high, np.nanargmax(np.nan_to_num(top, nan=-1.0), -1)[..., None], h, -1)
    np.put_along_axis(low, np.nanargmin(np.nan_to_num(bottom, nan=1e9), -1)[..., None], lo, -1)
    weight = _volume_weights(rng, low, high, day["vwap"])
    volume = _split_volume(weight, day["volume"])
    vwap = _bar_vwap(low, high, volume, day["vwap"], path)
    return np.stack([opn, high, low, path, vwap, volume], axis=-1).astype(np.float32)


def _fit_range(path: np.ndarray, o: np.ndarray, c: np.ndarray, h: np.ndarray,
               lo: np.ndarray) -> np.ndarray:
    """Monotone piecewise-linear map of path values [d, S, 8] into [L, H] that keeps
    every value between O and C and sends the path's max (min) to H (L)."""
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    pmax = np.maximum(path.max(-1, keepdims=True), top)
    pmin = np.minimum(path.min(-1, keepdims=True), bottom)
    up = top + (path - top) * (h - top) / np.where(pmax > top, pmax - top, 1.0)
    down = bottom - (bottom - path) * (bottom - lo) / np.where(pmin < bottom, bottom - pmin, 1.0)
    return np.where(path > top, up, np.where(path < bottom, down, path))


def _volume_weights(rng: np.random.Generator, low: np.ndarray, high: np.ndarray,
                    vwap: np.ndarray) -> np.ndarray:
    """[d, S, 8] volume shares: U-shaped profile with noise, tilted when needed so that
    the daily VWAP lies between the volume-weighted bar lows and highs.

    If the daily VWAP V is below the weighted lows, a share ``a`` of the volume moves to
    the bar that touches the day's low L, with ``a`` solving
    ``(1 - a) sum(w low) + a L = V`` (``L <= V`` makes ``a`` a valid share); likewise
    towards the day's high.
    """
    weight = U_SHAPE * np.exp(VOLUME_NOISE * rng.standard_normal(low.shape))
    weight /= weight.sum(-1, keepdims=True)
    v = vwap[..., None]
    for edge, pick, sign in ((low, np.argmin, 1.0), (high, np.argmax, -1.0)):
        i = pick(np.nan_to_num(edge, nan=1.0), -1)[..., None]
        extreme = np.take_along_axis(edge, i, -1)  # [d, S, 1] L (or H)
        avg = (weight * edge).sum(-1, keepdims=True)
        need, gap = sign * (avg - v), sign * (avg - extreme)  # need > 0: V beyond the edge
        ok = (need > 0) & (gap > 1e-9 * np.abs(extreme))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(ok, np.clip(need / np.where(ok, gap, 1.0), 0.0, 1.0), 0.0)
        weight *= 1 - share
        np.put_along_axis(weight, i, np.take_along_axis(weight, i, -1) + share, -1)
    return weight


def _split_volume(weight: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """[d, S, 8] bar volumes in lots of 100 summing exactly to the daily volume [d, S]."""
    lots = np.nan_to_num(np.round(volume / 100))[..., None]  # [d, S, 1]
    raw = weight * lots
    base = np.floor(raw)
    short = lots - base.sum(-1, keepdims=True)  # [d, S, 1] whole lots still to place
    rank = np.argsort(np.argsort(base - raw, axis=-1), axis=-1)  # 0 = largest remainder
    out = (base + (rank < short)) * 100.0
    return np.where(np.isfinite(volume)[..., None], out, np.nan)


def _bar_vwap(low: np.ndarray, high: np.ndarray, volume: np.ndarray, vwap: np.ndarray,
              close: np.ndarray) -> np.ndarray:
    """Bar VWAPs [d, S, 8] whose volume-weighted mean is the daily VWAP [d, S] when feasible."""
    with np.errstate(invalid="ignore", divide="ignore"):
        span = (volume * (high - low)).sum(-1)
        lam = (vwap * volume.sum(-1) - (volume * low).sum(-1)) / span
    lam = np.where(span > 0, np.clip(lam, 0.0, 1.0), 0.5)[..., None]
    return np.where(high > low, low + lam * (high - low), close)
