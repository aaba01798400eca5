"""The enhancement LP: constraints hold on random problems, optimality, the relaxation ladder."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import linprog

from backtest.enhance import (DEFAULT_LADDER, EnhanceConstraints, InfeasibleError,
                              RebalanceInputs, RelaxStep, report1, report2, solve_rebalance)
from backtest.enhance.constraints import preset
from backtest.enhance.problem import EnhanceProblem, _first_feasible, _monotone, box_bounds
from backtest.enhance.realized import realized_constraints

TOL = 1e-6
STYLES = ["size", "beta", "momentum"]


def random_inputs(n: int = 120, seed: int = 0, cash: bool = False, k: int = 3,
                  n_ind: int = 6) -> RebalanceInputs:
    """Random cross-section: a third are members, w⁰ near the benchmark, some frictions."""
    r = np.random.default_rng(seed)
    member = np.zeros(n, bool)
    member[: n // 3] = True
    b = np.where(member, r.dirichlet(np.ones(n))[:n], 0.0)
    b /= b.sum()
    w0 = np.zeros(n) if cash else 0.85 * b + 0.15 * r.dirichlet(np.full(n, 0.5))
    frozen = r.random(n) < 0.03
    return RebalanceInputs(
        mu=r.standard_normal(n), bench=b, current=w0, investable=r.random(n) < 0.9,
        member=member, frozen=frozen, no_buy=r.random(n) < 0.05,
        no_sell=r.random(n) < 0.05, liquidate=np.zeros(n, bool),
        styles=r.standard_normal((n, k)), style_names=STYLES[:k],
        industry=r.integers(0, n_ind, n))


def check_all(w: np.ndarray, inp: RebalanceInputs, cons: EnhanceConstraints,
              tau: float | None, step: RelaxStep = DEFAULT_LADDER[0]) -> None:
    """Every constraint of the spec (bands widened as ``step`` says), written out here."""
    b, w0, d = inp.bench, inp.current, cons.max_deviation
    assert w.min() >= -TOL and abs(w.sum() - 1) <= TOL
    np.testing.assert_allclose(w[inp.frozen], w0[inp.frozen], atol=TOL)
    assert (w[inp.no_buy] <= w0[inp.no_buy] + TOL).all()
    assert (w[inp.no_sell & ~inp.frozen] >= w0[inp.no_sell & ~inp.frozen] - TOL).all()
    assert (w[~inp.investable] <= w0[~inp.investable] + TOL).all()
    pinned = inp.frozen | (inp.no_buy & (w0 < b - d)) | (inp.no_sell & (w0 > b + d)) | \
        (~inp.investable & (w0 < b - d))
    assert (np.abs(w - b)[~pinned] <= d + TOL).all()
    assert w[inp.member].sum() >= cons.min_constituent_weight * step.constituent - TOL
    if cons.style_bound is not None and step.style != np.inf:
        band = max(cons.style_bound * step.style, step.style_floor)
        assert (np.abs(inp.styles.T @ (w - b)) <= band + TOL).all()
    if cons.industry_bound is not None and step.industry != np.inf:
        band = max(cons.industry_bound * step.industry, step.industry_floor)
        assert (np.abs(np.bincount(inp.industry, w - b)) <= band + TOL).all()
    if tau is not None:
        assert np.abs(w - w0).sum() <= tau + TOL


@pytest.mark.parametrize("solver", ["CLARABEL", "HIGHS"])
@pytest.mark.parametrize("seed", range(6))
def test_random_problems_satisfy_every_constraint(seed: int, solver: str) -> None:
    inp = random_inputs(seed=seed)
    cons = EnhanceConstraints(max_deviation=0.01, min_constituent_weight=0.6,
                              style_bound=0.3, industry_bound=0.03, max_turnover=0.4)
    res = solve_rebalance(inp, cons, solver)
    step = DEFAULT_LADDER[res.step]
    check_all(res.weights, inp, cons, 0.4 * step.turnover if step.turnover != np.inf else None,
              step)
    assert res.objective == pytest.approx(inp.mu @ res.weights)


@pytest.mark.parametrize("name", ["report1", "report2_csi500", "report2_csi1000"])
def test_presets_on_a_fresh_build(name: str) -> None:
    inp = random_inputs(n=200, seed=7, cash=True)
    inp.no_sell[:] = False  # from cash nothing is held: limits only bind buys
    inp.frozen[:] = False
    cons, _ = preset(name)
    res = solve_rebalance(inp, cons)
    assert res.step == 0
    check_all(res.weights, inp, cons, None)
    if name == "report2_csi500":  # size neutral
        assert abs(inp.styles[:, 0] @ (res.weights - inp.bench)) <= TOL


def test_optimum_beats_feasible_hand_made_portfolios() -> None:
    inp = random_inputs(seed=3)
    inp.current = inp.bench.copy()  # holding the benchmark: b itself is feasible
    inp.frozen[:] = inp.no_buy[:] = inp.no_sell[:] = False
    cons = report1()[0]
    res = solve_rebalance(inp, cons)
    assert res.step == 0
    swap = inp.bench.copy()  # move 0.5% from a low-μ member to the best member
    best = np.flatnonzero(inp.member)[np.argmax(inp.mu[inp.member])]
    rich = inp.member & (inp.bench >= 0.005)
    worst = np.flatnonzero(rich)[np.argmin(inp.mu[rich])]
    swap[best] += 0.005
    swap[worst] -= 0.005
    for hand in (inp.bench, swap, 0.5 * inp.bench + 0.5 * res.weights):
        check_all(hand, inp, cons, 0.3)
        assert res.objective > inp.mu @ hand + 1e-4
    assert inp.mu @ swap > inp.mu @ inp.bench  # the hand-made tilt itself improves on b


def scipy_reference(inp: RebalanceInputs, cons: EnhanceConstraints, lo: np.ndarray,
                    hi: np.ndarray) -> float:
    """Optimum of the same LP built by hand for scipy's HiGHS: variables [w, t], t >= |w - w⁰|."""
    n, b, w0 = len(inp.mu), inp.bench, inp.current
    eye = np.eye(n)
    rows = [np.hstack([eye, -eye]), np.hstack([-eye, -eye]),
            np.hstack([np.zeros(n), np.ones(n)])[None]]
    rhs = [w0, -w0, [cons.max_turnover]]
    rows.append(np.hstack([-inp.member.astype(float), np.zeros(n)])[None])
    rhs.append([-cons.min_constituent_weight])
    ind = (inp.industry[None, :] == np.arange(inp.industry.max() + 1)[:, None]).astype(float)
    for mat, band in ((inp.styles.T, cons.style_bound), (ind, cons.industry_bound)):
        rows += [np.hstack([mat, np.zeros_like(mat)]), np.hstack([-mat, np.zeros_like(mat)])]
        rhs += [mat @ b + band, -(mat @ b) + band]
    out = linprog(np.concatenate([-inp.mu, np.zeros(n)]), A_ub=np.vstack(rows),
                  b_ub=np.concatenate(rhs), A_eq=np.hstack([np.ones(n), np.zeros(n)])[None],
                  b_eq=[1.0], bounds=list(zip(lo, hi)) + [(0, None)] * n, method="highs")
    assert out.status == 0, out.message
    return -out.fun


