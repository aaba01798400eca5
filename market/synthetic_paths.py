"""Close-price paths of the synthetic market: one Python loop over days, vectorized over stocks.

Per day t and stock i the model return is

    r = beta * market[t] + industry[t, ind] - size_z * size[t] + mu[t, i] + u[t, i]

(``mu`` the planted expected idiosyncratic return, ``u`` the shock; see
``market.synthetic_signals``). The frictions applied here make the close path A-share
like: the desired return is ``(1 + pending) * (1 + r) - 1`` where ``pending`` is what
earlier days could not realize (a limit hit, a suspension, the IPO pop); the close is
``round(preclose * (1 + desired), 2)`` clipped to the limit prices
``round(preclose * (1 +- limit), 2)``, and the unrealized rest stays pending. Corporate
actions change ``preclose`` (ex-rights), so ``close / preclose - 1`` is always the
realized model return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.synthetic_signals import (Factors, StockTraits, SyntheticLatent, SyntheticParams,
                                      reversal_kappa)

NEVER = 2 ** 40  # "no delisting scheduled" day index
BELOW_ONE_DAYS = 20  # closes below 1 CNY in a row that trigger a delisting (A-share rule)


def round2(x: np.ndarray) -> np.ndarray:
    """Round half up to the 0.01 CNY tick (exchange convention), robust to float error."""
    return np.floor(np.asarray(x) * 100.0 + 0.5 + 1e-7) / 100.0


@dataclass
class EventTable:
    """Sparse per-(day, stock) events sorted by day, with two float payloads ``a``, ``b``."""

    stock: np.ndarray
    a: np.ndarray
    b: np.ndarray
    bounds: np.ndarray  # [D + 1] events of day t are [bounds[t], bounds[t+1])

    @classmethod
    def build(cls, n_days: int, day: list[np.ndarray], stock: list[np.ndarray],
              a: list[np.ndarray], b: list[np.ndarray]) -> "EventTable":
        cat = [np.concatenate(x) if x else np.zeros(0) for x in (day, stock, a, b)]
        order = np.argsort(cat[0], kind="stable")
        days = cat[0][order].astype(np.int64)
        return cls(cat[1][order].astype(np.int64), cat[2][order], cat[3][order],
                   np.searchsorted(days, np.arange(n_days + 1)))

    def at(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = self.bounds[t], self.bounds[t + 1]
        return self.stock[lo:hi], self.a[lo:hi], self.b[lo:hi]


@dataclass
class Paths:
    """Dense [D, S] results of the close-path simulation (NaN / False where no bar)."""

    present: np.ndarray  # bool: the stock has a bar
    close: np.ndarray
    preclose: np.ndarray  # ex-rights previous close (dividends and splits)
    price_preclose: np.ndarray  # previous close adjusted for splits only (for price indexes)
    desired: np.ndarray  # float32 return the day wanted (limit hits realize less)
    is_st: np.ndarray
    total_shares: np.ndarray
    float_shares: np.ndarray
    float_cap: np.ndarray  # float32 last close * float shares while listed (NaN otherwise)
    delist_day: np.ndarray  # [S] last trading day, NEVER if none
    delist_announce: np.ndarray  # [S] day the delisting was decided, NEVER if none

    @classmethod
    def empty(cls, d: int, s: int) -> "Paths":
        def nan(dtype: type = np.float64) -> np.ndarray:
            return np.full((d, s), np.nan, dtype)

        return cls(np.zeros((d, s), bool), nan(), nan(), nan(), nan(np.float32),
                   np.zeros((d, s), bool), nan(), nan(), nan(np.float32),
                   np.full(s, NEVER, np.int64), np.full(s, NEVER, np.int64))


@dataclass
class _State:
    last_close: np.ndarray
    pending: np.ndarray
    div_due: np.ndarray
    ratio_due: np.ndarray
    total: np.ndarray
    float_: np.ndarray
    is_st: np.ndarray
    below_one: np.ndarray


def calendar_parts(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(year, month) int arrays of datetime64[D] dates."""
    return (dates.astype("datetime64[Y]").astype(int) + 1970,
            dates.astype("datetime64[M]").astype(int) % 12 + 1)


def review_days(dates: np.ndarray) -> list[int]:
    """Annual ST / delisting reviews: first trading day on or after May 1 (annual reports due)."""
    year, month = calendar_parts(dates)
    days = [int(np.nonzero((year == y) & (month >= 5))[0][0]) for y in np.unique(year)
            if ((year == y) & (month >= 5)).any()]
    return [t for t in days if t >= 60]


