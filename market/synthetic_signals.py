"""Latent return model of the synthetic market: parameters, stock traits, factors, signals.

Everything here is vectorized over stocks and independent of prices and market
frictions (price limits, suspensions, corporate actions, ST live in
``market.synthetic_bars``). Returns are simple daily fractions. The planted predictive
structure (see ``docs/synthetic_market.md``) is the expected idiosyncratic return

    mu[t, i] = drift[t, i]                                   # slow AR(1) trend
               - kappa[t, i] * (1 - rho) * reversal_state[t, i]  # size-dependent reversal
               - gamma * (1 - rho_v) * attention_state[t, i]     # abnormal-volume reversal
               + zeta * (1 - rho_l) * intraday_state[t, i]       # late-session pressure

with ``reversal_state[t] = sum_k>=1 rho^(k-1) * noise[t-k]`` (an exponentially
weighted sum of past idiosyncratic shocks: a shock is reversed by ``kappa`` in total,
spread over the following days with mean lag ``1 / (1 - rho)``) and likewise
``attention_state`` over past log-volume attention shocks, and ``intraday_state`` over
past late-session pressure shocks, which only the intraday bars show (the last hour's
return; ``market.synthetic_intraday``): the daily bars do not depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtr

# the 10-day label of day t (close t+1 -> close t+11) is the return of days t+2 .. t+11
LABEL_DAYS = (2, 11)
BURN_IN = 40  # days simulated before the sample so that the AR states start stationary


@dataclass(frozen=True)
class SyntheticParams:
    """Knobs of the data-generating process (daily units; returns are fractions)."""

    market_vol: float = 0.014  # long-run daily volatility of the market factor
    market_drift: float = 0.0003  # mean daily market return
    garch_alpha: float = 0.08  # GARCH(1,1) reaction to the last squared shock
    garch_beta: float = 0.90  # GARCH(1,1) persistence
    tail_df: float = 3.5  # Student-t degrees of freedom of every shock (fat tails)
    n_industries: int = 10  # number of industries (each with its own factor)
    industry_vol: float = 0.007  # daily volatility of an industry factor
    size_factor_vol: float = 0.004  # daily volatility of the small-minus-big factor
    beta_sd: float = 0.25  # cross-sectional std of market betas (mean 1)
    idio_vol: float = 0.022  # median daily idiosyncratic volatility
    idio_vol_size_slope: float = 0.25  # idio vol x exp(-slope * size z): small caps riskier
    idio_vol_of_vol: float = 0.45  # std of each stock's log idio-vol AR(1) (stock-level clustering)
    idio_vol_half_life: float = 30.0  # half-life (days) of the log idio-vol AR(1)
    trend_vol: float = 0.0011  # stationary std of the latent daily drift
    trend_half_life: float = 40.0  # half-life (days) of the latent drift AR(1)
    reversal_strength: float = 0.6  # kappa of the smallest caps: share of a shock reversed later
    reversal_decay: float = 0.8  # rho: reversal spread over later days, mean lag 1/(1-rho) = 5
    attention_vol: float = 0.35  # std of the daily log-volume attention shock
    attention_strength: float = 0.01  # gamma: return reversed per unit of log attention
    attention_decay: float = 0.8  # rho_v of the attention state
    intraday_strength: float = 0.005  # zeta: return per unit of late-session pressure state
    intraday_decay: float = 0.8  # rho_l of the late-session pressure state
    intraday_shape: float = 0.6  # planted last-hour move, in units of the day's log range
    price_limit: float = 0.10  # daily limit |close / preclose - 1| on the main boards
    st_price_limit: float = 0.05  # daily limit of ST stocks
    ipo_price_limit: float = 0.44  # limit on the listing day, relative to the issue price
    listing_fraction: float = 0.2  # share of stocks that list during the sample
    ipo_limit_up_days: float = 3.0  # mean number of limit-up days after the listing day
    suspension_rate: float = 0.005  # probability per stock-day that a suspension spell starts
    suspension_median_days: float = 4.0  # median spell length (log-normal, sigma 1)
    st_entry_fraction: float = 0.03  # at each annual review: worst trailing-year performers -> ST
    st_delist_prob: float = 0.2  # at each annual review: an ST stock is scheduled for delisting
    st_exit_prob: float = 0.4  # at each annual review: an ST stock loses its ST status
    dividend_prob: float = 0.5  # per stock and year: a cash dividend (ex-date June-August)
    split_prob: float = 0.06  # per stock and year: a bonus/split (10-for-2 .. 10-for-10)
    issuance_prob: float = 0.04  # per stock and year: new (locked) shares, +5..30% of total
    unlock_prob: float = 0.1  # per stock and year: part of the locked shares become float
    turnover_median: float = 0.012  # median daily turnover (volume / float shares)


@dataclass
class StockTraits:
    """Static per-stock characteristics, each [S], in sorted-code order."""

    industry: np.ndarray  # int industry id
    beta: np.ndarray  # market beta
    size_z: np.ndarray  # z-score of the initial log market cap (size-factor loading is -size_z)
    idio_vol: np.ndarray  # daily idiosyncratic volatility (before the volatility regime)
    price0: np.ndarray  # close before the sample, or the IPO issue price
    total_shares0: np.ndarray
    float_shares0: np.ndarray
    list_day: np.ndarray  # first trading day index (0 = listed before the sample)
    ipo_pop: np.ndarray  # desired cumulative return of the first days after listing (0 if old)
    turnover: np.ndarray  # median daily turnover


@dataclass
class Factors:
    """Common daily factor returns."""

    market: np.ndarray  # [D] market factor return
    vol_regime: np.ndarray  # [D] conditional market vol / long-run vol (GARCH)
    industry: np.ndarray  # [D, K] industry factor returns
    size: np.ndarray  # [D] small-minus-big factor return


@dataclass
class SyntheticLatent:
    """Latent state, [D, S] float32 aligned with ``Panel.from_market`` (dates, sorted codes).

    drift: a[t], the slow idiosyncratic drift in day t's expected return.
    noise: u[t], day t's idiosyncratic shock (fat-tailed, volatility-clustered).
    reversal_state: R[t] = rho * R[t-1] + u[t-1].
    attention: b[t], day t's log-volume attention shock (seen in the volume).
    attention_state: B[t] = rho_v * B[t-1] + b[t-1].
    kappa: reversal strength of day t (a function of the size percentile at t-1).
    present: the stock has a bar that day.
    intraday: l[t], day t's late-session pressure shock (N(0, 1)); shapes only the
        intraday path (the last hour's return), never the daily bar.
    intraday_state: L[t] = rho_l * L[t-1] + l[t-1].
    """

    drift: np.ndarray
    noise: np.ndarray
    reversal_state: np.ndarray
    attention: np.ndarray
    attention_state: np.ndarray
    kappa: np.ndarray
    present: np.ndarray
    params: SyntheticParams
    intraday: np.ndarray | None = None
    intraday_state: np.ndarray | None = None

    def expected_idio(self, t: int) -> np.ndarray:
        """[S] expected idiosyncratic return of day t (before its shock)."""
        p = self.params
        out = (self.drift[t] - self.kappa[t] * (1 - p.reversal_decay) * self.reversal_state[t]
               - p.attention_strength * (1 - p.attention_decay) * self.attention_state[t])
        if self.intraday_state is not None:
            out = out + p.intraday_strength * (1 - p.intraday_decay) * self.intraday_state[t]
        return out

    def expected_label(self, component: str = "all") -> np.ndarray:
        """[D, S] E[sum of idiosyncratic returns of days t+2..t+11 | state after close t].

        Exact for the linear latent model with the reversal strength held at its day-t
        value; it ignores price-limit carry-over and the size drift of kappa. component:
        ``all``, ``trend``, ``reversal``, ``attention`` or ``intraday``. NaN where there
        is no bar.
        """
        p, (k0, k1) = self.params, LABEL_DAYS
        phi = trend_phi(p)
        rho, rho_v, rho_l = p.reversal_decay, p.attention_decay, p.intraday_decay
        parts = {
            "trend": lambda: self.drift * np.float32(sum(phi ** k for k in range(k0, k1 + 1))),
            # R[t+1] = rho R[t] + u[t]; days t+2..t+11 reverse (1-rho)(rho^1..rho^10) of it
            "reversal": lambda: -self.kappa * np.float32(rho ** (k0 - 1) - rho ** k1)
            * (rho * self.reversal_state + self.noise),
            "attention": lambda: np.float32(-p.attention_strength
                                            * (rho_v ** (k0 - 1) - rho_v ** k1))
            * (rho_v * self.attention_state + self.attention),
            "intraday": lambda: np.float32(p.intraday_strength
                                           * (rho_l ** (k0 - 1) - rho_l ** k1))
            * (rho_l * self.intraday_state + self.intraday)
            if self.intraday is not None else np.zeros_like(self.drift),
        }
        if component != "all" and component not in parts:
            raise ValueError(f"component must be 'all' or one of {sorted(parts)}, "
                             f"got {component!r}")
        names = list(parts) if component == "all" else [component]
        out = sum(parts[n]() for n in names)
        return np.where(self.present, out, np.nan).astype(np.float32)


def trend_phi(p: SyntheticParams) -> float:
    return 0.5 ** (1.0 / p.trend_half_life)


def student_t(rng: np.random.Generator, df: float, shape: tuple[int, ...]) -> np.ndarray:
    """Unit-variance Student-t draws (float32)."""
    scale = np.sqrt((df - 2.0) / df) if df > 2 else 1.0
    return (rng.standard_t(df, size=shape) * scale).astype(np.float32)


def ar1(x: np.ndarray, phi: float, lagged: bool = False,
        y0: np.ndarray | None = None) -> np.ndarray:
    """y[t] = phi * y[t-1] + x[t] (or + x[t-1] if ``lagged``) along axis 0; y[-1] = y0 or 0."""
    y = np.empty_like(x)
    prev = np.zeros(x.shape[1:], x.dtype) if y0 is None else y0.astype(x.dtype)
    for t in range(len(x)):
        inc = (x[t - 1] if t else 0) if lagged else x[t]
        prev = phi * prev + inc
        y[t] = prev
    return y


def reversal_kappa(log_cap: np.ndarray, alive: np.ndarray, p: SyntheticParams) -> np.ndarray:
    """[S] kappa = strength * (1 - size percentile)^2, the percentile from the z of log cap.

    About 0.8x strength in the smallest quintile, 0.25x at the median, ~0 in the largest.
    """
    x = log_cap[alive]
    if x.size < 2:
        return np.zeros_like(log_cap, dtype=np.float32)
    z = (log_cap - x.mean()) / max(float(x.std()), 1e-9)
    return (p.reversal_strength * (1.0 - ndtr(z)) ** 2).astype(np.float32)


def simulate_traits(rng: np.random.Generator, n_stocks: int, n_days: int,
                    p: SyntheticParams) -> StockTraits:
    """Draw industries, betas, sizes, volatilities, share counts and listing days."""
    s = n_stocks
    weights = rng.dirichlet(np.full(p.n_industries, 3.0))
    industry = rng.choice(p.n_industries, size=s, p=weights)
    log_cap = rng.normal(np.log(6e9), 1.0, s)
    size_z = (log_cap - log_cap.mean()) / log_cap.std()
    price0 = np.clip(np.exp(rng.normal(np.log(11.0), 0.6, s)), 2.0, 300.0).round(2)
    total = np.round(np.exp(log_cap) / price0, -4)
    float_ratio = np.clip(1.0 - rng.exponential(0.12, s), 0.2, 1.0)
    list_day = np.zeros(s, np.int64)
    new = rng.random(s) < p.listing_fraction
    if n_days >= 20:
        list_day[new] = rng.integers(1, int(0.85 * n_days), new.sum())
    float_ratio[list_day > 0] = rng.uniform(0.15, 0.3, (list_day > 0).sum())
    limit_days = rng.poisson(p.ipo_limit_up_days, s) + rng.random(s)
    pop = (1 + p.ipo_price_limit) * (1 + p.price_limit) ** limit_days - 1
    ipo_pop = np.where(list_day > 0, pop, 0.0)
    return StockTraits(
        industry=industry, beta=np.clip(rng.normal(1.0, p.beta_sd, s), 0.2, 2.0), size_z=size_z,
        idio_vol=p.idio_vol * np.exp(-p.idio_vol_size_slope * size_z + rng.normal(0, 0.2, s)),
        price0=price0, total_shares0=total, float_shares0=np.round(total * float_ratio, -2),
        list_day=list_day, ipo_pop=ipo_pop,
        turnover=p.turnover_median * np.exp(-0.3 * size_z + rng.normal(0, 0.6, s)))


def simulate_factors(rng: np.random.Generator, n_days: int, p: SyntheticParams) -> Factors:
    """GARCH(1,1) market factor with Student-t shocks; industry and size factors
    share its volatility regime."""
    var = p.market_vol ** 2
    omega = var * (1 - p.garch_alpha - p.garch_beta)
    eps = student_t(rng, p.tail_df, (n_days + BURN_IN,)).astype(np.float64)
    h = np.empty(n_days + BURN_IN)
    h_t = var
    for t in range(n_days + BURN_IN):
        h[t] = h_t
        # clip: keep the Student-t GARCH from exploding in a rare run of extreme shocks
        h_t = float(np.clip(omega + p.garch_alpha * h_t * eps[t] ** 2 + p.garch_beta * h_t,
                            0.1 * var, 25 * var))
    h, eps = h[BURN_IN:], eps[BURN_IN:]
    regime = np.sqrt(h / var)
    industry = student_t(rng, p.tail_df, (n_days, p.n_industries)) * p.industry_vol
    size = student_t(rng, p.tail_df, (n_days,)) * p.size_factor_vol
    return Factors(market=p.market_drift + np.sqrt(h) * eps, vol_regime=regime,
                   industry=industry * np.sqrt(regime)[:, None], size=size * np.sqrt(regime))


def intraday_shocks(rng: np.random.Generator, n_days: int, n_stocks: int) -> np.ndarray:
    """[n_days + BURN_IN, S] float32 N(0, 1) late-session pressure shocks (burn-in first)."""
    return rng.standard_normal((n_days + BURN_IN, n_stocks), dtype=np.float32)


def simulate_latent(rng: np.random.Generator, traits: StockTraits, factors: Factors,
                    p: SyntheticParams, signal_scale: float = 1.0,
                    intraday: np.ndarray | None = None) -> SyntheticLatent:
    """Drift, shocks and the reversal / attention states ([D, S] float32, burn-in dropped).

    ``signal_scale`` multiplies all four planted effects (0 = a market with no
    predictable idiosyncratic return at all). ``intraday``: the late-session pressure
    shocks of :func:`intraday_shocks` (drawn from their own stream, so adding them left
    every other draw unchanged); None = no intraday signal.
    """
    d, s = len(factors.market), len(traits.beta)
    phi, n = trend_phi(p), d + BURN_IN
    regime = np.concatenate([np.ones(BURN_IN), factors.vol_regime]).astype(np.float32)
    noise = student_t(rng, p.tail_df, (n, s))
    noise *= traits.idio_vol.astype(np.float32) * np.sqrt(regime)[:, None]
    psi, vv = 0.5 ** (1.0 / p.idio_vol_half_life), p.idio_vol_of_vol
    vol_innov = rng.standard_normal((n, s), dtype=np.float32)
    vol_innov *= np.float32(vv * np.sqrt(1 - psi ** 2))
    log_vol = ar1(vol_innov, psi, y0=rng.standard_normal(s) * vv)
    del vol_innov
    noise *= np.exp(log_vol - np.float32(vv ** 2))  # E[exp(2 log_vol - 2 vv^2)] = 1: variance kept
    del log_vol
    innov = rng.standard_normal((n, s), dtype=np.float32) * np.float32(
        p.trend_vol * np.sqrt(1 - phi ** 2) * signal_scale)
    drift = ar1(innov, phi, y0=rng.standard_normal(s) * p.trend_vol * signal_scale)
    del innov
    attention = rng.standard_normal((n, s), dtype=np.float32) * np.float32(p.attention_vol)
    scaled = p if signal_scale == 1.0 else _scaled_params(p, signal_scale)
    return SyntheticLatent(
        drift=drift[BURN_IN:], noise=noise[BURN_IN:],
        reversal_state=ar1(noise, p.reversal_decay, lagged=True)[BURN_IN:],
        attention=attention[BURN_IN:],
        attention_state=ar1(attention, p.attention_decay, lagged=True)[BURN_IN:],
        kappa=np.zeros((d, s), np.float32), present=np.zeros((d, s), bool), params=scaled,
        intraday=None if intraday is None else intraday[BURN_IN:],
        intraday_state=None if intraday is None
        else ar1(intraday, p.intraday_decay, lagged=True)[BURN_IN:])


def _scaled_params(p: SyntheticParams, scale: float) -> SyntheticParams:
    return replace(p, trend_vol=p.trend_vol * scale, reversal_strength=p.reversal_strength * scale,
                   attention_strength=p.attention_strength * scale,
                   intraday_strength=p.intraday_strength * scale)
