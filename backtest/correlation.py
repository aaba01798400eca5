"""Factor-to-factor correlation and style exposure (SPEC 5).

- Factor correlation: for every pair, the mean over days of the cross-sectional rank
  (Spearman) correlation over the stocks both factors score that day (days both cover).
- Style exposure: for every factor and style of :mod:`backtest.styles`, the mean over the
  factor's days of the cross-sectional rank correlation between the factor and the
  style exposure (stocks with both values); rank correlation, so the factor's scale and
  tails do not matter. Also reported: the share of days with a positive correlation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from backtest.kernels import SortedRows, row_rank_corr, shared_sort


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def factor_correlation(factors: Mapping[str, np.ndarray], mask: np.ndarray | None = None,
                       sorts: Mapping[str, SortedRows] | None = None) -> pl.DataFrame:
    """Square table: column ``factor`` then one column per factor (mean daily rank corr).

    sorts: optional factor name -> row sort of its array (shared between tests)."""
    names = list(factors)
    mat = np.eye(len(names))
    sorts = {n: shared_sort(sorts, n, v) for n, v in factors.items()}
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            b = names[j]
            mat[i, j] = mat[j, i] = _mean(row_rank_corr(sorts[a], sorts[b], mask))
    return pl.DataFrame({"factor": names, **{n: mat[:, k] for k, n in enumerate(names)}})


def style_exposure(factors: Mapping[str, np.ndarray],
                   styles: Mapping[str, np.ndarray | SortedRows],
                   spans: Mapping[str, tuple[int, int]],
                   sorts: Mapping[str, SortedRows] | None = None) -> pl.DataFrame:
    """One row per factor x style: mean daily rank correlation and share of days > 0.

    styles: name -> [D, S] exposure or its row sort; sorts: optional factor name -> row
    sort of its whole array. One sort per factor and per style serves every pair."""
    rows = []
    sorted_styles = {k: v if isinstance(v, SortedRows) else SortedRows(v)
                     for k, v in styles.items()}
    for name, score in factors.items():
        lo, hi = spans[name]
        sorted_score = shared_sort(sorts, name, score).rows(lo, hi)
        for style, expo in sorted_styles.items():
            corr = row_rank_corr(sorted_score, expo.rows(lo, hi))
            ok = corr[np.isfinite(corr)]
            rows.append({"factor": name, "style": style, "exposure": _mean(corr),
                         "positive_days": float((ok > 0).mean()) if ok.size else float("nan"),
                         "n_days": int(ok.size)})
    return pl.DataFrame(rows)
