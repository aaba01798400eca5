"""Training labels (SPEC 1): neutralized, per-day standardized forward returns.

``label[t, s]`` = the h-day forward return from the close of t+1 to the close of t+1+h
(:func:`market.returns.forward_returns`), residualized per day against log total market
cap and industry dummies by OLS over the day's eligible stocks, then per day either
ranked (mapped to uniform scores and z-scored; for the IC loss) or z-scored (for MSE).
Only prices after t enter the label of day t, and the split logic keeps every training
label's last price before the first validation day.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from market.panel import Panel
from market.returns import cross_sectional_rank, cross_sectional_zscore, forward_returns
from market.returns import neutralize as ols_neutralize


def log_market_cap(panel: Panel) -> np.ndarray:
    """[D, S] log total market cap, NaN where unknown or non-positive."""
    mcap = panel.market_cap()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mcap > 0, np.log(mcap), np.nan)


def make_labels(panel: Panel, horizon: int, eligible: np.ndarray,
                transform: Literal["rank", "zscore", "raw"] = "rank",
                neutralize: bool = True) -> np.ndarray:
    """[D, S] float32 labels, NaN where the stock is not eligible or the return is unknown."""
    fwd = forward_returns(panel, horizon)
    mask = eligible & np.isfinite(fwd)
    if neutralize:
        lmc = log_market_cap(panel)
        mask &= np.isfinite(lmc)
        y = ols_neutralize(fwd, lmc, panel.industry.astype(np.int64), mask)
    else:
        y = np.where(mask, fwd, np.nan)
    if transform == "rank":
        y = cross_sectional_rank(y, mask)
    elif transform == "zscore":
        y = cross_sectional_zscore(y, mask)
    elif transform != "raw":
        raise ValueError(f"label transform must be 'rank', 'zscore' or 'raw', got {transform!r}")
    return y.astype(np.float32)
