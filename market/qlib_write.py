"""Writer of Qlib's binary daily format (layout and conventions: :mod:`market.qlib`).

``write_qlib(market, root)`` turns a canonical :class:`market.schema.MarketData` into
``calendars/``, ``instruments/``, ``features/<code>/<field>.day.bin`` (+ the project's
extensions: share counts, ST flags, ``industry.csv``), which :func:`market.qlib.read_qlib`
and Qlib itself read.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from market.io import read_membership_frame, validate_index_close, write_instruments
from market.schema import MarketData, validate_bars

DAY_BIN = ".day.bin"
PRICES = ("open", "high", "low", "close", "vwap")  # back-adjusted in Qlib
REQUIRED_FIELDS = ("open", "high", "low", "close", "volume", "factor")
EXTRA_FIELDS = ("vwap", "amount", "total_shares", "float_shares", "is_st")
SUBDIRS = ("calendars", "instruments", "features")


def _with_factor(bars: pl.DataFrame) -> pl.DataFrame:
    """Qlib ``factor`` (1 on each stock's first bar): adj_factor, else chained from preclose."""
    if "adj_factor" in bars.columns:
        factor = pl.col("adj_factor")
    elif "preclose" in bars.columns:
        ratio = (pl.col("close").shift(1) / pl.col("preclose")).fill_null(1.0).fill_nan(1.0)
        factor = ratio.log().cum_sum().exp().over("code")
    else:
        factor = pl.lit(1.0)
    bars = bars.with_columns(factor.alias("factor"))
    adj_close = pl.col("close") * pl.col("factor")
    return bars.with_columns(
        *[(pl.col(c) * pl.col("factor")).alias(c) for c in PRICES if c in bars.columns],
        (pl.col("volume") / pl.col("factor")).alias("volume"),
        (adj_close / adj_close.shift(1).over("code") - 1).alias("change"),
        *([pl.col("is_st").cast(pl.Float64)] if "is_st" in bars.columns else []))


def _write_bins(sdir: Path, pos: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    """One ``<field>.day.bin`` per column, values at calendar positions ``pos`` (sorted)."""
    sdir.mkdir(parents=True, exist_ok=True)
    for name, values in columns.items():
        arr = np.full(pos[-1] - pos[0] + 2, np.nan, "<f4")
        arr[0] = pos[0]
        arr[pos - pos[0] + 1] = values
        arr.tofile(sdir / f"{name}{DAY_BIN}")


def _write_features(frame: pl.DataFrame, key: str, calendar: np.ndarray, features: Path,
                    fields: Sequence[str]) -> None:
    """``features/<key lower>/<field>.day.bin`` for each ``key`` group of ``frame``."""
    for (code,), grp in frame.group_by(key):
        pos = np.searchsorted(calendar, grp["date"].to_numpy().astype("datetime64[D]"))
        _write_bins(features / str(code).lower(), pos,
                    {c: grp[c].cast(pl.Float64).to_numpy() for c in fields})


def write_qlib(market: MarketData, root: str | Path, overwrite: bool = False) -> None:
    """Write ``market`` as a Qlib daily directory (the layout of the module docstring).

    Prices are back-adjusted with ``factor`` = ``adj_factor`` if given, else chained from
    ``preclose`` (``factor[t] = factor[t-1] * close[t-1] / preclose[t]``, 1 on the first
    bar), else 1; volume is divided by it. Zero-volume bars are kept. Industry goes to
    ``industry.csv`` (each stock's last one: a changing industry is not kept). Index
    levels on the bars' calendar go to ``features/<index code>/`` (factor 1). Refuses a
    root holding Qlib data unless ``overwrite`` (then the Qlib folders are replaced).
    """
    r = Path(root).expanduser()
    if any((r / d).exists() for d in SUBDIRS) and not overwrite:
        raise FileExistsError(f"{r} already holds Qlib data; pass overwrite=True to replace it")
    bars = _with_factor(validate_bars(market.bars, market.source))
    if bars.is_empty():
        raise ValueError(f"{market.source}: no bars to write")
    members = {n: read_membership_frame(m, f"{market.source}:{n}")
               for n, m in market.memberships.items()}
    calendar = np.sort(bars["date"].unique().to_numpy()).astype("datetime64[D]")
    for d in SUBDIRS:
        shutil.rmtree(r / d, ignore_errors=True)
    (r / "industry.csv").unlink(missing_ok=True)
    for d in SUBDIRS[:2]:
        (r / d).mkdir(parents=True)
    (r / "calendars" / "day.txt").write_text("".join(f"{d}\n" for d in calendar.astype(str)))
    fields = [c for c in (*REQUIRED_FIELDS, *EXTRA_FIELDS, "change") if c in bars.columns]
    _write_features(bars, "code", calendar, r / "features", fields)
    write_instruments(bars.group_by("code").agg(start=pl.col("date").min(),
                                                 end=pl.col("date").max()).sort("code"),
                       r / "instruments" / "all.txt")
    for name, m in members.items():
        write_instruments(m, r / "instruments" / f"{name}.txt")
    if market.index_close is not None:
        levels = validate_index_close(market.index_close, f"{market.source}:index_close")
        levels = levels.filter(pl.col("date").is_in(bars["date"].unique().implode()))
        _write_features(levels.with_columns(factor=pl.lit(1.0)), "index_code", calendar,
                        r / "features", ("close", "factor"))
    if "industry" in bars.columns:
        bars.group_by("code").agg(pl.col("industry").drop_nulls().last()).sort("code") \
            .write_csv(r / "industry.csv")