def suspension_mask(rng: np.random.Generator, n_days: int, n_stocks: int,
                    p: SyntheticParams) -> np.ndarray:
    """[D, S] bool: spells start with ``suspension_rate`` per stock-day, log-normal lengths."""
    di, si = np.nonzero(rng.random((n_days, n_stocks), dtype=np.float32) < p.suspension_rate)
    length = np.maximum(1, np.round(np.exp(rng.normal(np.log(p.suspension_median_days), 1.0,
                                                      len(di))))).astype(np.int64)
    diff = np.zeros((n_days + 1, n_stocks), np.int32)
    np.add.at(diff, (di, si), 1)
    np.add.at(diff, (np.minimum(di + length, n_days), si), -1)
    return np.cumsum(diff, axis=0, dtype=np.int32)[:-1] > 0


def corporate_actions(rng: np.random.Generator, dates: np.ndarray, n_stocks: int,
                      p: SyntheticParams) -> EventTable:
    """At most one ex-date per stock and year, in June-August.

    a = dividend yield (of the last close), b = split ratio.
    """
    year, month = calendar_parts(dates)
    day, stock, yld, ratio = [], [], [], []
    for y in np.unique(year):
        window = np.nonzero((year == y) & (month >= 6) & (month <= 8))[0]
        div, split = rng.random(n_stocks) < p.dividend_prob, rng.random(n_stocks) < p.split_prob
        who = np.nonzero(div | split)[0]
        if not len(window) or not len(who):
            continue
        day.append(rng.choice(window, len(who)))
        stock.append(who)
        yld.append(np.where(div[who], rng.uniform(0.002, 0.03, len(who)), 0.0))
        ratio.append(np.where(split[who], rng.choice([1.2, 1.3, 1.5, 2.0], len(who)), 1.0))
    return EventTable.build(len(dates), day, stock, yld, ratio)


def share_events(rng: np.random.Generator, dates: np.ndarray, traits: StockTraits,
                 p: SyntheticParams) -> EventTable:
    """Share-count events: a = total-shares multiplier (issuance of locked shares),
    b = fraction of the locked shares that become float."""
    year, _ = calendar_parts(dates)
    s, d = len(traits.beta), len(dates)
    day, stock, mult, unlock = [], [], [], []
    for y in np.unique(year):
        window = np.nonzero(year == y)[0]
        for prob, kind in ((p.issuance_prob, "issue"), (p.unlock_prob, "unlock")):
            who = np.nonzero(rng.random(s) < prob)[0]
            day.append(rng.choice(window, len(who)))
            stock.append(who)
            issue = kind == "issue"
            mult.append(rng.uniform(1.05, 1.3, len(who)) if issue else np.ones(len(who)))
            unlock.append(np.zeros(len(who)) if issue else rng.uniform(0.2, 1.0, len(who)))
    ipo = np.nonzero((traits.list_day > 0) & (traits.list_day + 250 < d))[0]  # lock-up ends
    day.append(traits.list_day[ipo] + 250)
    stock.append(ipo)
    mult.append(np.ones(len(ipo)))
    unlock.append(rng.uniform(0.5, 1.0, len(ipo)))
    return EventTable.build(d, day, stock, mult, unlock)


def simulate_paths(rng: np.random.Generator, dates: np.ndarray, traits: StockTraits,
                   factors: Factors, latent: SyntheticLatent, p: SyntheticParams) -> Paths:
    """Run the day loop; fills ``latent.kappa`` and ``latent.present`` in place."""
    d, s = latent.noise.shape
    suspended = suspension_mask(rng, d, s, p)
    actions, shares = corporate_actions(rng, dates, s, p), share_events(rng, dates, traits, p)
    reviews = set(review_days(dates))
    out = Paths.empty(d, s)
    st = _State(traits.price0.astype(float), traits.ipo_pop.astype(float), np.zeros(s),
                np.ones(s), traits.total_shares0.astype(float), traits.float_shares0.astype(float),
                np.zeros(s, bool), np.zeros(s, np.int64))
    for t in range(d):
        alive = (traits.list_day <= t) & (t <= out.delist_day)
        trade = alive & (~suspended[t] | (traits.list_day == t) | (out.delist_day == t))
        _apply_events(st, shares, actions, t, alive)
        latent.kappa[t] = reversal_kappa(np.log(st.last_close * st.total), alive, latent.params)
        r = (traits.beta * factors.market[t] + factors.industry[t, traits.industry]
             - traits.size_z * factors.size[t] + latent.expected_idio(t) + latent.noise[t])
        _trade(t, st, out, np.clip(r, -0.6, 1.0), alive, trade, traits.list_day == t, p)
        _delist_below_one(t, st, out, trade)
        if t in reviews:
            _annual_review(t, st, out, traits, rng, p)
    latent.present[:] = out.present
    return out