def test_matches_an_independent_scipy_lp() -> None:
    inp = random_inputs(seed=11)
    cons = EnhanceConstraints(max_deviation=0.01, min_constituent_weight=0.5,
                              style_bound=0.5, industry_bound=0.05, max_turnover=0.6)
    prob = EnhanceProblem(inp, cons)
    res = prob.solve()
    assert res.step == 0
    assert res.objective == pytest.approx(scipy_reference(inp, cons, prob.lo, prob.hi), abs=1e-6)


def test_ladder_engages_when_turnover_cannot_be_met() -> None:
    """Holdings all outside the index: reaching |w - b| <= 1% needs turnover ~1.8 > 0.3."""
    n = 40
    member = np.arange(n) < 20
    b = np.where(member, 1 / 20, 0.0)
    w0 = np.where(member, 0.0, 1 / 20)
    r = np.random.default_rng(0)
    inp = RebalanceInputs(mu=r.standard_normal(n), bench=b, current=w0,
                          investable=np.ones(n, bool), member=member,
                          frozen=np.zeros(n, bool), no_buy=np.zeros(n, bool),
                          no_sell=np.zeros(n, bool), liquidate=np.zeros(n, bool),
                          styles=r.standard_normal((n, 1)), style_names=["size"],
                          industry=np.zeros(n, np.int64))
    cons = EnhanceConstraints(max_deviation=0.01, min_constituent_weight=0.8, style_bound=5.0,
                              industry_bound=0.02, max_turnover=0.3)
    res = solve_rebalance(inp, cons)
    assert res.step == 4 and res.step_name.startswith("no turnover cap")
    check_all(res.weights, inp, cons, None, DEFAULT_LADDER[4])
    assert np.abs(res.weights - w0).sum() > 0.6  # the cap (and its x2 step) was exceeded


