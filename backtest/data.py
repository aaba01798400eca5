"""Load the market and factor files, and align factors onto the panel's ``[D, S]`` grid.

Market specs (``--data``):
- ``auto``: the source recorded in the first factor file's metadata (key ``data``);
- ``synthetic`` or ``synthetic:n_stocks=500,n_days=1250,seed=0,start=2015-01-05``;
- ``cn_shared`` (``../shared/data`` or ``$DEEPFACTOR_CN_DATA``), ``cn_shared:<root>`` or
  ``cn_shared:root=<dir>,start=<iso>,end=<iso>,industry=csrc``;
- a directory in the long layout (``market.sources.MarketDirectory``);
- a source key as stored in factor metadata (``synthetic(...)``, ``dir:...``, ``cn_shared:...``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from backtest.jit import scatter_unique

from market.io import read_membership
from market.panel import Panel, membership_mask
from market.sources import CNSharedMarket, MarketDirectory, MarketSource, SyntheticMarket

FACTOR_COLUMNS = {"date": pl.Date, "code": pl.String, "score": pl.Float64}
SHOWN = 5


def factor_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata under key ``deepfactor`` of a factor parquet file ({} if none)."""
    import json

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"deepfactor")
    return json.loads(raw) if raw else {}


def _options(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ValueError(f"market option {part!r} is not key=value")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _synthetic(opts: Mapping[str, str]) -> SyntheticMarket:
    """A SyntheticMarket from key options; ``start`` (the key's name) or ``first_day``."""
    allowed = {"n_stocks", "n_days", "seed", "start", "first_day"}
    if set(opts) - allowed:
        raise ValueError(f"synthetic market options are {sorted(allowed)}, got {sorted(opts)}")
    kw: dict[str, Any] = {k: int(v) for k, v in opts.items() if k not in ("start", "first_day")}
    first = opts.get("first_day", opts.get("start"))
    if first is not None:
        params = inspect.signature(SyntheticMarket).parameters
        kw["first_day" if "first_day" in params else "start"] = first
    return SyntheticMarket(**kw)


def source_from_key(key: str) -> MarketSource:
    """A source from a ``MarketSource.key()`` string (as stored in factor metadata)."""
    if m := re.fullmatch(r"synthetic\((.*)\)", key):
        return _synthetic(_options(m.group(1)))
    if key.startswith("dir:"):
        return MarketDirectory(key[4:])
    if key.startswith("cn_shared:"):
        root, start, end, industry = key[len("cn_shared:"):].rsplit(":", 3)
        return CNSharedMarket(root, None if start == "None" else start,
                              None if end == "None" else end, industry)  # type: ignore[arg-type]
    raise ValueError(f"unrecognised market key {key!r}")


def market_source(spec: str, factor_paths: Sequence[str | Path] = ()) -> MarketSource:
    """Resolve a ``--data`` spec (module docstring) into a market source."""
    if spec == "auto":
        if not factor_paths:
            raise ValueError("--data auto needs at least one factor file")
        key = factor_metadata(factor_paths[0]).get("data")
        if not key:
            raise ValueError(f"{factor_paths[0]} has no 'data' key in its metadata; "
                             f"pass --data synthetic|cn_shared|<dir>")
        return source_from_key(str(key))
    name, _, rest = spec.partition(":")
    if name == "synthetic":
        return _synthetic(_options(rest))
    if name == "cn_shared":
        if rest and "=" not in rest:
            return CNSharedMarket(rest)
        return CNSharedMarket(**_options(rest))  # type: ignore[arg-type]
    if re.fullmatch(r"synthetic\(.*\)", spec) or spec.startswith("dir:"):
        return source_from_key(spec)
    if Path(spec).is_dir():
        return MarketDirectory(spec)
    raise ValueError(f"--data {spec!r}: expected auto, synthetic[:k=v,...], cn_shared[:root] "
                     f"or an existing market directory")


@dataclass
class Factors:
    """Factors aligned on a panel.

    names: factor names (file stems; a rolling experiment's ``factor*.parquet`` is named
        after its experiment, e.g. ``decompgru_ic``, ``decompgru_ic_seed42``; made unique); values: name -> [D, S] float64 scores,
    NaN where the file has no (finite) score; spans: name -> (first, last) day index of
    the file's dates; metadata: name -> the file's ``deepfactor`` metadata; coverage: one
    row per factor (rows, dropped rows, days, mean stocks per day, share of the valid
    stocks scored on the factor's days).
    """

    names: list[str]
    values: dict[str, np.ndarray]
    spans: dict[str, tuple[int, int]]
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    coverage: pl.DataFrame = field(default_factory=pl.DataFrame)


def read_factor_frame(path: str | Path, check_duplicates: bool = True) -> pl.DataFrame:
    """``date, code, score`` with the canonical types; ValueError naming the problem.

    ``check_duplicates=False`` skips the (date, code) uniqueness check (hashing every
    row); :func:`align_factor` checks it on the grid instead, much faster.
    """
    df = pl.read_parquet(path, columns=[c for c in FACTOR_COLUMNS
                                        if c in pq.read_schema(path).names])
    missing = [c for c in FACTOR_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: factor file needs columns {list(FACTOR_COLUMNS)}, "
                         f"missing {missing} (found {df.columns})")
    try:
        df = df.select(pl.col("date").cast(pl.Date), pl.col("code").cast(pl.String),
                       pl.col("score").cast(pl.Float64))
    except Exception as exc:  # polars raises several error types for bad casts
        raise ValueError(f"{path}: columns date/code/score cannot be read as "
                         f"Date/String/Float64: {exc}") from exc
    if df["date"].null_count() or df["code"].null_count():
        raise ValueError(f"{path}: null date or code in {df['date'].null_count()} / "
                         f"{df['code'].null_count()} rows")
    if check_duplicates and df.select(pl.struct("date", "code").is_duplicated().any()).item():
        raise ValueError(f"{path}: duplicate (date, code) rows")
    return df


def _date_index(df: pl.DataFrame, dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row -> panel day index through a lookup table over calendar days (no search)."""
    days = df["date"].cast(pl.Int32).to_numpy()  # days since 1970-01-01
    grid = dates.astype("datetime64[D]").astype(np.int64)
    lo = int(min(grid.min(), days.min())) if days.size else 0
    hi = int(max(grid.max(), days.max())) if days.size else 0
    table = np.full(hi - lo + 1, -1, np.int64)
    table[grid - lo] = np.arange(len(grid))
    di = table[days - lo]
    return np.maximum(di, 0), di >= 0


def _unmatched_message(path: str | Path, what: str, bad_values: np.ndarray,
                       ok: np.ndarray) -> str:
    bad = np.unique(np.asarray(bad_values).astype(str))
    return (f"{path}: {int((~ok).sum())} row(s) with {len(bad)} {what} not in the market, "
            f"e.g. {[str(v) for v in bad[:SHOWN]]} (pass --allow-unmatched to drop them)")


def align_factor(df: pl.DataFrame, panel: Panel, path: str | Path = "<memory>",
                 allow_unmatched: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Scatter a ``date, code, score`` frame onto the panel: ([D, S] scores, coverage row).

    Dates or codes absent from the panel raise ValueError listing a few and their counts,
    unless ``allow_unmatched`` (then they are dropped and counted in the coverage row).
    """
    di, d_ok = _date_index(df, panel.dates)
    # the panel's codes as an Enum: a row's physical value is its column (null: unknown)
    si_col = df["code"].cast(pl.Enum(panel.codes.astype(str).tolist()), strict=False)
    s_ok = si_col.is_not_null().to_numpy()
    si = si_col.to_physical().fill_null(0).to_numpy()
    if not allow_unmatched:
        for what, col, ok in (("dates", "date", d_ok), ("codes", "code", s_ok)):
            if not ok.all():
                raise ValueError(_unmatched_message(path, what, df[col].to_numpy()[~ok], ok))
    keep = d_ok & s_ok
    if not keep.any():
        raise ValueError(f"{path}: no row matches the market's dates and codes")
    score = np.asarray(df["score"].to_numpy(), dtype=np.float64)
    out, stats = scatter_unique(di, si, keep, score, *panel.shape,
                                np.ascontiguousarray(panel.valid))
    duplicates, non_finite, first, last, scored_valid, valid, scored_not_valid = stats
    if duplicates:
        raise ValueError(f"{path}: {duplicates} duplicate (date, code) row(s)")
    per_day = np.isfinite(out[first:last + 1]).sum(axis=1)
    row = {"rows": df.height, "dropped_unmatched_date": int((~d_ok).sum()),
           "dropped_unmatched_code": int((d_ok & ~s_ok).sum()),
           "non_finite_scores": int(non_finite),
           "first_date": str(panel.dates[first]), "last_date": str(panel.dates[last]),
           "days": int((per_day > 0).sum()),
           "mean_stocks_per_day": float(per_day[per_day > 0].mean()),
           "valid_coverage": float(scored_valid / max(valid, 1)),
           "scored_not_valid": int(scored_not_valid)}
    return out, row


def _factor_name(path: str | Path, metadata: dict[str, Any]) -> str:
    stem = Path(path).stem
    experiment = metadata.get("experiment") if stem.startswith("factor") else None
    return f"{experiment}{stem[len('factor'):]}" if experiment else stem


def load_factors(paths: Sequence[str | Path], panel: Panel,
                 allow_unmatched: bool = False) -> Factors:
    """Read factor files (``date, code, score`` parquet, any such file) and align them."""
    if not paths:
        raise ValueError("no factor files given")
    names, values, spans, meta, rows = [], {}, {}, {}, []
    for path in paths:
        file_meta = factor_metadata(path)
        name = _factor_name(path, file_meta)
        base, k = name, 2
        while name in values:
            name, k = f"{base}_{k}", k + 1
        frame = read_factor_frame(path, check_duplicates=False)  # checked on the grid
        arr, row = align_factor(frame, panel, path, allow_unmatched)
        names.append(name)
        values[name] = arr
        spans[name] = (panel.date_index(row["first_date"]), panel.date_index(row["last_date"]))
        meta[name] = file_meta
        rows.append({"factor": name, "file": str(path), **row})
    return Factors(names, values, spans, meta, pl.DataFrame(rows))


def universe_masks(panel: Panel, names: Sequence[str],
                   membership_files: Mapping[str, str | Path] | None = None
                   ) -> dict[str, np.ndarray]:
    """name -> [D, S] bool point-in-time universe; ``all`` = every listed stock.

    Names other than ``all`` come from the panel's memberships; ``membership_files`` adds
    universes from Qlib instruments / CSV / parquet membership files (``code, start, end``).
    """
    out: dict[str, np.ndarray] = {}
    extra = dict(membership_files or {})
    for name in names:
        if name == "all":
            out[name] = panel.listed
        elif name in panel.universes:
            out[name] = np.asarray(panel.universes[name])
        elif name not in extra:
            raise ValueError(f"universe {name!r} not in the market (has "
                             f"{['all', *sorted(panel.universes)]}); add --membership "
                             f"{name}=<file>")
    for name, path in extra.items():
        out[name] = membership_mask(read_membership(path), panel.dates, panel.codes)
    return out
