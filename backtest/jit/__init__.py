"""Compiled per-row kernels (numba) behind the hot paths of the backtest.

Modules: :mod:`~backtest.jit.cross_section` (correlations, ranks, the factor scatter),
:mod:`~backtest.jit.sorting` (row sorts, ordered selections),
:mod:`~backtest.jit.portfolio` (simulation, trade prices, benchmark) and
:mod:`~backtest.jit.styles` (style descriptors); every kernel is re-exported here.

Each kernel implements a definition documented in the module that calls it
(:mod:`backtest.kernels`, :mod:`backtest.portfolio`, :mod:`backtest.styles`,
:mod:`backtest.context`, :mod:`backtest.topk`); the tests check each one against its
numpy formulation or an independent reference (scipy per day, hand loops, direct sums),
most of them bit for bit. Cross-sectional kernels run one day (row) per task over every
core (``numba.prange``), time-series kernels blocks of 64 stocks; each touches its inputs
once, without [D, S] temporaries: on this project's 2-core machine a numpy pass over a
10M-element array costs 0.05-0.3 s, so the numpy versions were dominated by
temporaries, gathers and scatters rather than arithmetic.

Compiled code is cached on disk (``cache=True``, next to this file or under
``NUMBA_CACHE_DIR``): a fresh checkout compiles all kernels once, in 10-30 s in all.
"""

from backtest.jit.cross_section import (corr_rows, rank_corr_rows, rank_rows_masked,
                                         scatter_unique)
from backtest.jit.portfolio import adjusted_price_rows, market_mean_rows, simulate_rows
from backtest.jit.sorting import row_order, select_ordered
from backtest.jit.styles import (cmra_rows, combine_rows, ew_beta_rows, ewm_window_rows,
                                  residual_rows, standardize_rows, turnover_ratio_rows)

__all__ = ["adjusted_price_rows", "cmra_rows", "combine_rows", "corr_rows", "ew_beta_rows",
           "ewm_window_rows", "market_mean_rows", "rank_corr_rows", "rank_rows_masked",
           "residual_rows", "row_order", "scatter_unique", "select_ordered", "simulate_rows",
           "standardize_rows", "turnover_ratio_rows"]
