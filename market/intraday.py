"""Intraday bars (60-min: 4 per A-share day, 30-min: 8): schema, validation, dense arrays.

Long schema: the daily bar columns plus ``time``, the bar's **end** time.

| column | type | required | meaning |
|---|---|---|---|
| date | Date | yes | trading day |
| code | String | yes | stock code, e.g. ``SH600000`` |
| time | Time (``HH:MM`` or ``HH:MM:SS`` in CSV) | yes | bar end, one of :data:`BAR_TIMES` |
| open/high/low/close | Float64 | yes | raw (unadjusted) prices, CNY, like the daily bars |
| volume | Float64 | yes | shares traded in the bar |
| amount | Float64 | no | CNY traded; VWAP = amount / volume |
| vwap | Float64 | no | used if given; else amount / volume; else (O+H+L+C)/4 |

Bar end times (the lunch break 11:30-13:00 has no bars): 60-min ``10:30 11:30 14:00
15:00``; 30-min ``10:00 10:30 11:00 11:30 13:30 14:00 14:30 15:00``. Every (date, code)
must have all its bars. Bars must aggregate to the daily bar of the same (date, code):
first open, max high, min low, last close, summed volume (:func:`check_aggregation`
lists every mismatch with file and rows). The real A-share data in ``../shared/data``
has **no** intraday bars; the synthetic market generates them
(:mod:`market.synthetic_intraday`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from market.io import TABLE_SUFFIXES, _expand, _read_table
from market.schema import (MAX_ROWS_SHOWN, OPTIONAL, REQUIRED, DataValidationError,
                           validate_bars)

log = logging.getLogger(__name__)
_TIMES = {"60min": ("10:30", "11:30", "14:00", "15:00"),
          "30min": ("10:00", "10:30", "11:00", "11:30", "13:30", "14:00", "14:30", "15:00")}
BAR_TIMES: dict[str, tuple[dt.time, ...]] = {
    g: tuple(dt.time.fromisoformat(t) for t in ts) for g, ts in _TIMES.items()}
BAR_FIELDS = ("open", "high", "low", "close", "vwap", "volume")  # last axis of dense values
AGGREGATION = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum",
               "amount": "sum"}
INTRADAY_OPTIONAL = {c: OPTIONAL[c] for c in ("amount", "vwap")}


def bars_per_day(granularity: str) -> int:
    """Bars per trading day of ``granularity`` ("60min" -> 4, "30min" -> 8)."""
    if granularity not in BAR_TIMES:
        raise ValueError(f"granularity must be one of {sorted(BAR_TIMES)}, got {granularity!r}")
    return len(BAR_TIMES[granularity])


def _rows(df: pl.DataFrame, bad: pl.Expr | pl.Series, cols: list[str]) -> str:
    hit = df.with_row_index("row").filter(bad)
    return f"{hit.height} row(s), e.g. {hit.head(MAX_ROWS_SHOWN).select('row', *cols).to_dicts()}"


def _parse_time(df: pl.DataFrame, source: str) -> pl.DataFrame:
    if "time" not in df.columns:
        raise DataValidationError(f"{source}: missing required column 'time' (bar end)")
    s = df["time"]
    if s.dtype == pl.String:
        text = s.str.strip_chars()
        parsed = text.str.to_time("%H:%M:%S", strict=False).fill_null(
            text.str.to_time("%H:%M", strict=False))
        bad = parsed.is_null() & text.is_not_null()
        if bad.any():
            raise DataValidationError(f"{source}: column 'time' must be HH:MM[:SS]: "
                                      f"{_rows(df, bad, ['time'])}")
        s = parsed
    elif isinstance(s.dtype, pl.Datetime):
        s = s.dt.time()
    elif s.dtype != pl.Time:
        raise DataValidationError(f"{source}: column 'time' cannot be read as Time "
                                  f"(got {s.dtype})")
    return df.with_columns(s.alias("time"))


def validate_intraday(df: pl.DataFrame, granularity: str,
                      source: str = "<memory>") -> pl.DataFrame:
    """Cast and check intraday bars; return rows sorted by (code, date, time).

    Raises DataValidationError naming ``source``, the column and example rows for:
    everything :func:`market.schema.validate_bars` checks per bar (types, nulls,
    non-positive prices, OHLC order, negative volume), a null or unknown ``time`` for
    the granularity, duplicate (date, code, time), and days without all their bars.
    """
    bars_per_day(granularity)  # ValueError for an unknown granularity
    times = BAR_TIMES[granularity]
    df = _parse_time(df, source)
    unknown = ~pl.col("time").is_in(list(times)) | pl.col("time").is_null()
    if df.select(unknown.any()).item():
        raise DataValidationError(
            f"{source}: column 'time' has bar ends outside the {granularity} set "
            f"{list(_TIMES[granularity])}: {_rows(df, unknown, ['date', 'code', 'time'])}")
    keep = [c for c in (*REQUIRED, *INTRADAY_OPTIONAL) if c in df.columns]
    # validate_bars checks one bar per (date, code): key each bar as code@time, so its
    # messages (and its duplicate check) name the bar
    keyed = df.select(*keep, "time").with_columns(
        pl.concat_str("code", pl.col("time").cast(pl.String), separator="@").alias("code"))
    checked = validate_bars(keyed, source)
    incomplete = pl.len().over("date", "code") != len(times)
    if df.select(incomplete.any()).item():
        raise DataValidationError(
            f"{source}: (date, code) without all {len(times)} {granularity} bars: "
            f"{_rows(df, incomplete, ['date', 'code', 'time'])}")
    parts = checked["code"].str.split_exact("@", 1)
    checked = checked.with_columns(parts.struct.field("field_0").alias("code"),
                                   parts.struct.field("field_1").str.to_time("%H:%M:%S")
                                   .alias("time"))
    return checked.select("date", "code", "time", *keep[2:]).sort("code", "date", "time")


def aggregate_to_daily(bars: pl.DataFrame) -> pl.DataFrame:
    """Daily bars from validated intraday bars: first open, max high, min low, last close,
    summed volume (and amount); one row per (date, code), sorted by (code, date)."""
    have = [c for c in AGGREGATION if c in bars.columns]
    exprs = [getattr(pl.col(c), AGGREGATION[c])() for c in have]
    return bars.sort("time").group_by("date", "code").agg(exprs).sort("code", "date")


@dataclass
class AggregationReport:
    """Outcome of :func:`check_aggregation`.

    mismatches: ``date, code, field, intraday, daily`` where the aggregated intraday
        value differs from the daily one by more than the tolerance.
    missing_intraday: ``date, code`` with a traded daily bar but no intraday bars.
    missing_daily: ``date, code`` with intraday bars but no daily bar.
    """

    source: str
    days_checked: int
    mismatches: pl.DataFrame
    missing_intraday: pl.DataFrame
    missing_daily: pl.DataFrame

    @property
    def ok(self) -> bool:
        return not (self.mismatches.height or self.missing_intraday.height
                    or self.missing_daily.height)

    def summary(self) -> str:
        """One line per problem kind, with example rows."""
        lines = [f"{self.source}: {self.days_checked} stock-days checked against daily bars"]
        for name, df in (("aggregation mismatches", self.mismatches),
                         ("daily bars without intraday bars", self.missing_intraday),
                         ("intraday bars without a daily bar", self.missing_daily)):
            if df.height:
                lines.append(f"  {name}: {df.height} row(s), e.g. "
                             f"{df.head(MAX_ROWS_SHOWN).to_dicts()}")
        return "\n".join(lines)

    def raise_if_any(self) -> None:
        if not self.ok:
            raise DataValidationError(self.summary())


def check_aggregation(intraday: pl.DataFrame, daily: pl.DataFrame, source: str = "<memory>",
                      rtol: float = 1e-6,
                      fields: Sequence[str] = ("open", "high", "low", "close", "volume"),
                      ) -> AggregationReport:
    """Compare validated intraday bars with validated daily bars of the same stocks and days.

    Only the daily (date, code) range covered by ``intraday`` is checked (a file may hold
    one year or one stock). A field mismatches when
    ``|aggregated - daily| > rtol * max(|daily|, 1)``. Daily bars with zero volume
    (suspended) need no intraday bars.
    """
    agg = aggregate_to_daily(intraday)
    codes, lo, hi = agg["code"].unique(), agg["date"].min(), agg["date"].max()
    day = daily.filter(pl.col("code").is_in(codes.implode()) & pl.col("date").is_between(lo, hi))
    joined = agg.join(day, on=["date", "code"], how="full", coalesce=True, suffix="_daily")
    both = joined.filter(pl.col("open").is_not_null() & pl.col("open_daily").is_not_null())
    rows = []
    for f in fields:
        if f not in agg.columns or f not in day.columns:
            continue
        diff = (pl.col(f) - pl.col(f"{f}_daily")).abs()
        bad = both.filter(diff > rtol * pl.max_horizontal(pl.col(f"{f}_daily").abs(), 1.0))
        rows.append(bad.select("date", "code", pl.lit(f).alias("field"),
                               pl.col(f).alias("intraday"), pl.col(f"{f}_daily").alias("daily")))
    empty = pl.DataFrame(schema={"date": pl.Date, "code": pl.String, "field": pl.String,
                                 "intraday": pl.Float64, "daily": pl.Float64})
    traded = pl.col("volume_daily") > 0
    return AggregationReport(
        source, both.height, pl.concat([empty, *rows]).sort("date", "code"),
        joined.filter(pl.col("open").is_null() & traded).select("date", "code"),
        joined.filter(pl.col("open_daily").is_null()).select("date", "code"))


def read_intraday(path: str | Sequence[str], granularity: str,
                  daily: pl.DataFrame | None = None, strict: bool = True) -> pl.DataFrame:
    """Intraday bars of one granularity from parquet/CSV files, a directory or a glob.

    Each file is validated on its own (:func:`validate_intraday`); with ``daily`` (validated
    daily bars) each file is also checked by :func:`check_aggregation`: ``strict`` raises
    DataValidationError naming the file and rows, otherwise the problems are only logged.
    """
    frames = []
    for f in _expand(path, TABLE_SUFFIXES):
        df = validate_intraday(_read_table(f, {**REQUIRED, **INTRADAY_OPTIONAL}), granularity,
                               str(f))
        if daily is not None:
            report = check_aggregation(df, daily, str(f))
            if strict:
                report.raise_if_any()
            elif not report.ok:
                log.warning(report.summary())
        frames.append(df)
    out = pl.concat(frames, how="diagonal")
    dup = pl.struct("date", "code", "time").is_duplicated()
    if out.select(dup.any()).item():
        raise DataValidationError(f"{path}: the same (date, code, time) in two files: "
                                  f"{_rows(out, dup, ['date', 'code', 'time'])}")
    return out.sort("code", "date", "time")


@dataclass
class IntradayBars:
    """Dense intraday bars of one granularity, aligned with a daily panel.

    dates [D] datetime64[D] and codes [S] as in ``Panel``; values [D, S, B, F] float32
    with B = bars per day (in :data:`BAR_TIMES` order) and F = :data:`BAR_FIELDS`
    (raw prices CNY, vwap, volume in shares); NaN where the stock has no bar that day.
    """

    granularity: str
    dates: np.ndarray
    codes: np.ndarray
    values: np.ndarray

    @classmethod
    def from_long(cls, bars: pl.DataFrame, granularity: str, dates: np.ndarray,
                  codes: np.ndarray) -> "IntradayBars":
        """Densify validated long bars; rows whose date or code is not in the panel are
        dropped (the aggregation check reports them). vwap: given, else amount / volume,
        else (O+H+L+C)/4."""
        times = list(BAR_TIMES[granularity])
        di = np.searchsorted(dates, bars["date"].to_numpy().astype("datetime64[D]"))
        si = np.searchsorted(codes, bars["code"].to_numpy().astype(str))
        ok = (di < len(dates)) & (si < len(codes))
        ok[ok] &= (dates[di[ok]] == bars["date"].to_numpy()[ok].astype("datetime64[D]")) & (
            codes[si[ok]] == bars["code"].to_numpy()[ok].astype(str))
        bi = bars["time"].replace_strict(times, list(range(len(times))),
                                         return_dtype=pl.Int32).to_numpy()
        typical = (pl.col("open") + pl.col("high") + pl.col("low") + pl.col("close")) / 4
        vwap = pl.col("vwap") if "vwap" in bars.columns else pl.lit(None, pl.Float64)
        if "amount" in bars.columns:
            vwap = vwap.fill_null(pl.when(pl.col("volume") > 0)
                                  .then(pl.col("amount") / pl.col("volume")))
        frame = bars.with_columns(vwap.fill_null(typical).alias("vwap"))
        values = np.full((len(dates), len(codes), len(times), len(BAR_FIELDS)), np.nan,
                         np.float32)
        for k, name in enumerate(BAR_FIELDS):
            values[di[ok], si[ok], bi[ok], k] = frame[name].to_numpy()[ok]
        return cls(granularity, dates, codes, values)

    def to_long(self, price_decimals: int | None = None) -> pl.DataFrame:
        """Long bars (``date, code, time, open, high, low, close, volume, amount, vwap``)
        for every stock-day with bars, sorted by (code, date, time).

        price_decimals: round open/high/low/close to this many decimals and volume to whole
        shares (2 restores the exact CNY ticks that float32 storage blurs).
        """
        d, s, b = np.nonzero(np.isfinite(self.values[..., 0]))
        cols = {name: self.values[d, s, b, k].astype(np.float64)
                for k, name in enumerate(BAR_FIELDS)}
        if price_decimals is not None:
            for name in ("open", "high", "low", "close"):
                cols[name] = np.round(cols[name], price_decimals)
            cols["volume"] = np.round(cols["volume"])
        ns = np.array([(t.hour * 60 + t.minute) * 60 * 10 ** 9
                       for t in BAR_TIMES[self.granularity]], np.int64)
        return pl.DataFrame({
            "date": self.dates[d], "code": self.codes[s],
            "time": pl.Series(ns[b]).cast(pl.Time),  # Time = ns since midnight
            **{c: cols[c] for c in ("open", "high", "low", "close", "volume")},
            "amount": cols["vwap"] * cols["volume"], "vwap": cols["vwap"],
        }).sort("code", "date", "time")

    def aggregate(self, granularity: str) -> "IntradayBars":
        """Coarser bars by merging consecutive bars (30min -> 60min: pairs)."""
        k, rem = divmod(self.values.shape[2], bars_per_day(granularity))
        if rem or k < 1:
            raise ValueError(f"cannot aggregate {self.granularity} bars to {granularity}")
        v = self.values.astype(np.float64).reshape(*self.values.shape[:2], -1, k,
                                                   len(BAR_FIELDS))  # [D, S, B', k, F]
        f = {name: v[..., i] for i, name in enumerate(BAR_FIELDS)}
        volume = f["volume"].sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap = np.where(volume > 0, (f["vwap"] * f["volume"]).sum(-1) / volume,
                            f["close"][..., -1])
        out = np.stack([f["open"][..., 0], f["high"].max(-1), f["low"].min(-1),
                        f["close"][..., -1], vwap, volume], axis=-1)  # [D, S, B', F]
        return IntradayBars(granularity, self.dates, self.codes, out.astype(np.float32))

