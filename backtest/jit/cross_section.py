"""Compiled per-day kernels: correlations, ranks under masks, and the scatter of factor
rows onto the [day, stock] grid (row sorts and ordered selections: ``sorting``)."""

from __future__ import annotations

import math

import numba
import numpy as np

from backtest.jit._options import JIT


@numba.njit(inline="always", **JIT)
def _member_corr(a, b, member, ma, mb):  # pragma: no cover - compiled
    """Pearson correlation of one row's members around the means ``ma`` / ``mb``; NaN when
    a side is constant (centred sum of squares <= 1e-20 x its raw sum of squares)."""
    vx = 0.0
    vy = 0.0
    cxy = 0.0
    qx = 0.0
    qy = 0.0
    for j in range(a.shape[0]):
        if member[j]:
            u = a[j]
            w = b[j]
            qx += u * u
            qy += w * w
            u -= ma
            w -= mb
            vx += u * u
            vy += w * w
            cxy += u * w
    if vx > 1e-20 * qx and vy > 1e-20 * qy:
        return min(1.0, max(-1.0, cxy / math.sqrt(vx * vy)))
    return np.nan


@numba.njit(inline="always", **JIT)
def _members(a, b, m, member):  # pragma: no cover - compiled
    """Fill ``member`` with ``m & finite(a) & finite(b)`` for one row; return the count
    and the members' sums of ``a`` and ``b``."""
    n = 0
    sa = 0.0
    sb = 0.0
    for j in range(a.shape[0]):
        ok = m[j] and math.isfinite(a[j]) and math.isfinite(b[j])
        member[j] = ok
        if ok:
            n += 1
            sa += a[j]
            sb += b[j]
    return n, sa, sb


@numba.njit(parallel=True, **JIT)
def corr_rows(x, y, mask, min_count):  # pragma: no cover - compiled
    """[D] Pearson correlation per row over ``mask & finite(x) & finite(y)``.

    Same definition as :func:`backtest.kernels.row_corr`: two-pass (centred) sums; NaN
    for fewer than ``min_count`` entries or a constant side, the result clipped to [-1, 1].
    """
    d, s = x.shape
    out = np.full(d, np.nan)
    for i in numba.prange(d):
        member = np.empty(s, np.bool_)
        n, sx, sy = _members(x[i], y[i], mask[i], member)
        if n >= min_count:
            out[i] = _member_corr(x[i], y[i], member, sx / n, sy / n)
    return out


@numba.njit(inline="always", **JIT)
def _masked_ranks(v, order, member, out):  # pragma: no cover - compiled
    """Average ranks 1..n of the members along one row's ascending ``order``.

    ``order`` sorts the row ascending (ties in any order). Blocks of equal values share
    the mean of their members' ordinal ranks; non-members (non-finite values included:
    NaN equals nothing) are skipped and ``out`` is left untouched there. One gather of
    ``v`` per entry; a block is revisited only when it holds ties.
    """
    s = order.shape[0]
    if s == 0:
        return
    pos = 0.0
    start = 0
    cur = v[order[0]]
    nxt = cur
    for i in range(1, s + 1):
        if i < s:
            nxt = v[order[i]]
            if nxt == cur:
                continue
        if i - start == 1:  # no tie: the usual case
            j = order[start]
            if member[j]:
                pos += 1.0
                out[j] = pos
        else:
            c = 0
            for q in range(start, i):
                c += member[order[q]]
            if c:
                rank = pos + (c + 1) / 2.0
                for q in range(start, i):
                    if member[order[q]]:
                        out[order[q]] = rank
                pos += c
        start = i
        cur = nxt


@numba.njit(parallel=True, **JIT)
def rank_corr_rows(x, ox, y, oy, mask, min_count, pearson=False):  # pragma: no cover
    """[D] Spearman correlation per row: Pearson of average ranks over the joint mask.

    ``ox`` / ``oy``: row-wise ascending orders of ``x`` / ``y`` (``sorting.row_order``),
    shared between calls.
    Both sides are ranked among the same stocks: ``mask & finite(x) & finite(y)``.
    Returns (Spearman [D], Pearson [D] of the raw values over the same stocks, as
    :func:`corr_rows`, when ``pearson``, else all NaN) from one pass over the inputs.
    """
    d, s = x.shape
    out = np.full(d, np.nan)
    raw = np.full(d, np.nan)
    for i in numba.prange(d):
        member = np.empty(s, np.bool_)
        n, sx, sy = _members(x[i], y[i], mask[i], member)
        if n < min_count:
            continue
        if pearson:
            raw[i] = _member_corr(x[i], y[i], member, sx / n, sy / n)
        rx = np.empty(s)
        ry = np.empty(s)
        _masked_ranks(x[i], ox[i], member, rx)
        _masked_ranks(y[i], oy[i], member, ry)
        mean = (n + 1) / 2.0  # average ranks of n entries always sum to n (n + 1) / 2
        out[i] = _member_corr(rx, ry, member, mean, mean)
    return out, raw


@numba.njit(parallel=True, **JIT)
def rank_rows_masked(v, order, mask):  # pragma: no cover - compiled
    """[D, S] average ranks among ``mask & finite(v)`` per row (NaN elsewhere)."""
    d, s = v.shape
    out = np.full((d, s), np.nan)
    for i in numba.prange(d):
        member = np.empty(s, np.bool_)
        for j in range(s):
            member[j] = mask[i, j] and math.isfinite(v[i, j])
        _masked_ranks(v[i], order[i], member, out[i])
    return out


@numba.njit(**JIT)
def scatter_unique(di, si, keep, values, d, s, valid):  # pragma: no cover - compiled
    """Scatter rows (day ``di``, column ``si``, where ``keep``) onto a [d, s] NaN grid.

    Returns the grid (non-finite values stay NaN) and the counts (duplicate positions,
    non-finite kept values, first and last kept day, scored & valid / valid /
    scored & not valid stock-days over the first..last days).
    """
    out = np.full((d, s), np.nan)
    seen = np.zeros((d, s), np.bool_)
    duplicates = 0
    non_finite = 0
    first = d
    last = -1
    for k in range(di.shape[0]):
        if not keep[k]:
            continue
        i = di[k]
        j = si[k]
        if seen[i, j]:
            duplicates += 1
        seen[i, j] = True
        v = values[k]
        if math.isfinite(v):
            out[i, j] = v
        else:
            non_finite += 1
        first = min(first, i)
        last = max(last, i)
    scored_valid = 0
    n_valid = 0
    scored_not_valid = 0
    for i in range(first, last + 1):
        for j in range(s):
            scored = math.isfinite(out[i, j])
            n_valid += valid[i, j]
            scored_valid += scored and valid[i, j]
            scored_not_valid += scored and not valid[i, j]
    return out, (duplicates, non_finite, first, last, scored_valid, n_valid, scored_not_valid)


__all__ = ["corr_rows", "rank_corr_rows", "rank_rows_masked", "scatter_unique"]
