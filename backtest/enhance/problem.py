r"""One rebalance of the index-enhancement portfolio as a cvxpy linear program.

For the n stocks of the rebalance (scored stocks, benchmark members, current holdings):

.. math::

    \max_w \; \mu^\top w \quad \text{s.t.}\quad
    \begin{aligned}
    & l_i \le w_i \le u_i && \text{(long only, deviation, tradability: box bounds)}\\
    & \textstyle\sum_i w_i = 1 && \text{(fully invested)}\\
    & m^\top w \ge c && \text{(weight in index constituents, } m_i = 1[i \in \text{index}])\\
    & |X_k^\top (w - b)| \le s_k \;\forall k && \text{(style exposure)}\\
    & |G_j^\top (w - b)| \le g_j \;\forall j && \text{(industry exposure, } G \text{ one-hot)}\\
    & \textstyle\sum_i |w_i - w^0_i| \le \tau_2 && \text{(turnover vs the pre-trade weights)}
    \end{aligned}

with :math:`l_i = \max(b_i - d, 0)`, :math:`u_i = b_i + d` (0 if i may not be bought
and is not held), then tradability on the trade day: suspended -> :math:`l_i = u_i =
w^0_i`; no buys (limit up, ST) -> :math:`u_i = \min(u_i, w^0_i)`; no sells (limit
down) -> :math:`l_i = \max(l_i, w^0_i)`; delisted -> :math:`l_i = u_i = 0`. Where
tradability and the deviation band disagree, tradability wins (the band is waived for
that stock, and :func:`backtest.enhance.realized.realized_constraints` reports both).
Likewise :math:`g_j = \max(g, f_j)` with :math:`f_j` the industry exposure the box
bounds force (:func:`forced_industry_exposure`; 0 unless untradable holdings pin it).
:math:`\tau_2` is the cap on two-sided turnover (a one-sided cap doubled); there is
none at the first build (from cash).

The cvxpy problem mirrors this: large matrices (X, G, m) are constants, the small
vectors and scalars (μ, l, u, w⁰, the exposure bounds, τ₂, c) are Parameters, so the
relaxation ladder re-solves the compiled problem with new parameter values only. A
dropped constraint gets a band that cannot bind (turnover 4, industry 2, style
``2 max|X_k| + 1``), which keeps the compiled structure.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from backtest.enhance.constraints import (DEFAULT_LADDER, EnhanceConstraints, RelaxStep,
                                          Solver)
from backtest.enhance.inputs import RebalanceInputs

FEAS_TOL = 1e-6  # absolute tolerance on every constraint, in weight / exposure units
DUST = 1e-9  # solver weights below this (where 0 is allowed) are set to 0
NO_TURNOVER_CAP = 4.0  # Σ|w - w⁰| <= 2 for any two long-only budgets: never binds
# HiGHS' default row tolerance (1e-7) adds up over the n rows that define the turnover,
# which left Σ|w - w⁰| over its cap by 1.3e-6 at 1,000 names: ask for 1e-9 instead.
SOLVER_OPTIONS: dict[str, dict[str, float]] = {
    "HIGHS": {"primal_feasibility_tolerance": 1e-9, "dual_feasibility_tolerance": 1e-9}}


class InfeasibleError(ValueError):
    """No portfolio satisfies the constraints, even after the whole relaxation ladder."""


@dataclass
class RebalanceResult:
    """Solved weights of one rebalance.

    weights: [n] target weights (sum 1, within the bounds), aligned with the inputs.
    step: index into the ladder of the step that was feasible (0 = as specified).
    step_name: its name; objective: μᵀw; seconds: wall time of build + solves.
    """

    weights: np.ndarray
    step: int
    step_name: str
    objective: float
    seconds: float


def box_bounds(inp: RebalanceInputs, cons: EnhanceConstraints) -> tuple[np.ndarray, np.ndarray]:
    """([n] lower, [n] upper) weight bounds: long only, deviation, universe, tradability."""
    d, w0 = cons.max_deviation, inp.current
    lo = np.maximum(inp.bench - d, 0.0)
    hi = np.where(inp.investable, inp.bench + d, np.minimum(inp.bench + d, w0))
    hi = np.where(inp.no_buy, np.minimum(hi, w0), hi)
    lo = np.minimum(lo, hi)  # a stock that cannot be bought up to its floor
    lo = np.where(inp.no_sell, np.maximum(lo, w0), lo)
    hi = np.maximum(hi, lo)  # a stock that cannot be sold down to its cap
    lo = np.where(inp.frozen, w0, lo)
    hi = np.where(inp.frozen, w0, hi)
    lo = np.where(inp.liquidate, 0.0, lo)
    hi = np.where(inp.liquidate, 0.0, hi)
    return lo, hi


def check_box(lo: np.ndarray, hi: np.ndarray, inp: RebalanceInputs, min_member: float) -> None:
    """Raise :class:`InfeasibleError` before solving when bounds alone rule out a solution."""
    if lo.sum() > 1 + FEAS_TOL or hi.sum() < 1 - FEAS_TOL:
        raise InfeasibleError(
            f"no fully invested portfolio fits the per-stock bounds: Σ lower = {lo.sum():.4f},"
            f" Σ upper = {hi.sum():.4f} over {len(lo)} stocks ({int(inp.frozen.sum())} frozen"
            f" at current weight, {int(inp.no_buy.sum())} not buyable); widen max_deviation")
    reach = hi[inp.member].sum()
    if reach < min_member - FEAS_TOL:
        raise InfeasibleError(f"constituent weight can reach at most {reach:.4f} < "
                              f"min_constituent_weight {min_member}")


def forced_industry_exposure(inp: RebalanceInputs, lo: np.ndarray, hi: np.ndarray
                              ) -> np.ndarray:
    """[G] smallest |Σ_{i in j} (wᵢ - bᵢ)| the box bounds allow per industry j.

    ``max(Σ lᵢ - Σ bᵢ, Σ bᵢ - Σ uᵢ, 0)`` over the industry: positive where untradable
    holdings (frozen, limit down) pin more weight than the benchmark has, or the
    buyable stocks cannot reach it. The industry band is widened to this value (the
    band is waived as far as tradability forces, as for single stocks).
    """
    n_ind = int(inp.industry.max()) + 1 if len(lo) else 1
    b = np.bincount(inp.industry, inp.bench, n_ind)
    return np.maximum.reduce([np.bincount(inp.industry, lo, n_ind) - b,
                              b - np.bincount(inp.industry, hi, n_ind), np.zeros(n_ind)])


class EnhanceProblem:
    """The compiled LP of one rebalance; :meth:`solve` walks the relaxation ladder."""

    def __init__(self, inp: RebalanceInputs, cons: EnhanceConstraints,
                 solver: Solver = "CLARABEL") -> None:
        unknown = sorted(set(cons.style_bounds) - set(inp.style_names))
        if unknown:
            raise ValueError(f"style_bounds names {unknown}, not among the styles "
                             f"{inp.style_names}")
        start = time.perf_counter()
        self.inp, self.cons, self.solver = inp, cons, solver
        self.lo, self.hi = box_bounds(inp, cons)
        n, k = inp.styles.shape
        n_ind = int(inp.industry.max()) + 1 if n else 1
        self.ind_matrix = sp.csr_matrix((np.ones(n), (np.arange(n), inp.industry)),
                                        shape=(n, n_ind))
        self.forced = forced_industry_exposure(inp, self.lo, self.hi)
        self.w = cp.Variable(n, name="w")
        self.p = {"mu": cp.Parameter(n), "lo": cp.Parameter(n), "hi": cp.Parameter(n),
                  "w0": cp.Parameter(n), "x_lo": cp.Parameter(k), "x_hi": cp.Parameter(k),
                  "g_lo": cp.Parameter(n_ind), "g_hi": cp.Parameter(n_ind),
                  "tau": cp.Parameter(nonneg=True), "c": cp.Parameter(nonneg=True)}
        p, w = self.p, self.w
        x_t = inp.styles.T  # [k, n] constant
        constraints = [w >= p["lo"], w <= p["hi"], cp.sum(w) == 1,
                       inp.member.astype(float) @ w >= p["c"],
                       cp.sum(cp.abs(w - p["w0"])) <= p["tau"],
                       self.ind_matrix.T @ w >= p["g_lo"], self.ind_matrix.T @ w <= p["g_hi"]]
        if k:
            constraints += [x_t @ w >= p["x_lo"], x_t @ w <= p["x_hi"]]
        self.problem = cp.Problem(cp.Maximize(p["mu"] @ w), constraints)
        for name, value in (("mu", inp.mu), ("lo", self.lo), ("hi", self.hi),
                            ("w0", inp.current)):
            p[name].value = value
        self.build_seconds = time.perf_counter() - start

    def bands(self, step: RelaxStep) -> dict[str, np.ndarray | float]:
        """Constraint right-hand sides under one ladder step (non-binding where dropped)."""
        inp, cons = self.inp, self.cons
        cap = cons.two_sided_turnover_cap()
        initial = inp.current.sum() < FEAS_TOL  # first build from cash: no turnover cap
        tau = NO_TURNOVER_CAP if cap is None or initial else min(cap * step.turnover,
                                                                  NO_TURNOVER_CAP)
        style = self._style_bands(step)
        g = cons.industry_bound
        ind = np.full(self.ind_matrix.shape[1], 2.0)  # |Σ_j (w - b)| <= 1: never binds
        if g is not None and step.industry != np.inf:
            ind = np.maximum(max(g * step.industry, step.industry_floor), self.forced)
        return {"tau": tau, "style": style, "industry": np.minimum(ind, 2.0),
                "c": cons.min_constituent_weight * min(step.constituent, 1.0)}

    def _style_bands(self, step: RelaxStep) -> np.ndarray:
        """[k] style bands under ``step``; ``2 max|X_k| + 1`` (never binds) if dropped."""
        loose = 2 * np.abs(self.inp.styles).max(axis=0, initial=0.0) + 1
        out = loose.copy()
        for j, name in enumerate(self.inp.style_names):
            band = self.cons.style_band(name)
            if band is not None and step.style != np.inf:
                out[j] = min(max(band * step.style, step.style_floor), loose[j])
        return out

    def _set_step(self, step: RelaxStep) -> dict[str, np.ndarray | float]:
        bands, p, inp = self.bands(step), self.p, self.inp
        xb = inp.styles.T @ inp.bench
        gb = self.ind_matrix.T @ inp.bench
        p["x_lo"].value, p["x_hi"].value = xb - bands["style"], xb + bands["style"]
        p["g_lo"].value, p["g_hi"].value = gb - bands["industry"], gb + bands["industry"]
        p["tau"].value, p["c"].value = bands["tau"], bands["c"]
        return bands

    def _try(self, step: RelaxStep) -> np.ndarray | None:
        """Solve under one step; the clipped weights if they meet every constraint.

        A solution that misses the tolerance is solved again with HiGHS (a simplex
        vertex) before the step counts as failed; an infeasible status is final.
        """
        bands = self._set_step(step)
        for solver in dict.fromkeys((self.solver, "HIGHS")):
            try:
                with warnings.catch_warnings():  # "inaccurate" solutions are verified below
                    warnings.simplefilter("ignore", UserWarning)
                    self.problem.solve(solver=solver, **SOLVER_OPTIONS.get(solver, {}))
            except cp.error.SolverError:
                continue
            if self.problem.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
                return None
            if self.problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) \
                    and self.w.value is not None:
                w = np.clip(self.w.value, self.lo, self.hi)
                w[(w < DUST) & (self.lo == 0)] = 0.0  # interior-point dust: no holding
                w = w + (1.0 - w.sum()) * _slack_share(w, self.lo, self.hi)
                if self.violation(w, bands) <= FEAS_TOL:
                    return w
        return None

    def violation(self, w: np.ndarray, bands: dict[str, np.ndarray | float]) -> float:
        """Largest violation of any constraint by ``w`` under ``bands`` (0 = feasible)."""
        inp = self.inp
        dx = np.abs(inp.styles.T @ (w - inp.bench)) - bands["style"]
        dg = np.abs(self.ind_matrix.T @ (w - inp.bench)) - bands["industry"]
        parts = [self.lo - w, w - self.hi, [abs(w.sum() - 1)],
                 [bands["c"] - w[inp.member].sum()],
                 [np.abs(w - inp.current).sum() - bands["tau"]], dx, dg]
        return float(max(np.max(part, initial=0.0) for part in parts))

    def solve(self, ladder: tuple[RelaxStep, ...] = DEFAULT_LADDER) -> RebalanceResult:
        """Solve, relaxing along ``ladder``; raise :class:`InfeasibleError` if no step works.

        When every step relaxes the previous one, the first feasible step is found by a
        galloping search (:func:`_first_feasible`; infeasible solves are the slow ones),
        else the steps are tried in order.
        """
        start = time.perf_counter()
        check_box(self.lo, self.hi, self.inp, self.cons.min_constituent_weight
                  * min(s.constituent for s in ladder))
        tried: dict[int, np.ndarray | None] = {}

        def attempt(i: int) -> np.ndarray | None:
            if i not in tried:
                tried[i] = self._try(ladder[i])
            return tried[i]

        found = _first_feasible(len(ladder), attempt, _monotone(ladder))
        if found is None:
            raise InfeasibleError(f"no feasible portfolio at any of the {len(ladder)} ladder "
                                  f"steps (last: {ladder[-1].name!r}); solver status "
                                  f"{self.problem.status}")
        w = tried[found]
        return RebalanceResult(w, found, ladder[found].name, float(self.inp.mu @ w),
                               self.build_seconds + time.perf_counter() - start)


def _monotone(ladder: tuple[RelaxStep, ...]) -> bool:
    return all(b.relaxes(a) for a, b in zip(ladder, ladder[1:]))


def _first_feasible(n: int, attempt: Callable[[int], np.ndarray | None],
                    monotone: bool) -> int | None:
    """Index of the first of ``n`` steps whose ``attempt`` succeeds, None if none does.

    Monotone ladders: galloping search (steps 0, 1, 2, 4, ... then bisection inside the
    last bracket), so the common early steps cost few solves and a hopeless rebalance
    about 2 log2(n); otherwise the steps are tried in order.
    """
    if n == 0:
        return None
    if not monotone:
        return next((i for i in range(n) if attempt(i) is not None), None)
    prev, probe = -1, 0
    while attempt(probe) is None:
        if probe == n - 1:
            return None
        prev, probe = probe, min(max(2 * probe, probe + 1), n - 1)
    lo, hi = prev + 1, probe  # the first feasible step is in [lo, hi]; hi is feasible
    while lo < hi:
        mid = (lo + hi) // 2
        if attempt(mid) is not None:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _slack_share(w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Where to put a tiny budget residual after clipping: the holdings, by room left."""
    room = np.where(w > 0, np.where(w.sum() < 1, hi - w, w - lo), 0.0)
    total = room.sum()
    return room / total if total > 0 else np.zeros_like(w)


def solve_rebalance(inp: RebalanceInputs, cons: EnhanceConstraints,
                    solver: Solver = "CLARABEL",
                    ladder: tuple[RelaxStep, ...] = DEFAULT_LADDER) -> RebalanceResult:
    """Build and solve one rebalance (see the module docstring for the problem)."""
    return EnhanceProblem(inp, cons, solver).solve(ladder)
