"""Barra CNE5-style style factors computed from prices, volume and market cap only.

Every exposure on day t uses data up to the close of t (no look-ahead). Returns are
simple daily total returns ``close / preclose - 1`` on days with a valid bar (the return
over a suspension lands on the resumption day); the risk-free rate is taken as 0. The
market return is the total-cap-weighted mean return (weights: previous day's cap).
"lam" weights are ``0.5 ** (k / halflife)`` for lag k inside the window.

| style | definition (descriptor windows in trading days) |
|---|---|
| size | LNCAP = log(total market cap) (close x total shares, last known on suspended days) |
| beta | EW-weighted time-series regression of r on the market over 252 days, half-life 63 |
| momentum | RSTR = sum_{k=21}^{21+503} lam^(k-21) log(1 + r[t-k]), half-life 126 (skips 21 days) |
| residual_volatility | 0.74 DASTD + 0.16 CMRA + 0.10 HSIGMA, orthogonalized to size and beta |
| non_linear_size | (standardized size)^3 orthogonalized to size |
| liquidity | 0.35 STOM + 0.35 STOQ + 0.30 STOA, orthogonalized to size |

DASTD: EW std of r over 252 days, half-life 42. CMRA: ``max Z - min Z`` with ``Z(T)`` the
cumulative log return of the last T months (21 days), T = 1..12, i.e. the log of the
ratio of the highest to the lowest cumulative gross return (CNE5 writes ``ln(1 + Z)``
of cumulative returns; with Z a log return that form is undefined below -100%).
HSIGMA: EW std (half-life 63) of the beta regression's residuals. Turnover = volume /
float shares; STOM = log(21 x mean daily turnover over 21 days), STOQ the same over 63,
STOA over 252 (CNE5's sums of monthly turnover; means over the days available).

Each descriptor is standardized per day before combination (:func:`standardize_styles`);
a style missing one descriptor uses the others, re-weighted. Orthogonalization is a
per-day OLS residual over the stocks where all inputs exist. Every style is finally
standardized: total-cap-weighted mean 0, equal-weighted std 1, values beyond +-3 clipped
and standardized once more. Minimum histories (``StyleConfig.*_min_periods``) apply;
where they are not met the exposure is NaN, so short data still gets exposures for the
stocks old enough, computed on the available part of each window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backtest.jit import (cmra_rows, combine_rows, ew_beta_rows, standardize_rows,
                         turnover_ratio_rows)
from backtest.kernels import (cross_sectional_residual, decay_scan, ewm_weight_sum,
                              ewm_window_sum)
from market.panel import Panel
from market.returns import forward_fill

STYLE_NAMES = ("size", "beta", "momentum", "residual_volatility", "non_linear_size",
               "liquidity")


@dataclass(frozen=True)
class StyleConfig:
    """Windows, half-lives (trading days) and minimum observations of the descriptors."""

    beta_window: int = 252
    beta_halflife: float = 63
    beta_min_periods: int = 63
    momentum_window: int = 504
    momentum_lag: int = 21
    momentum_halflife: float = 126
    momentum_min_periods: int = 126
    dastd_window: int = 252
    dastd_halflife: float = 42
    dastd_min_periods: int = 63
    month_days: int = 21
    cmra_months: int = 12
    cmra_min_months: int = 3
    liquidity_windows: tuple[int, int, int] = (21, 63, 252)
    liquidity_min_periods: int = 21
    winsor: float = 3.0


def standardize_styles(raw: np.ndarray, weights: np.ndarray, mask: np.ndarray,
                       winsor: float = 3.0) -> np.ndarray:
    """[D, S] per-day standardized exposure: weighted mean 0, equal-weighted std 1.

    raw: [D, S] exposure; weights: [D, S] (market cap) for the mean, entries that are not
    finite and positive are left out of the mean (equal weights if none is usable);
    mask: [D, S] stocks in the cross-section. Values beyond ``+-winsor`` are clipped, then
    the day is standardized again. NaN outside ``mask`` or where ``raw`` is not finite.
    Compiled, one row per task (:func:`backtest.jit.standardize_rows`).
    """
    if raw.shape != weights.shape or raw.shape != mask.shape:
        raise ValueError(f"raw, weights and mask must share a shape, got {raw.shape}, "
                         f"{weights.shape}, {mask.shape}")
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    return standardize_rows(f64(raw), f64(weights), np.ascontiguousarray(mask, dtype=bool),
                            float(winsor))


def style_factors(panel: Panel, names: Sequence[str] | None = None,
                  config: StyleConfig | None = None) -> dict[str, np.ndarray]:
    """Style exposures ``name -> [D, S] float64`` (NaN where not computable).

    names: any of :data:`STYLE_NAMES` (default all). Stocks enter day t's cross-section
    while listed (first to last bar); see the module docstring for the definitions.
    """
    wanted = list(STYLE_NAMES if names is None else names)
    unknown = sorted(set(wanted) - set(STYLE_NAMES))
    if unknown:
        raise ValueError(f"unknown style(s) {unknown}; choose from {list(STYLE_NAMES)}")
    cfg = config or StyleConfig()
    inp = _Inputs.build(panel)
    out: dict[str, np.ndarray] = {}
    size = inp.std(inp.log_cap, cfg)
    needs_beta = {"beta", "residual_volatility"} & set(wanted)
    beta_raw, hsigma = _beta_hsigma(inp, cfg) if needs_beta else (None, None)
    beta = inp.std(beta_raw, cfg) if beta_raw is not None else None
    for name in wanted:
        if name == "size":
            out[name] = size
        elif name == "beta":
            out[name] = beta
        elif name == "momentum":
            out[name] = inp.std(_momentum(inp, cfg), cfg)
        elif name == "residual_volatility":
            rv = _combine(inp, cfg, {0.74: _dastd(inp, cfg), 0.16: _cmra(inp, cfg),
                                     0.10: hsigma})
            out[name] = inp.std(cross_sectional_residual(rv, [size, beta], inp.mask), cfg)
        elif name == "non_linear_size":
            out[name] = inp.std(cross_sectional_residual(size ** 3, [size], inp.mask), cfg)
        elif name == "liquidity":
            liq = _combine(inp, cfg, dict(zip((0.35, 0.35, 0.30), _turnover_descriptors(inp, cfg))))
            out[name] = inp.std(cross_sectional_residual(liq, [size], inp.mask), cfg)
    return out


@dataclass
class _Inputs:
    """Daily returns [D, S], market return [D], observed mask, log cap, turnover."""

    ret: np.ndarray
    have: np.ndarray
    market: np.ndarray
    cap: np.ndarray
    log_cap: np.ndarray
    turnover: np.ndarray
    mask: np.ndarray
    life: np.ndarray
    have_cum: np.ndarray

    def window_count(self, cum: np.ndarray, window: int, lag: int = 0) -> np.ndarray:
        """[D, S] number of True days in rows (t - lag - window, t - lag] of a cumsum."""
        out = cum.astype(np.int64)
        out[window:] -= cum[:-window]
        if lag:
            out = np.vstack([np.zeros((lag, out.shape[1]), np.int64), out[:-lag]])
        return out

    @classmethod
    def build(cls, panel: Panel) -> "_Inputs":
        close = panel["close"].astype(np.float64)
        has_bar = np.isfinite(close)
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = close / panel["preclose"].astype(np.float64) - 1.0
            have = panel.valid & np.isfinite(ret)
            ret = np.where(have, ret, np.nan)
            shares = forward_fill(panel["total_shares"].astype(np.float64), has_bar)
            cap = forward_fill(close, has_bar) * shares
            cap = np.where(panel.listed & (cap > 0), cap, np.nan)
            log_cap = np.log(cap)
            turnover = np.where(panel.valid, panel["volume"] / panel["float_shares"], 0.0)
        prev_cap = np.vstack([np.full((1, cap.shape[1]), np.nan), cap[:-1]])
        w = np.where(have & np.isfinite(prev_cap), prev_cap, 0.0)
        wsum = w.sum(axis=1)
        market = np.divide((w * np.nan_to_num(ret)).sum(axis=1), wsum,
                           out=np.full(len(wsum), np.nan), where=wsum > 0)
        turnover = np.where(np.isfinite(turnover) & (turnover >= 0), turnover, np.nan)
        mask = np.asarray(panel.listed).copy()
        return cls(ret, have, market, cap, log_cap, turnover, mask,
                   decay_scan(mask.astype(np.int32)), decay_scan(have.astype(np.int32)))

    def std(self, raw: np.ndarray, cfg: StyleConfig) -> np.ndarray:
        return standardize_styles(raw, self.cap, self.mask, cfg.winsor)


def _combine(inp: _Inputs, cfg: StyleConfig, parts: dict[float, np.ndarray]) -> np.ndarray:
    """Weighted sum of standardized descriptors, re-weighted over those available."""
    zs = np.stack([inp.std(raw, cfg) for raw in parts.values()])
    return combine_rows(zs, np.array(list(parts), dtype=np.float64))


def _beta_hsigma(inp: _Inputs, cfg: StyleConfig) -> tuple[np.ndarray, np.ndarray]:
    """EW regression of r on the market: slope and residual std (HSIGMA), [D, S] each.

    Window sums of weights, x, y, x^2, y^2, xy (``E[t] - lam^w E[t-w]`` as in
    :func:`backtest.kernels.ewm_window_sum`); beta = cov / var(x), HSIGMA = sqrt(var(y) -
    beta cov); compiled in one pass (:func:`backtest.jit.ew_beta_rows`)."""
    obs = inp.have & np.isfinite(inp.market)[:, None]
    lam = 0.5 ** (1.0 / cfg.beta_halflife)
    return ew_beta_rows(inp.ret, obs, inp.market, inp.have_cum, inp.mask, cfg.beta_window,
                        lam, lam ** cfg.beta_window, cfg.beta_min_periods)


def _momentum(inp: _Inputs, cfg: StyleConfig) -> np.ndarray:
    logret = np.log1p(np.where(inp.have, inp.ret, 0.0))
    rstr = ewm_window_sum(logret, cfg.momentum_window, cfg.momentum_halflife, cfg.momentum_lag)
    n = inp.window_count(inp.life, cfg.momentum_window, cfg.momentum_lag)
    return np.where((n >= cfg.momentum_min_periods) & inp.mask, rstr, np.nan)


def _dastd(inp: _Inputs, cfg: StyleConfig) -> np.ndarray:
    win, hl = cfg.dastd_window, cfg.dastd_halflife
    y = np.where(inp.have, inp.ret, 0.0)
    sw = ewm_weight_sum(inp.have, win, hl)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = ewm_window_sum(y, win, hl) / sw
        var = np.maximum(ewm_window_sum(y * y, win, hl) / sw - mean * mean, 0.0)
    ok = (inp.window_count(inp.have_cum, win) >= cfg.dastd_min_periods) & inp.mask
    return np.where(ok, np.sqrt(var), np.nan)


def _cmra(inp: _Inputs, cfg: StyleConfig) -> np.ndarray:
    """CMRA = max_T Z(T) - min_T Z(T) over the months T inside the stock's listed life.

    ``Z(T) = C[t] - C[t - 21 T]`` with C the cumulative log return, so the range of Z is
    the range of the lagged ``C[t - 21 T]`` (C[t] cancels): a max / min over the lags
    that fall inside the listed life, compiled (:func:`backtest.jit.cmra_rows`).
    """
    logret = np.log1p(np.where(inp.have, inp.ret, 0.0))
    return cmra_rows(logret, np.ascontiguousarray(inp.life), np.ascontiguousarray(inp.mask),
                     cfg.month_days, cfg.cmra_months, cfg.cmra_min_months)


def _turnover_descriptors(inp: _Inputs, cfg: StyleConfig) -> list[np.ndarray]:
    """STOM, STOQ, STOA: log(21 x mean daily turnover) over 21 / 63 / 252 listed days
    (window sums compiled: :func:`backtest.jit.turnover_ratio_rows`)."""
    ratios = turnover_ratio_rows(np.ascontiguousarray(inp.turnover, dtype=np.float64),
                                 np.ascontiguousarray(inp.mask),
                                 np.array(cfg.liquidity_windows, dtype=np.int64),
                                 cfg.month_days, cfg.liquidity_min_periods)
    out = []
    for ratio in ratios:
        with np.errstate(divide="ignore", invalid="ignore"):
            val = np.log(ratio)  # numpy's log, as before (NaN stays NaN)
        val[~np.isfinite(val)] = np.nan  # log(0) = -inf: no turnover, no exposure
        out.append(val)
    return out
