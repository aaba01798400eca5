"""The cross-section of one rebalance (``RebalanceInputs``) and how it is cut from a panel.

The n stocks of a rebalance are the union of the stocks the factor scores (and the
universe allows), the benchmark's members and the current holdings. Masks are of the
trade day (suspensions are known before the open; limit hits at the close they are
traded at), scores, styles, industries and benchmark weights of the signal day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MU_CLIP = 3.0  # z-scores beyond ±3 are clipped so one outlier cannot dominate the LP


@dataclass
class RebalanceInputs:
    """Arrays of one rebalance, all ``[n]`` unless said otherwise.

    mu: expected-return scores (per-day standardized factor, 0 where unscored).
    bench: benchmark weights b (sum 1 over members, 0 elsewhere).
    current: pre-trade weights w⁰ drifted to the trade price (sum 1; all 0 = cash).
    investable: may be bought (scored and inside the universe, or a benchmark member).
    member: benchmark constituent.
    frozen: cannot trade at all (suspended, or a no-limit IPO day): w = w⁰.
    no_buy: cannot be bought (limit up, ST): w <= w⁰.
    no_sell: cannot be sold (limit down): w >= w⁰.
    liquidate: delisted while held: sold at the last price (w = 0).
    styles: [n, k] standardized style exposures (NaN already replaced by 0 = the mean).
    style_names: [k] names of the styles' columns.
    industry: [n] int industry ids in 0..G-1.
    stock: [n] panel stock indices (for the caller; the problem does not read them).
    """

    mu: np.ndarray
    bench: np.ndarray
    current: np.ndarray
    investable: np.ndarray
    member: np.ndarray
    frozen: np.ndarray
    no_buy: np.ndarray
    no_sell: np.ndarray
    liquidate: np.ndarray
    styles: np.ndarray
    style_names: list[str]
    industry: np.ndarray
    stock: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.mu)
        for name in ("bench", "current", "investable", "member", "frozen", "no_buy",
                     "no_sell", "liquidate", "industry"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}")
        if self.styles.shape != (n, len(self.style_names)):
            raise ValueError(f"styles must be [n, k] = ({n}, {len(self.style_names)}), "
                             f"got {self.styles.shape}")
        for name in ("mu", "bench", "current", "styles"):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"{name} must be finite (replace NaN before building inputs)")
        if (self.bench < 0).any() or abs(self.bench.sum() - 1) > 1e-6:
            raise ValueError(f"bench must be >= 0 and sum to 1, sums to {self.bench.sum():.6f}")
        if (self.current < -1e-12).any() or self.current.sum() > 1 + 1e-6:
            raise ValueError("current weights must be >= 0 and sum to at most 1")
        if n and self.industry.min() < 0:
            raise ValueError("industry ids must be >= 0")
        if (self.bench[~self.member] > 0).any():
            raise ValueError("bench weight on a stock that is not a member")


def standardize(score: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[n] z-score of ``score`` over ``mask`` & finite (ddof 0), clipped at ±3, 0 elsewhere."""
    ok = mask & np.isfinite(score)
    out = np.zeros(len(score))
    if ok.sum() < 2:
        return out
    v = score[ok]
    sd = v.std()
    if sd > 1e-12:
        out[ok] = np.clip((v - v.mean()) / sd, -MU_CLIP, MU_CLIP)
    return out
