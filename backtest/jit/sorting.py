"""Compiled row sorts (packed integer keys, sorted in cache-sized blocks) and the ordered
selections that walk them."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from backtest.jit._options import JIT


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


__all__ = ["row_order", "select_ordered"]
