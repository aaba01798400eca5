"""Compiled style-descriptor kernels: per-day standardization and OLS residuals, and
time-series window sums (exponentially weighted sums, beta / HSIGMA, CMRA, turnover)."""

from __future__ import annotations

import math

import numba
import numpy as np

from backtest.jit._options import JIT


@numba.njit(parallel=True, **JIT)
def standardize_rows(raw, weights, mask, winsor):  # pragma: no cover - compiled
    """Compiled :func:`backtest.styles.standardize_styles` (same definition): per row,
    weighted mean 0 / equal-weighted std 1 over ``mask & finite(raw)``, clip to
    ``+-winsor``, standardize again; NaN off the cross-section."""
    d, s = raw.shape
    out = np.full((d, s), np.nan)
    for i in numba.prange(d):
        m = np.empty(s, np.bool_)
        z = np.zeros(s)
        w = np.zeros(s)
        n = 0
        wsum = 0.0
        for j in range(s):
            ok = mask[i, j] and math.isfinite(raw[i, j])
            m[j] = ok
            if ok:
                n += 1
                z[j] = raw[i, j]
                wt = weights[i, j]
                if math.isfinite(wt) and wt > 0:
                    w[j] = wt
                    wsum += wt
        if wsum <= 0:  # no usable weight: equal weights
            for j in range(s):
                w[j] = 1.0 if m[j] else 0.0
            wsum = float(n)
        nf = max(float(n), 1.0)
        for rnd in range(2):
            sw = 0.0
            se = 0.0
            sq = 0.0
            for j in range(s):
                sw += w[j] * z[j]
                se += z[j]
                sq += z[j] * z[j]
            mu_w = sw / max(wsum, 1e-300)
            mu_e = se / nf
            sd = math.sqrt(max(sq / nf - mu_e * mu_e, 0.0))
            scale = 1.0 / sd if sd > 1e-12 else 0.0
            for j in range(s):
                if m[j]:
                    v = (z[j] - mu_w) * scale
                    if rnd == 0:
                        v = min(winsor, max(-winsor, v))
                    z[j] = v
        for j in range(s):
            if m[j]:
                out[i, j] = z[j]
    return out


@numba.njit(parallel=True, **JIT)
def residual_rows(y, regs, mask, weights, weighted):  # pragma: no cover - compiled
    """Compiled :func:`backtest.kernels.cross_sectional_residual`: per row, the (weighted)
    OLS residual of ``y`` on ``[1, *regs]`` (regs [K-1, D, S]) over ``mask`` & finite
    inputs (& weight > 0); NaN elsewhere and on rows with no more stocks than K. A ridge
    of 1e-12 x trace(X'WX) keeps the normal equations solvable."""
    d, s = y.shape
    kr = regs.shape[0]
    k = kr + 1
    out = np.full((d, s), np.nan)
    for i in numba.prange(d):
        m = np.empty(s, np.bool_)
        n = 0
        for j in range(s):
            ok = mask[i, j] and math.isfinite(y[i, j])
            for r in range(kr):
                ok = ok and math.isfinite(regs[r, i, j])
            if weighted:
                ok = ok and math.isfinite(weights[i, j]) and weights[i, j] > 0
            m[j] = ok
            n += ok
        if n <= k:
            continue
        xtx = np.zeros((k, k))
        xty = np.zeros(k)
        row = np.empty(k)
        for j in range(s):
            if not m[j]:
                continue
            wt = weights[i, j] if weighted else 1.0
            row[0] = 1.0
            for r in range(kr):
                row[r + 1] = regs[r, i, j]
            for a in range(k):
                xty[a] += wt * row[a] * y[i, j]
                for b in range(a, k):
                    xtx[a, b] += wt * row[a] * row[b]
        trace = 0.0
        for a in range(k):
            trace += xtx[a, a]
            for b in range(a):
                xtx[a, b] = xtx[b, a]
        for a in range(k):
            xtx[a, a] += 1e-12 * trace
        beta = np.linalg.solve(xtx, xty)
        for j in range(s):
            if m[j]:
                v = y[i, j] - beta[0]
                for r in range(kr):
                    v -= beta[r + 1] * regs[r, i, j]
                out[i, j] = v
    return out