def test_impossible_bounds_raise_before_solving(monkeypatch: pytest.MonkeyPatch) -> None:
    inp = random_inputs(seed=1)
    inp.no_buy[:] = True  # nothing can be bought ...
    inp.current = inp.current * 0.0  # ... from cash
    monkeypatch.setattr(cp.Problem, "solve", lambda *a, **k: pytest.fail("solver called"))
    with pytest.raises(InfeasibleError, match="Σ upper = 0.0000"):
        solve_rebalance(inp, report1()[0])


@pytest.mark.parametrize("kwargs, match", [
    ({"max_deviation": 0.0}, "max_deviation"),
    ({"min_constituent_weight": 1.2}, "min_constituent_weight"),
    ({"style_bound": -0.1}, "style_bound"),
    ({"style_bounds": {"size": float("nan")}}, "style_bounds"),
    ({"turnover_kind": "both"}, "turnover_kind"),
])
def test_bad_specification_is_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EnhanceConstraints(**kwargs)


def test_unknown_style_and_preset_are_rejected() -> None:
    with pytest.raises(ValueError, match="not among the styles"):
        EnhanceProblem(random_inputs(), EnhanceConstraints(style_bounds={"value": 0.0}))
    with pytest.raises(ValueError, match="unknown preset"):
        preset("report3")
    with pytest.raises(ValueError, match="unknown setting"):
        preset("report1", {"max_dev": 0.1})


def test_one_sided_turnover_is_half_the_two_sided() -> None:
    inp = random_inputs(seed=5)
    cons = report2("csi1000")[0]  # one-sided 30%
    res = solve_rebalance(inp, cons)
    if res.step == 0:
        assert 0.5 * np.abs(res.weights - inp.current).sum() <= 0.3 + TOL
    assert cons.two_sided_turnover_cap() == pytest.approx(0.6)


def test_a_solution_missing_the_tolerance_is_resolved_with_highs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = cp.Problem.solve

    def garbled(self, *args, solver=None, **kwargs):  # CLARABEL "returns" a permuted w
        calls.append(solver)
        out = original(self, *args, solver=solver, **kwargs)
        if solver == "CLARABEL":
            var = self.variables()[0]
            var.value = var.value[::-1].copy()
        return out

    monkeypatch.setattr(cp.Problem, "solve", garbled)
    inp = random_inputs(seed=4)
    cons = EnhanceConstraints(max_deviation=0.01, min_constituent_weight=0.6, max_turnover=0.4)
    res = solve_rebalance(inp, cons)
    assert (res.step, calls) == (0, ["CLARABEL", "HIGHS"])
    check_all(res.weights, inp, cons, 0.4)


