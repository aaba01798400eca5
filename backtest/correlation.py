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

from backtest.kernels import SortedRows, row_rank_corr


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def factor_correlation(factors: Mapping[str, np.ndarray], mask: np.ndarray | None = None
                       ) -> pl.DataFrame:
    """Square table: column ``factor`` then one column per factor (mean daily rank corr)."""
    names = list(factors)
    mat = np.eye(len(names))
    sorts = {n: SortedRows(v) for n, v in factors.items()}  # one sort per factor
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            b = names[j]
            mat[i, j] = mat[j, i] = _mean(row_rank_corr(sorts[a], sorts[b], mask))
    return pl.DataFrame({"factor": names, **{n: mat[:, k] for k, n in enumerate(names)}})


def style_exposure(factors: Mapping[str, np.ndarray], styles: Mapping[str, np.ndarray],
                   spans: Mapping[str, tuple[int, int]]) -> pl.DataFrame:
    """One row per factor x style: mean daily rank correlation and share of days > 0."""
    rows = []
    sorted_styles: dict[tuple[str, int, int], SortedRows] = {}
    for name, score in factors.items():
        lo, hi = spans[name]
        sorted_score = SortedRows(score[lo:hi + 1])  # one sort per factor and per style
        for style, expo in styles.items():
            key = (style, lo, hi)
            if key not in sorted_styles:
                sorted_styles[key] = SortedRows(expo[lo:hi + 1])
            corr = row_rank_corr(sorted_score, sorted_styles[key])
            ok = corr[np.isfinite(corr)]
            rows.append({"factor": name, "style": style, "exposure": _mean(corr),
                         "positive_days": float((ok > 0).mean()) if ok.size else float("nan"),
                         "n_days": int(ok.size)})
    return pl.DataFrame(rows)
