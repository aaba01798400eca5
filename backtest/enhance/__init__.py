"""Index-enhancement portfolios (SPEC section 6): weekly LP rebalances against a benchmark.

- ``constraints``: typed constraints, trading settings, presets, relaxation ladder;
- ``inputs`` / ``problem``: one rebalance's cross-section and its cvxpy LP (+ ladder);
- ``benchmark``: benchmark weights and returns; ``market``: the simulation's arrays;
- ``simulate``: weekly rebalance, drift, costs, NAV; ``report`` / ``plots``: metrics,
  figures and the HTML section; ``cli``: the ``enhance`` subcommand.
See docs/enhance.md.
"""

from backtest.enhance.constraints import (DEFAULT_LADDER, PRESETS, EnhanceConstraints,
                                          RelaxStep, TradingSettings, preset, report1, report2)
from backtest.enhance.inputs import RebalanceInputs
from backtest.enhance.problem import (EnhanceProblem, InfeasibleError, RebalanceResult,
                                      solve_rebalance)
from backtest.enhance.simulate import EnhanceResult, simulate

__all__ = ["DEFAULT_LADDER", "PRESETS", "EnhanceConstraints", "EnhanceProblem", "EnhanceResult",
           "InfeasibleError", "RebalanceInputs", "RebalanceResult", "RelaxStep",
           "TradingSettings", "preset", "report1", "report2", "simulate", "solve_rebalance"]
