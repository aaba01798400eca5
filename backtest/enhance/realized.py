"""Realized constraint values of a solved rebalance, so a report can show every constraint held."""

from __future__ import annotations

import numpy as np

from backtest.enhance.constraints import EnhanceConstraints
from backtest.enhance.inputs import RebalanceInputs
from backtest.enhance.problem import forced_industry_exposure

HOLDING_EPS = 1e-6  # a weight above this counts as a holding


def forced_outside_band(inp: RebalanceInputs, cons: EnhanceConstraints, lo: np.ndarray,
                        hi: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """[n] bool: tradability moved the stock's bounds outside ``|w - b| <= d``."""
    d = cons.max_deviation
    return (lo > inp.bench + d + tol) | (hi < np.maximum(inp.bench - d, 0) - tol)


def realized_constraints(w: np.ndarray, inp: RebalanceInputs, cons: EnhanceConstraints,
                         lo: np.ndarray, hi: np.ndarray) -> dict[str, float]:
    """Constraint values of weights ``w`` [n] (units as in :class:`EnhanceConstraints`).

    max_deviation: max |wᵢ - bᵢ| over stocks whose bounds tradability left inside the
    band (the constraint as enforced); max_deviation_all: over every stock;
    n_forced: stocks tradability forced outside the band. constituent_weight: Σ w over
    members. style_<name>: (w - b)ᵀX_k. max_industry_all: max_j |Σ_{i in j} (wᵢ - bᵢ)|;
    max_industry: the same over industries where tradability forces no exposure beyond
    the band (the constraint as enforced); industry_forced: the largest forced exposure.
    turnover_two_sided: Σ|w - w⁰|; turnover_one_sided: half of it. n_holdings: weights
    above 1e-6. objective: μᵀw; budget_error: |Σw - 1|; min_weight: min w (long only).
    """
    dev = np.abs(w - inp.bench)
    forced = forced_outside_band(inp, cons, lo, hi)
    active = w - inp.bench
    n_ind = int(inp.industry.max()) + 1 if len(w) else 1
    industry = np.abs(np.bincount(inp.industry, active, minlength=n_ind))
    forced_ind = forced_industry_exposure(inp, lo, hi)
    free = forced_ind <= (cons.industry_bound or 0.0) + 1e-12
    out = {"max_deviation": float(dev[~forced].max(initial=0.0)),
           "max_deviation_all": float(dev.max(initial=0.0)),
           "n_forced": float(forced.sum()),
           "constituent_weight": float(w[inp.member].sum()),
           "max_industry": float(industry[free].max(initial=0.0)),
           "max_industry_all": float(industry.max(initial=0.0)),
           "industry_forced": float(forced_ind.max(initial=0.0)),
           "turnover_two_sided": float(np.abs(w - inp.current).sum()),
           "n_holdings": float((w > HOLDING_EPS).sum()),
           "objective": float(inp.mu @ w),
           "budget_error": float(abs(w.sum() - 1)),
           "min_weight": float(w.min(initial=0.0))}
    out["turnover_one_sided"] = out["turnover_two_sided"] / 2
    for name, value in zip(inp.style_names, inp.styles.T @ active):
        out[f"style_{name}"] = float(value)
    return out
