"""The canonical long schema of daily bars, and its validation.

One row per (date, code) on which the stock has a bar. A stock with no row on a
trading day was suspended that day; its first row is its listing, its last row its
delisting (or the end of the data).

| column        | type    | required | meaning                                                    |
|---------------|---------|----------|------------------------------------------------------------|
| date          | Date    | yes      | trading day                                                |
| code          | String  | yes      | stock code, e.g. ``SH600000``                              |
| open/high/low/close | Float64 | yes | raw (unadjusted) prices, CNY                               |
| volume        | Float64 | yes      | shares traded (0 = no trade: treated as suspended)         |
| amount        | Float64 | no       | CNY traded; VWAP = amount / volume                         |
| vwap          | Float64 | no       | used when given, else derived from amount/volume, else (open+high+low+close)/4 (counted) |
| preclose      | Float64 | no       | exchange previous close, ex-rights adjusted: close/preclose - 1 is the total return |
| adj_factor    | Float64 | no       | back-adjustment factor (Qlib): adjusted price = price * adj_factor (used if no preclose) |
| total_shares  | Float64 | no       | shares outstanding; market cap = close * shares            |
| float_shares  | Float64 | no       | free-float shares                                          |
| industry      | String  | no       | industry name; missing -> the explicit ``unknown`` bucket   |
| is_st         | Boolean | no       | special treatment (5% price limit); missing -> False       |

Universes (index membership) are separate tables ``code, start, end`` (Qlib
instruments format, inclusive dates), one per universe name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

REQUIRED = {"date": pl.Date, "code": pl.String, "open": pl.Float64, "high": pl.Float64,
            "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64}
OPTIONAL = {"amount": pl.Float64, "vwap": pl.Float64, "preclose": pl.Float64,
            "adj_factor": pl.Float64, "total_shares": pl.Float64, "float_shares": pl.Float64,
            "industry": pl.String, "is_st": pl.Boolean}
MEMBERSHIP = {"code": pl.String, "start": pl.Date, "end": pl.Date}
MAX_ROWS_SHOWN = 5


class DataValidationError(ValueError):
    """Bad input data; the message names the source, the column and example rows."""


@dataclass
class MarketData:
    """Everything the framework reads about a market, in canonical long form.

    bars: daily bars in the canonical schema (see module docstring).
    memberships: universe name (e.g. ``csi300``) -> ``code, start, end`` intervals.
    index_close: optional ``date, index_code, close`` benchmark levels.
    index_codes: universe name -> index code in ``index_close`` (e.g. csi300 -> SH000300).
    source: where it came from, used in error messages and metadata.
    """

    bars: pl.DataFrame
    memberships: dict[str, pl.DataFrame] = field(default_factory=dict)
    index_close: pl.DataFrame | None = None
    index_codes: dict[str, str] = field(default_factory=dict)
    source: str = "<memory>"


def _rows(df: pl.DataFrame, cond: pl.Expr, cols: list[str]) -> str:
    bad = df.with_row_index("row").filter(cond)
    shown = bad.head(MAX_ROWS_SHOWN).select(["row", *cols]).to_dicts()
    return f"{bad.height} row(s), e.g. {shown}"


def _cast(df: pl.DataFrame, source: str) -> pl.DataFrame:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataValidationError(f"{source}: missing required column(s) {missing}; "
                                  f"found {df.columns}")
    wanted = {**REQUIRED, **{c: t for c, t in OPTIONAL.items() if c in df.columns}}
    out = []
    for col, dtype in wanted.items():
        try:
            out.append(_cast_column(df[col], dtype))
        except Exception as exc:  # polars raises several error types for bad casts
            raise DataValidationError(f"{source}: column '{col}' cannot be read as {dtype}: "
                                      f"{exc}") from exc
    return pl.DataFrame(out)


def _cast_column(s: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Strict cast; text dates are parsed as ISO ``YYYY-MM-DD``."""
    if dtype == pl.Date and s.dtype == pl.String:
        return s.str.to_date("%Y-%m-%d", strict=True)
    return s.cast(dtype, strict=True)


def validate_bars(df: pl.DataFrame, source: str = "<memory>") -> pl.DataFrame:
    """Cast to the canonical types, check every rule, return rows sorted by (code, date).

    Raises DataValidationError naming ``source``, the column and example rows for:
    missing required columns, uncastable types, nulls in required columns,
    duplicate (date, code), non-positive prices, high < max(open, close, low),
    low > min(open, close), negative volume or amount.
    """
    df = _cast(df, source)
    for col in REQUIRED:
        if df[col].null_count():
            raise DataValidationError(f"{source}: column '{col}' has nulls: "
                                      f"{_rows(df, pl.col(col).is_null(), ['date', 'code'])}")
    dup = pl.struct("date", "code").is_duplicated()
    if df.select(dup.any()).item():
        raise DataValidationError(f"{source}: duplicate (date, code): "
                                  f"{_rows(df, dup, ['date', 'code'])}")
    checks = {
        "open/high/low/close": pl.min_horizontal("open", "high", "low", "close") <= 0,
        "high": pl.col("high") < pl.max_horizontal("open", "close", "low") * (1 - 1e-6),
        "low": pl.col("low") > pl.min_horizontal("open", "close") * (1 + 1e-6),
        "volume": pl.col("volume") < 0,
    }
    if "amount" in df.columns:
        checks["amount"] = pl.col("amount") < 0
    for col, bad in checks.items():
        if df.select(bad.any()).item():
            raise DataValidationError(
                f"{source}: column '{col}' violates its rule: "
                f"{_rows(df, bad, ['date', 'code', 'open', 'high', 'low', 'close', 'volume'])}")
    return df.sort("code", "date")


def validate_membership(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """Cast a membership table to ``code, start, end`` and check start <= end."""
    missing = [c for c in MEMBERSHIP if c not in df.columns]
    if missing:
        raise DataValidationError(f"{source}: membership needs columns {list(MEMBERSHIP)}, "
                                  f"missing {missing}")
    try:
        df = pl.DataFrame([_cast_column(df[c], t) for c, t in MEMBERSHIP.items()])
    except Exception as exc:  # polars raises several error types for bad casts
        raise DataValidationError(f"{source}: membership columns unreadable: {exc}") from exc
    for col in MEMBERSHIP:
        if df[col].null_count():
            raise DataValidationError(f"{source}: membership column '{col}' has nulls: "
                                      f"{_rows(df, pl.col(col).is_null(), list(MEMBERSHIP))}")
    bad = pl.col("start") > pl.col("end")
    if df.select(bad.any()).item():
        raise DataValidationError(f"{source}: start after end: "
                                  f"{_rows(df, bad, list(MEMBERSHIP))}")
    return df
