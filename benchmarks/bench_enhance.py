"""Time one enhancement rebalance (build the cvxpy LP + solve) at 300 / 1,000 / 4,000 names.

``python benchmarks/bench_enhance.py [--sizes 300 1000 4000] [--repeats 5]
[--solvers CLARABEL HIGHS] [--preset report1]``

Each problem is random but shaped like a real rebalance: a third of the names are
benchmark members (Dirichlet cap weights), 6 styles (standard normal), 30 industries,
current weights 85% benchmark + 15% random holdings (so turnover binds), 2% suspended, 3%
limit up, 2% limit down. Timed: ``EnhanceProblem(...)`` + ``.solve()`` (cvxpy
canonicalization included, as each rebalance rebuilds its problem), after one warm-up
solve per size so imports and first-call costs are excluded. Prints the median and the
minimum over the repeats, and the ladder step used.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from backtest.enhance import EnhanceProblem, RebalanceInputs, preset

STYLES = ["size", "beta", "momentum", "residual_volatility", "non_linear_size", "liquidity"]


def rebalance_inputs(n: int, seed: int = 0) -> RebalanceInputs:
    """A random rebalance of ``n`` names (module docstring)."""
    r = np.random.default_rng(seed)
    member = np.zeros(n, bool)
    member[r.choice(n, n // 3, replace=False)] = True
    b = np.zeros(n)
    b[member] = r.dirichlet(np.full(member.sum(), 2.0))
    w0 = 0.85 * b + 0.15 * r.dirichlet(np.full(n, 0.3))
    return RebalanceInputs(
        mu=r.standard_normal(n), bench=b, current=w0, investable=np.ones(n, bool),
        member=member, frozen=r.random(n) < 0.02, no_buy=r.random(n) < 0.03,
        no_sell=r.random(n) < 0.02, liquidate=np.zeros(n, bool),
        styles=r.standard_normal((n, len(STYLES))), style_names=STYLES,
        industry=r.integers(0, 30, n))


def time_one(n: int, solver: str, preset_name: str, repeats: int) -> tuple[list[float], int]:
    cons, _ = preset(preset_name)
    inp = rebalance_inputs(n)
    EnhanceProblem(inp, cons, solver).solve()  # warm-up
    times, step = [], -1
    for _ in range(repeats):
        start = time.perf_counter()
        step = EnhanceProblem(inp, cons, solver).solve().step
        times.append(time.perf_counter() - start)
    return times, step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 4000])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--solvers", nargs="+", default=["CLARABEL", "HIGHS"])
    p.add_argument("--preset", default="report1")
    args = p.parse_args()
    print(f"{'names':>6} {'solver':>9} {'median s':>9} {'min s':>7} {'step':>5}")
    for n in args.sizes:
        for solver in args.solvers:
            times, step = time_one(n, solver, args.preset, args.repeats)
            print(f"{n:>6} {solver:>9} {statistics.median(times):>9.3f} {min(times):>7.3f} "
                  f"{step:>5}", flush=True)


if __name__ == "__main__":
    main()