def _apply_events(st: _State, shares: EventTable, actions: EventTable, t: int,
                  alive: np.ndarray) -> None:
    idx, mult, unlock = shares.at(t)
    keep = alive[idx]
    idx, mult, unlock = idx[keep], mult[keep], unlock[keep]
    np.multiply.at(st.total, idx, mult)
    st.total[idx] = np.round(st.total[idx], -2)
    st.float_[idx] = np.round(st.float_[idx] + unlock * (st.total[idx] - st.float_[idx]), -2)
    idx, yld, ratio = actions.at(t)
    keep = alive[idx]
    idx, yld, ratio = idx[keep], yld[keep], ratio[keep]
    # applied on the first bar on or after the ex-date (a suspended stock waits)
    cash = np.where(yld > 0, np.maximum(round2(yld * st.last_close[idx]), 0.01), 0.0)
    np.add.at(st.div_due, idx, cash)
    np.multiply.at(st.ratio_due, idx, ratio)


def _trade(t: int, st: _State, out: Paths, r: np.ndarray, alive: np.ndarray, trade: np.ndarray,
           first: np.ndarray, p: SyntheticParams) -> None:
    desired = (1 + st.pending) * (1 + r) - 1
    act = trade & ((st.div_due > 0) | (st.ratio_due != 1))
    pre, ppre = st.last_close.copy(), st.last_close.copy()
    pre[act] = np.maximum(round2((pre[act] - st.div_due[act]) / st.ratio_due[act]), 0.01)
    ppre[act] = np.maximum(round2(ppre[act] / st.ratio_due[act]), 0.01)
    st.total[act] = np.round(st.total[act] * st.ratio_due[act])
    st.float_[act] = np.round(st.float_[act] * st.ratio_due[act])
    st.div_due[act], st.ratio_due[act] = 0.0, 1.0
    limit = np.where(first, p.ipo_price_limit, np.where(st.is_st, p.st_price_limit, p.price_limit))
    up, dn = round2(pre * (1 + limit)), np.maximum(round2(pre * (1 - limit)), 0.01)
    close = np.clip(round2(pre * (1 + desired)), dn, up)
    realized = close / pre - 1
    st.pending = np.where(trade, (1 + desired) / (1 + realized) - 1,
                          np.where(alive, desired, st.pending))
    st.last_close = np.where(trade, close, st.last_close)
    out.present[t] = trade
    out.close[t] = np.where(trade, close, np.nan)
    out.preclose[t] = np.where(trade, pre, np.nan)
    out.price_preclose[t] = np.where(trade, ppre, np.nan)
    out.desired[t] = np.where(trade, desired, np.nan)
    out.is_st[t] = st.is_st & trade
    out.total_shares[t], out.float_shares[t] = st.total, st.float_
    out.float_cap[t] = np.where(alive, st.last_close * st.float_, np.nan)


def _schedule_delisting(out: Paths, who: np.ndarray, t: int, last_day: np.ndarray) -> None:
    who = who & (out.delist_announce == NEVER)
    out.delist_announce[who] = t
    out.delist_day[who] = last_day[who]


def _delist_below_one(t: int, st: _State, out: Paths, trade: np.ndarray) -> None:
    st.below_one = np.where(trade, np.where(st.last_close < 1.0, st.below_one + 1, 0), st.below_one)
    _schedule_delisting(out, st.below_one >= BELOW_ONE_DAYS, t, np.full(len(trade), t + 5))


def _annual_review(t: int, st: _State, out: Paths, traits: StockTraits,
                   rng: np.random.Generator, p: SyntheticParams) -> None:
    """ST entry for the worst trailing-year performers; ST exits and delisting decisions."""
    lo = max(0, t - 249)
    with np.errstate(invalid="ignore", divide="ignore"):
        trailing = np.nansum(np.log(out.close[lo:t + 1] / out.preclose[lo:t + 1]), axis=0)
    eligible = (traits.list_day <= t - 120) & (out.delist_announce == NEVER)
    u = rng.random(len(trailing))
    was_st = st.is_st & eligible
    _schedule_delisting(out, was_st & (u < p.st_delist_prob), t,
                        t + rng.integers(10, 60, len(u)))
    st.is_st[was_st & (u >= p.st_delist_prob) & (u < p.st_delist_prob + p.st_exit_prob)] = False
    candidates = eligible & ~was_st
    if candidates.sum() >= 20:
        cut = np.quantile(trailing[candidates], p.st_entry_fraction)
        st.is_st[candidates & (trailing <= cut)] = True