def test_industry_band_widens_only_as_far_as_a_frozen_holding_forces() -> None:
    """Industry 0: 5% of the index but a suspended 8% holding; the others keep ±2%."""
    n = 60
    industry = np.arange(n) % 4
    member = np.arange(n) < 40
    b = np.where(member & (industry == 0), 0.05 / 10, np.where(member, 0.95 / 30, 0.0))
    w0 = b * 0.92 / (1 - b[0])
    w0[0] = 0.08  # stock 0 (industry 0) drifted up, and is suspended
    frozen = np.arange(n) == 0
    inp = RebalanceInputs(mu=np.random.default_rng(3).standard_normal(n), bench=b, current=w0,
                          investable=np.ones(n, bool), member=member, frozen=frozen,
                          no_buy=np.zeros(n, bool), no_sell=np.zeros(n, bool),
                          liquidate=np.zeros(n, bool), styles=np.zeros((n, 0)),
                          style_names=[], industry=industry)
    cons = EnhanceConstraints(max_deviation=0.3, min_constituent_weight=0.0,
                              style_bound=None, industry_bound=0.02, max_turnover=None)
    res = solve_rebalance(inp, cons)
    assert res.step == 0 and res.weights[0] == pytest.approx(0.08, abs=TOL)
    exposure = np.bincount(industry, res.weights - b)
    assert exposure[0] == pytest.approx(0.03, abs=TOL)  # what the frozen stock forces
    assert np.abs(exposure[1:]).max() <= 0.02 + TOL
    rc = realized_constraints(res.weights, inp, cons, *box_bounds(inp, cons))
    assert rc["industry_forced"] == pytest.approx(0.03)
    assert rc["max_industry_all"] == pytest.approx(0.03, abs=TOL)
    assert rc["max_industry"] <= 0.02 + TOL


@pytest.mark.parametrize("frozen_weight, step, exposure", [
    (0.06, 0, 0.0), (0.07, 1, 0.05), (0.08, 5, 0.1), (0.10, 6, None)])
def test_ladder_opens_a_neutral_band_step_by_step(frozen_weight: float, step: int,
                                                  exposure: float | None) -> None:
    """Size neutral, but a suspended high-size holding pushes the exposure up: the larger
    the holding, the further down the ladder the first feasible step."""
    n = 41
    x = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    x[0] = 3.0
    b = np.full(n, 1 / n)
    w0 = b * (1 - frozen_weight) / (1 - b[0])
    w0[0] = frozen_weight
    no = np.zeros(n, bool)
    inp = RebalanceInputs(mu=np.linspace(-1, 1, n), bench=b, current=w0,
                          investable=~no, member=~no, frozen=np.arange(n) == 0, no_buy=no,
                          no_sell=no, liquidate=no, styles=x[:, None], style_names=["size"],
                          industry=np.zeros(n, np.int64))
    cons = EnhanceConstraints(max_deviation=0.004, min_constituent_weight=0.0,
                              style_bounds={"size": 0.0}, industry_bound=None, max_turnover=0.3)
    res = solve_rebalance(inp, cons)
    assert res.step == step
    check_all(res.weights, inp, cons, None, DEFAULT_LADDER[step])
    if exposure is not None:  # the relaxed band binds exactly
        assert x @ (res.weights - b) == pytest.approx(exposure, abs=TOL)


@pytest.mark.parametrize("first", [None, 0, 1, 2, 3, 4, 5, 6, 7])
def test_galloping_search_finds_the_first_feasible_step(first: int | None) -> None:
    calls = []

    def attempt(i: int) -> np.ndarray | None:
        calls.append(i)
        return np.ones(1) if first is not None and i >= first else None

    assert _first_feasible(8, attempt, monotone=True) == first
    assert len(calls) == len(set(calls)) <= 7
    if first is not None and first <= 2:
        assert calls == list(range(first + 1))  # early steps: as cheap as in order
    calls.clear()
    assert _first_feasible(8, attempt, monotone=False) == first
    assert calls == list(range((7 if first is None else first) + 1))
    assert _monotone(DEFAULT_LADDER)
    assert not _monotone((DEFAULT_LADDER[2], DEFAULT_LADDER[1]))