@numba.njit(parallel=True, **JIT)
def ewm_window_rows(x, window, lam, lam_window, lag):  # pragma: no cover - compiled
    """Compiled :func:`backtest.kernels.ewm_window_sum`: ``E[t] - lam^window E[t-window]``
    with ``E[t] = x[t] + lam E[t-1]`` (NaN as 0), shifted down ``lag`` rows (zeros on top);
    columns in parallel, the same arithmetic as the numpy formulation."""
    d, s = x.shape
    e = np.empty((d, s))
    out = np.zeros((d, s))
    block = 64  # columns per task: rows stay contiguous in the inner loop
    for blk in numba.prange((s + block - 1) // block):
        j0 = blk * block
        j1 = min(s, j0 + block)
        for i in range(d):
            for j in range(j0, j1):
                v = x[i, j]
                v = v if math.isfinite(v) else 0.0
                # lam = 1: v + 1.0 * prev == v + prev exactly
                e[i, j] = v + lam * e[i - 1, j] if i else v
        for i in range(d - lag):
            for j in range(j0, j1):
                val = e[i, j]
                if i >= window:
                    val -= lam_window * e[i - window, j]
                out[i + lag, j] = val
    return out


@numba.njit(parallel=True, **JIT)
def ew_beta_rows(ret, obs, market, have_cum, mask, window, lam, lam_window,
                 min_periods):  # pragma: no cover - compiled
    """Compiled :func:`backtest.styles._beta_hsigma`: exponentially weighted regression of
    ``ret`` on ``market`` over ``window`` rows; (beta, residual std) [D, S], NaN where fewer
    than ``min_periods`` observed days, a flat market or off ``mask``. The six window sums
    use :func:`ewm_window_rows`' arithmetic, so the values equal the numpy formulation's."""
    d, s = ret.shape
    beta = np.full((d, s), np.nan)
    hsigma = np.full((d, s), np.nan)
    block = 64
    for blk in numba.prange((s + block - 1) // block):
        j0 = blk * block
        width = min(s, j0 + block) - j0
        e = np.empty((6, d, width))  # running E of: weight, x, y, xx, yy, xy
        for i in range(d):
            for c in range(width):
                j = j0 + c
                o = obs[i, j]
                x = market[i] if o else 0.0
                y = ret[i, j] if o else 0.0
                vals = (1.0 if o else 0.0, x, y, x * x, y * y, x * y)
                for k in range(6):
                    e[k, i, c] = vals[k] + lam * e[k, i - 1, c] if i else vals[k]
        for i in range(d):
            for c in range(width):
                j = j0 + c
                sums = np.empty(6)
                for k in range(6):
                    v = e[k, i, c]
                    if i >= window:
                        v -= lam_window * e[k, i - window, c]
                    sums[k] = v
                sw = sums[0]
                mx = sums[1] / sw
                my = sums[2] / sw
                vx = sums[3] / sw - mx * mx
                vy = sums[4] / sw - my * my
                cov = sums[5] / sw - mx * my
                b = cov / vx
                count = have_cum[i, j] - (have_cum[i - window, j] if i >= window else 0)
                if count >= min_periods and vx > 1e-14 and mask[i, j]:
                    beta[i, j] = b
                    hsigma[i, j] = math.sqrt(max(vy - b * cov, 0.0))
    return beta, hsigma


@numba.njit(parallel=True, **JIT)
def combine_rows(parts, weights):  # pragma: no cover - compiled
    """[D, S] ``sum_k w_k z_k / sum_k w_k`` over the parts [K, D, S] finite at each entry
    (NaN where none is), accumulated in part order as the numpy formulation does."""
    k, d, s = parts.shape
    out = np.full((d, s), np.nan)
    for i in numba.prange(d):
        for j in range(s):
            total = 0.0
            wsum = 0.0
            for q in range(k):
                z = parts[q, i, j]
                if math.isfinite(z):
                    total += weights[q] * z
                    wsum += weights[q]
            if wsum > 0:
                out[i, j] = total / wsum
    return out


@numba.njit(parallel=True, **JIT)
def cmra_rows(logret, life, mask, month_days, months, min_months):  # pragma: no cover
    """Compiled CMRA (:func:`backtest.styles._cmra`): the range of the cumulative log
    return lagged 1..``months`` months (listed days only), where at least ``min_months``
    whole months of listed life exist and ``mask`` holds."""
    d, s = logret.shape
    out = np.full((d, s), np.nan)
    block = 64
    for blk in numba.prange((s + block - 1) // block):
        j0 = blk * block
        width = min(s, j0 + block) - j0
        cum = np.empty((d, width))
        for i in range(d):
            for c in range(width):
                cum[i, c] = logret[i, j0 + c] + cum[i - 1, c] if i else logret[i, j0 + c]
        for i in range(d):
            for c in range(width):
                j = j0 + c
                if not mask[i, j] or min((life[i, j] - 1) // month_days, months) < min_months:
                    continue
                hi = -np.inf
                lo = np.inf
                for t_months in range(1, months + 1):
                    lag = t_months * month_days
                    if lag > i:
                        break
                    if life[i - lag, j] == 0:
                        continue  # before listing: no reference point
                    v = cum[i - lag, c]
                    hi = max(hi, v)
                    lo = min(lo, v)
                if hi >= lo:
                    out[i, j] = hi - lo
    return out


@numba.njit(parallel=True, **JIT)
def turnover_ratio_rows(turnover, mask, windows, month_days, min_periods):  # pragma: no cover
    """[W, D, S] ``month_days x sum / count`` of the finite turnover on ``mask`` days over
    each trailing window (running sums, the numpy formulation's arithmetic), NaN where the
    count is below ``min(min_periods, window)`` or off ``mask``; the caller takes logs."""
    d, s = turnover.shape
    out = np.full((windows.shape[0], d, s), np.nan)
    block = 64
    for blk in numba.prange((s + block - 1) // block):
        j0 = blk * block
        width = min(s, j0 + block) - j0
        count = np.empty((d, width), np.int64)
        total = np.empty((d, width))
        for i in range(d):
            for c in range(width):
                v = turnover[i, j0 + c]
                have = mask[i, j0 + c] and math.isfinite(v)
                count[i, c] = (count[i - 1, c] if i else 0) + have
                total[i, c] = (total[i - 1, c] + (v if have else 0.0) if i
                               else (v if have else 0.0))
        for w in range(windows.shape[0]):
            window = windows[w]
            need = min(min_periods, window)
            for i in range(d):
                for c in range(width):
                    j = j0 + c
                    n = count[i, c] - (count[i - window, c] if i >= window else 0)
                    if n < need or not mask[i, j]:
                        continue
                    tot = total[i, c] - total[i - window, c] if i >= window else total[i, c]
                    out[w, i, j] = month_days * tot / n
    return out


__all__ = ["standardize_rows", "residual_rows", "ewm_window_rows", "ew_beta_rows",
           "combine_rows", "cmra_rows", "turnover_ratio_rows"]
