"""Compiled per-day kernels: correlations, ranks under masks, row sorts, ordered
selections, and the scatter of factor rows onto the [day, stock] grid."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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

    ``ox`` / ``oy``: row-wise ascending orders of ``x`` / ``y`` (:func:`row_order`),
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
def _pack_rows(x, lo, hi, bits, keys):  # pragma: no cover - compiled
    """Rows ``lo:hi`` of [D, S] ``x`` as uint64 keys into ``keys[:hi - lo]``: the value's
    order-preserving bits with the low ``bits`` replaced by the column.

    NaN gets the largest key (sorts last). Values equal in their top ``64 - bits`` key bits
    sort by column instead of value; :func:`_unpack_rows` repairs that.
    """
    s = x.shape[1]
    low = np.uint64((1 << bits) - 1)
    top = np.uint64(1) << np.uint64(63)
    for i in range(lo, hi):
        for j in range(s):
            v = x[i, j]
            if math.isnan(v):
                key = ~np.uint64(0)
            else:
                if v == 0.0:
                    v = 0.0  # -0.0 == 0.0: one key, so equal values stay in column order
                b = np.uint64(np.float64(v).view(np.int64))  # two's complement bits
                key = ~b if b & top else b | top  # negative: flip all; positive: set sign
            keys[i - lo, j] = (key & ~low) | np.uint64(j)


@numba.njit(**JIT)
def _unpack_rows(keys, x, lo, hi, bits, out):  # pragma: no cover - compiled
    """Columns of rows ``lo:hi`` from their sorted packed keys into ``out``, then an
    insertion pass restoring the exact order."""
    s = x.shape[1]
    low = np.uint64((1 << bits) - 1)
    for i in range(lo, hi):
        o = out[i]
        for j in range(s):
            o[j] = keys[i - lo, j] & low
        v = x[i]
        for j in range(1, s):  # near-sorted: O(S + inversions)
            k = j
            while k > 0 and v[o[k - 1]] > v[o[k]]:
                o[k - 1], o[k] = o[k], o[k - 1]
                k -= 1


_ORDER_BLOCK = 32  # rows per block: its keys (~1 MB at 4,000 stocks) stay in cache


def row_order(x: np.ndarray, fill: Callable[[int, int], None] | None = None) -> np.ndarray:
    """[D, S] row-wise ascending order of ``x`` (float64), NaN last; int16 columns below
    32,768 stocks (less memory traffic for the kernels reading it), else int32.

    Sorts one packed uint64 key per entry (the value's order-preserving bits with the
    column in the low bits) with numpy's vectorized integer sort: measured 4-10x faster
    than ``np.argsort`` of the floats on [2,431 x 3,806] with missing values. Equal values
    come in column order. Blocks of 32 rows are packed, sorted and unpacked in turn on
    every core (the GIL is free in all three steps), so a block's keys never leave the
    cache: 0.038 s against 0.073 s for whole-array passes on the real market's forward
    returns (2 cores).

    ``fill(lo, hi)``, if given, writes rows ``lo:hi`` of ``x`` (a float64 C-contiguous array
    the caller owns) just before their block is sorted: the values are computed and sorted
    while in cache (the forward returns: :meth:`backtest.context.MarketContext.forward_sorted`).
    It must release the GIL to use every core (a compiled ``nogil`` kernel does).
    """
    if fill is not None and not (x.dtype == np.float64 and x.flags.c_contiguous):
        raise ValueError("row_order(fill=...) needs a C-contiguous float64 array to fill")
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"row_order needs a 2-d array, got shape {x.shape}")
    bits = max(1, int(x.shape[1] - 1).bit_length())
    if bits > 31:
        raise ValueError(f"row_order supports up to 2**31 columns, got {x.shape[1]}")
    out = np.empty(x.shape, np.int16 if bits < 16 else np.int32)
    starts = range(0, x.shape[0], _ORDER_BLOCK)
    workers = max(1, min(numba.get_num_threads(), len(starts)))

    def work(k: int) -> None:
        keys = np.empty((_ORDER_BLOCK, x.shape[1]), np.uint64)
        for lo in starts[k::workers]:
            hi = min(lo + _ORDER_BLOCK, x.shape[0])
            if fill is not None:
                fill(lo, hi)
            _pack_rows(x, lo, hi, bits, keys)
            keys[: hi - lo].sort(axis=1)
            _unpack_rows(keys, x, lo, hi, bits, out)

    if workers == 1:
        work(0)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(workers)))
    return out


@numba.njit(parallel=True, **JIT)
def select_ordered(x, order, rows, eligible, width, descending):  # pragma: no cover
    """([T, width] columns, [T] counts): for each t, the finite eligible entries of row
    ``rows[t]`` of ``x`` in ascending (or descending) value order, ties by column.

    ``order`` is :func:`row_order` of ``x``; ``eligible`` is [T, S]. Only the first
    ``width`` are written (the rest of a short row is -1); counts are all of them.
    """
    n_rows = rows.shape[0]
    s = x.shape[1]
    out = np.full((n_rows, width), -1, np.int64)
    counts = np.zeros(n_rows, np.int64)
    for t in numba.prange(n_rows):
        v = x[rows[t]]
        o = order[rows[t]]
        el = eligible[t]
        c = 0
        if not descending:
            for i in range(s):
                j = o[i]
                if el[j] and math.isfinite(v[j]):
                    if c < width:
                        out[t, c] = j
                    c += 1
        else:  # tie blocks from the top, each in column (= stored) order
            b = s - 1
            while b >= 0:
                a = b
                while a > 0 and v[o[a - 1]] == v[o[b]]:
                    a -= 1
                for i in range(a, b + 1):
                    j = o[i]
                    if el[j] and math.isfinite(v[j]):
                        if c < width:
                            out[t, c] = j
                        c += 1
                b = a - 1
        counts[t] = c
    return out, counts


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


__all__ = ["corr_rows", "rank_corr_rows", "rank_rows_masked", "row_order", "scatter_unique",
           "select_ordered"]
