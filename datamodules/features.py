"""Window features: dense ``[D, S, F]`` inputs, per-window scaling, a robust normalizer.

The 150-day window of day t for stock s is ``inputs[t-W+1 : t+1, s, :]``, a slice of the
dense array (a view): only the current batch's rows are ever copied. Per-window
scaling makes every window scale-free (SPEC 1): prices (open, high, low, close, vwap)
are divided by the window's last close, volume by the window's last volume. Prices
are back-adjusted (``adj_close / close`` applied to every price field) and volume is
divided by the same ratio so splits do not create jumps.
"""

from __future__ import annotations

import numpy as np
import torch

from market.panel import Panel

PRICE_FEATURES = ("open", "high", "low", "close", "vwap")
VOLUME_FEATURES = ("volume", "amount")


def build_inputs(panel: Panel, features: list[str]) -> np.ndarray:
    """Dense ``[D, S, F]`` float32 inputs; NaN where the stock has no valid bar."""
    unknown = [f for f in features if f not in (*PRICE_FEATURES, *VOLUME_FEATURES)]
    if unknown:
        raise ValueError(f"unknown feature(s) {unknown}; choose from "
                         f"{PRICE_FEATURES + VOLUME_FEATURES}")
    ratio = panel["adj_close"] / panel["close"]
    out = np.empty((*panel.shape, len(features)), np.float32)
    for k, name in enumerate(features):
        if name in PRICE_FEATURES:
            col = panel[name] * ratio
        elif name == "volume":
            col = panel[name] / ratio  # shares: a 10:1 split multiplies volume by 10
        else:
            col = panel[name]  # amount is in CNY, unaffected by splits
        out[..., k] = np.where(panel.valid, col, np.nan)
    return out


def scale_windows(win: np.ndarray, features: list[str]) -> np.ndarray:
    """Make windows ``[N, W, F]`` scale-free in place: prices / last close, volume / last volume.

    Requires a finite positive last close and last volume (eligibility guarantees it).
    """
    prices = [k for k, name in enumerate(features) if name in PRICE_FEATURES]
    if prices and "close" not in features:
        raise ValueError("price features need 'close' among the features")
    divisor = win[:, -1, :].copy()  # [N, F]: each feature's last value ...
    if prices:  # ... and the last close for every price feature
        divisor[:, prices] = divisor[:, [features.index("close")]]
    torch.from_numpy(win).div_(torch.from_numpy(divisor)[:, None, :])  # one in-place pass
    return win


class RobustNormalizer:
    """Winsorize + z-score per (lag, feature), fitted on training windows only.

    Statistics: median and MAD (scaled by 1.4826 to a normal-consistent sigma) of the
    scale-free windows over a sample of training days; transform
    ``clip((x - median) / sigma, -clip, clip)``. Remaining NaN (days without a bar inside
    the window) become 0 after scaling; their count is returned by :meth:`transform`.
    """

    def __init__(self, clip: float = 3.0) -> None:
        self.clip = clip
        self.median: np.ndarray | None = None
        self.sigma: np.ndarray | None = None

    def fit(self, windows: np.ndarray) -> "RobustNormalizer":
        """windows: [N, W, F] scale-free windows pooled from training days."""
        med = np.nanmedian(windows, axis=0)  # [W, F]
        mad = np.nanmedian(np.abs(windows - med), axis=0) * 1.4826
        # a lag/feature that is constant by construction (the last close is 1) gets sigma 1
        self.median = np.nan_to_num(med).astype(np.float32)
        self.sigma = np.where(np.isfinite(mad) & (mad > 1e-8), mad, 1.0).astype(np.float32)
        return self

    def transform(self, win: np.ndarray, count: bool = True) -> tuple[np.ndarray, int]:
        """Normalize ``[N, W, F]`` in place; returns (windows, number of NaN entries filled;
        -1 when ``count=False``: the batch path skips the extra pass, the DataModule's
        report counts the filled window days once for all days)."""
        if self.median is None:
            raise RuntimeError("RobustNormalizer.transform called before fit")
        # torch's in-place kernels on the same memory: ~6x faster than numpy's clip and
        # nan_to_num on a [3,300, 150, 6] day (measured)
        x = torch.from_numpy(win)
        x.sub_(torch.from_numpy(self.median)).mul_(torch.from_numpy(1.0 / self.sigma))
        x.clamp_(-self.clip, self.clip)  # NaN stays NaN
        filled = int(torch.isnan(x).sum()) if count else -1
        x.nan_to_num_(0.0)
        return win, filled

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"median": self.median, "sigma": self.sigma}


def eligibility(panel: Panel, window: int, min_valid_frac: float) -> np.ndarray:
    """[D, S] bool: stock s can be scored on day t.

    Requires a valid bar on t, a first bar at least ``window - 1`` days before t (the
    whole window lies inside the stock's listed life: never padded with other days), and
    at least ``min_valid_frac`` of the window's days with valid bars.
    """
    valid = panel.valid
    d = valid.shape[0]
    csum = np.vstack([np.zeros((1, valid.shape[1]), np.int32),
                      np.cumsum(valid, axis=0, dtype=np.int32)])
    t = np.arange(d)
    lo = np.maximum(t - window + 1, 0)
    count = csum[t + 1] - csum[lo]  # [D, S] valid days in the window
    first = np.argmax(panel.listed, axis=0)  # first listed day per stock
    full = (t[:, None] - window + 1) >= first[None, :]
    return valid & full & (count >= np.ceil(min_valid_frac * window))
