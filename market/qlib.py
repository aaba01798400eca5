"""Qlib's binary daily format <-> the canonical long schema of :mod:`market.schema`.

Layout (as Qlib's ``scripts/dump_bin.py`` writes it)::

    root/calendars/day.txt             one trading day per line (YYYY-MM-DD), ascending
    root/instruments/all.txt           CODE<TAB>first day<TAB>last day, every stock
    root/instruments/<universe>.txt    membership intervals (csi300.txt, ...), same format
    root/features/<code lower>/<field>.day.bin
        little-endian float32: [start index into the calendar, value on that day, next ...]

Conventions (Qlib's collectors, e.g. ``scripts/data_collector/yahoo/collector.py``):
prices are back-adjusted, ``$close = raw close * $factor`` (open/high/low/vwap too), and
volume the other way, ``$volume = raw volume / $factor``, so ``$amount`` is unadjusted
CNY. Read here as: raw price = $price / $factor, raw volume = $volume * $factor,
``adj_factor`` = $factor (the panel's adjusted close is Qlib's $close), and the exchange
previous close ``preclose[t] = $close[previous bar] / $factor[t]`` (``change`` unused).
NaN close = no bar (suspended / not listed); a bar with volume 0 is kept (the panel calls
it suspended). Codes are case-insensitive (``sh600000`` = ``SH600000``); ``SH000*`` and
``SZ399*`` are indices, never stocks (``SH000300`` etc. give the index levels).
Project extensions (written by :func:`write_qlib`, read when present, ignored by Qlib):
fields ``total_shares``/``float_shares`` (shares, unadjusted) and ``is_st`` (0/1), and
``industry.csv`` (``code,industry``, one industry per stock).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from market.cn_shared import INDEX_CODES
from market.io import read_membership
from market.qlib_write import DAY_BIN, EXTRA_FIELDS, PRICES, REQUIRED_FIELDS, write_qlib
from market.schema import MAX_ROWS_SHOWN, DataValidationError, MarketData, validate_bars
from market.sources import MarketSource

log = logging.getLogger(__name__)

DEFAULT_UNIVERSES = ("csi300", "csi500", "csi1000")
INDEX_PREFIXES = ("SH000", "SZ399")
Arrays = dict[str, np.ndarray]  # field -> values over a stock's days


def read_calendar(root: str | Path) -> np.ndarray:
    """[D] datetime64[D] trading days of ``calendars/day.txt`` (checked strictly ascending)."""
    path = Path(root).expanduser() / "calendars" / "day.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no Qlib calendar (is {root} a Qlib data directory?)")
    lines = [line.strip()[:10] for line in path.read_text().splitlines() if line.strip()]
    try:
        dates = np.array(lines, dtype="datetime64[D]")
    except ValueError as exc:
        raise DataValidationError(f"{path}: dates must be YYYY-MM-DD: {exc}") from exc
    bad = np.flatnonzero(np.diff(dates) <= np.timedelta64(0, "D"))
    if not len(dates) or len(bad):
        raise DataValidationError(f"{path}: needs strictly ascending dates; line(s) "
                                  f"{(bad + 2).tolist()[:MAX_ROWS_SHOWN]} are not")
    return dates


def read_bin(path: Path, n_days: int) -> tuple[int, np.ndarray]:
    """(start index, [n] float32 values) of one ``.day.bin`` file on an ``n_days`` calendar."""
    raw = path.read_bytes()
    if len(raw) < 4 or len(raw) % 4:
        raise DataValidationError(f"{path}: wrong size, {len(raw)} bytes is not a start index "
                                  f"plus float32 values (a multiple of 4 bytes, >= 4)")
    data = np.frombuffer(raw, "<f4")
    start = float(data[0])
    if not (np.isfinite(start) and start == int(start) and 0 <= start < n_days):
        raise DataValidationError(f"{path}: start index {start} is not a day of the "
                                  f"{n_days}-day calendar")
    if int(start) + len(data) - 1 > n_days:
        raise DataValidationError(f"{path}: {len(data) - 1} values from calendar index "
                                  f"{int(start)} run past the calendar's {n_days} days")
    return int(start), data[1:]


def _read_stock(sdir: Path, fields: Sequence[str], n_days: int,
                required: Sequence[str] = REQUIRED_FIELDS) -> tuple[int, Arrays]:
    """(start, field -> float64 array over the close file's days); absent extras left out."""
    out: Arrays = {}
    start = 0
    for name in ("close", *(f for f in fields if f != "close")):
        path = sdir / f"{name}{DAY_BIN}"
        if not path.exists():
            if name in required:
                raise DataValidationError(f"{path}: missing (required: {', '.join(required)})")
            continue
        s, values = read_bin(path, n_days)
        start, n = (s, len(values)) if name == "close" else (start, len(out["close"]))
        arr = np.full(n, np.nan)
        lo, hi = max(s, start), min(s + len(values), start + n)
        if hi > lo:
            arr[lo - start:hi - start] = values[lo - s:hi - s]
        out[name] = arr
    return start, out


def _check_stock(sdir: Path, start: int, arrays: Arrays, calendar: np.ndarray) -> None:
    """Prices and factor finite and > 0 on every bar day, volume >= 0, extras not negative."""
    bar = np.isfinite(arrays["close"])
    for name, arr in arrays.items():
        rule, bad = "NaN or <= 0", bar & ~(arr > 0)
        if name == "volume":
            rule, bad = "NaN or < 0", bar & ~(arr >= 0)
        elif name in EXTRA_FIELDS:
            rule, bad = "< 0", bar & (arr < 0)
        if bad.any():
            days = calendar[start + np.flatnonzero(bad)[:MAX_ROWS_SHOWN]].astype(str).tolist()
            raise DataValidationError(f"{sdir / (name + DAY_BIN)}: {int(bad.sum())} bar day(s) "
                                      f"(close not NaN) with {rule} values, e.g. {days}")


def _bar_columns(start: int, arrays: Arrays, lo: int, hi: int) -> Arrays:
    """Raw (unadjusted) canonical columns of the bars on calendar days ``lo..hi``."""
    close, factor = arrays["close"], arrays["factor"]
    bar = np.flatnonzero(np.isfinite(close))
    prev = np.r_[-1, bar[:-1]]  # the previous bar; none before the first
    pre = np.where(prev >= 0, close[np.maximum(prev, 0)], np.nan) / factor[bar]
    keep = (start + bar >= lo) & (start + bar <= hi)
    idx = bar[keep]
    cols = {"day": start + idx, "preclose": pre[keep], "adj_factor": factor[idx]}
    for name, arr in arrays.items():
        if name != "factor":
            scale = (1 / factor[idx] if name in PRICES
                     else factor[idx] if name == "volume" else 1.0)
            cols[name] = arr[idx] * scale
    return cols


def _stock_dirs(root: Path, lo: np.datetime64, hi: np.datetime64) -> dict[str, Path]:
    """Code -> features dir for the stocks of ``instruments/all.txt`` alive in [lo, hi]."""
    listed = read_membership(root / "instruments" / "all.txt")
    listed = listed.filter(pl.col("end") >= lo.item(), pl.col("start") <= hi.item(),
                           ~pl.col("code").str.starts_with(INDEX_PREFIXES[0]),
                           ~pl.col("code").str.starts_with(INDEX_PREFIXES[1]))
    dirs = {d.name.upper(): d for d in (root / "features").iterdir() if d.is_dir()}
    codes = sorted(set(listed["code"]))
    missing = [c for c in codes if c not in dirs]
    if missing:
        log.warning("%s: %d stock(s) of all.txt have no features directory, e.g. %s",
                    root, len(missing), missing[:MAX_ROWS_SHOWN])
    return {c: dirs[c] for c in codes if c in dirs}


def _read_bars(root: Path, calendar: np.ndarray, lo: int, hi: int,
               fields: Sequence[str]) -> pl.DataFrame:
    columns: dict[str, list[np.ndarray]] = {}
    codes, counts, found = [], [], set()
    stock_dirs = _stock_dirs(root, calendar[lo], calendar[hi])
    for code, sdir in stock_dirs.items():
        start, arrays = _read_stock(sdir, (*REQUIRED_FIELDS, *fields), len(calendar))
        _check_stock(sdir, start, arrays, calendar)
        cols = _bar_columns(start, arrays, lo, hi)
        n, found = len(cols["day"]), found | set(arrays)
        for name in ("day", "preclose", "adj_factor", *REQUIRED_FIELDS[:5], *fields):
            columns.setdefault(name, []).append(cols.get(name, np.full(n, np.nan)))
        codes.append(code)
        counts.append(n)
    if not sum(counts):
        raise DataValidationError(f"{root}: no bars between {calendar[lo]} and {calendar[hi]}")
    data = {k: np.concatenate(v) for k, v in columns.items() if k not in fields or k in found}
    frame = {"date": calendar[data.pop("day")],
             "code": pl.Series(codes).gather(np.repeat(np.arange(len(codes)), counts)), **data}
    if "is_st" in frame:
        frame["is_st"] = frame["is_st"] > 0.5
    return pl.DataFrame(frame)


def _index_levels(root: Path, calendar: np.ndarray, lo: int, hi: int,
                  universes: Sequence[str]) -> tuple[pl.DataFrame | None, dict[str, str]]:
    """Index close levels (``$close / $factor``) of the universes' benchmark codes found."""
    frames, codes = [], {}
    for name in universes:
        sdir = root / "features" / INDEX_CODES.get(name, "-").lower()
        if (sdir / f"close{DAY_BIN}").exists():
            start, arr = _read_stock(sdir, ("factor",), len(calendar), required=("close",))
            days = start + np.arange(len(arr["close"]))
            level = arr["close"] / arr.get("factor", 1.0)
            keep = (days >= lo) & (days <= hi) & np.isfinite(level)
            frames.append(pl.DataFrame({"date": calendar[days[keep]],
                                        "index_code": INDEX_CODES[name], "close": level[keep]}))
            codes[name] = INDEX_CODES[name]
    return (pl.concat(frames) if frames else None), codes


def read_qlib(root: str | Path, start: str | None = None, end: str | None = None,
              universes: Sequence[str] = DEFAULT_UNIVERSES,
              fields: Sequence[str] | None = None,
              industry: str | Path | None = None) -> MarketData:
    """Read a Qlib daily data directory into canonical :class:`MarketData`.

    start/end: inclusive ISO dates (None = the calendar's ends). universes: names of
    ``instruments/<name>.txt`` files to read as memberships (missing ones are skipped
    with a warning). fields: extra fields among ``EXTRA_FIELDS`` to read where present
    (None = all; open/high/low/close/volume/factor are always read). industry: a
    CSV/parquet ``code,industry`` map (None = ``root/industry.csv`` if present).
    Bars are raw prices (see the module docstring) with ``adj_factor`` and ``preclose``;
    errors name the offending ``.bin`` file (wrong size, start index outside the
    calendar, NaN/negative prices) or, for OHLC rules, the code and date.
    """
    r = Path(root).expanduser()
    extra = EXTRA_FIELDS if fields is None else tuple(fields)
    if unknown := [f for f in extra if f not in EXTRA_FIELDS]:
        raise ValueError(f"unknown Qlib field(s) {unknown}; choose among {list(EXTRA_FIELDS)}")
    calendar = read_calendar(r)
    lo = int(np.searchsorted(calendar, np.datetime64(start or calendar[0], "D")))
    hi = int(np.searchsorted(calendar, np.datetime64(end or calendar[-1], "D"), "right")) - 1
    if lo > hi:
        raise ValueError(f"{r}: no trading day between {start} and {end}")
    bars = _read_bars(r, calendar, lo, hi, extra)
    bars = _join_industry(bars, r, industry)
    bars = validate_bars(bars, f"{r / 'features'}")
    memberships = {}
    for name in universes:
        path = r / "instruments" / f"{name}.txt"
        if path.exists():
            memberships[name] = read_membership(path)
        else:
            log.warning("%s: universe %r skipped, %s does not exist", r, name, path)
    index_close, index_codes = _index_levels(r, calendar, lo, hi, universes)
    return MarketData(bars=bars, memberships=memberships, index_close=index_close,
                      index_codes=index_codes, source=f"qlib:{r}")


def _join_industry(bars: pl.DataFrame, root: Path, industry: str | Path | None) -> pl.DataFrame:
    path = Path(industry) if industry is not None else root / "industry.csv"
    if industry is None and not path.exists():
        return bars
    table = (pl.read_parquet(path) if path.suffix == ".parquet"
             else pl.read_csv(path, infer_schema=False))
    if not {"code", "industry"} <= set(table.columns):
        raise DataValidationError(f"{path}: needs columns code, industry; has {table.columns}")
    table = table.select(pl.col("code").cast(pl.String).str.strip_chars().str.to_uppercase(),
                         pl.col("industry").cast(pl.String)).unique("code", keep="first")
    return bars.join(table, on="code", how="left", maintain_order="left")


class QlibMarket(MarketSource):
    """A Qlib binary daily data directory (``calendars/``, ``instruments/``, ``features/``).

    Args:
        root: the Qlib data directory, e.g. ``~/.qlib/qlib_data/cn_data``.
        start: first date to read (ISO), None = the calendar's first day.
        end: last date to read (ISO), None = the calendar's last day.
        universes: ``instruments/<name>.txt`` files read as universes (missing ones skipped).
    """

    def __init__(self, root: str, start: str | None = None, end: str | None = None,
                 universes: tuple[str, ...] = DEFAULT_UNIVERSES) -> None:
        self.root, self.start, self.end, self.universes = root, start, end, tuple(universes)

    def load(self) -> MarketData:
        return read_qlib(self.root, start=self.start, end=self.end, universes=self.universes)

    def key(self) -> str:
        return (f"qlib:{Path(self.root).expanduser().resolve()}:{self.start}:{self.end}:"
                f"{','.join(self.universes)}")


__all__ = ["QlibMarket", "read_bin", "read_calendar", "read_qlib", "write_qlib"]
