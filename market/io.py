"""Read and write canonical long market files (bars, memberships, index levels).

Files hold the canonical schema of :mod:`market.schema` (prices raw CNY, volume in
shares, amount in CNY). Parquet files keep their types; CSV files are read as text
and parsed here (dates ISO ``YYYY-MM-DD``, booleans ``true/false/1/0``), so every
error names the file, the column and example rows (0-based data rows, header excluded).

Market directory layout (:func:`read_market_dir` / :func:`write_market_dir`)::

    root/bars/*.parquet (or *.csv)   daily bars, any split (write: one file per year)
    root/membership/<universe>.txt   Qlib instruments: CODE<TAB>start<TAB>end, no header
    root/index_close.parquet         optional: date, index_code, close (index points)
    root/market.json                 optional: {"index_codes": {universe: index code},
                                                "origin": source of the written market}
"""

from __future__ import annotations

import glob as globlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from market.schema import (MAX_ROWS_SHOWN, MEMBERSHIP, OPTIONAL, REQUIRED, DataValidationError,
                           MarketData, validate_bars, validate_membership)

PathLike = str | Path
TABLE_SUFFIXES = (".parquet", ".csv")
INDEX_CLOSE = {"date": pl.Date, "index_code": pl.String, "close": pl.Float64}
_TRUE, _FALSE = ("true", "t", "1", "yes"), ("false", "f", "0", "no")


def _expand(path: PathLike | Sequence[PathLike], suffixes: tuple[str, ...]) -> list[Path]:
    """Files named by a file, a directory (its files with ``suffixes``), a glob, or a list."""
    if isinstance(path, Sequence) and not isinstance(path, str):
        return [f for p in path for f in _expand(p, suffixes)]
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in suffixes and f.is_file())
    elif p.exists():
        files = [p]
    elif globlib.has_magic(str(path)):
        files = sorted(Path(f) for f in globlib.glob(str(path)) if Path(f).is_file())
    else:
        raise FileNotFoundError(f"no such file or directory: {path}")
    if not files:
        raise FileNotFoundError(f"no {'/'.join(suffixes)} files in {path}")
    return files


def _bad_rows(df: pl.DataFrame, bad: pl.Series, col: str) -> str:
    shown = (df.with_row_index("row").filter(bad).head(MAX_ROWS_SHOWN)
             .select("row", col).to_dicts())
    return f"{int(bad.sum())} row(s), e.g. {shown}"


def _parse_text(df: pl.DataFrame, types: dict[str, pl.DataType], source: str) -> pl.DataFrame:
    """Parse the String columns among ``types`` (dates ISO, booleans, numbers) strictly.

    A value that does not parse raises DataValidationError naming source, column and rows.
    Empty cells are nulls. Columns not in ``types`` are left as they are.
    """
    out = []
    for col in df.columns:
        s, dtype = df[col], types.get(col)
        if dtype is None or s.dtype != pl.String or dtype == pl.String:
            out.append(s)
            continue
        text = s.str.strip_chars()
        if dtype == pl.Date:
            parsed = text.str.to_date("%Y-%m-%d", strict=False)
        elif dtype == pl.Boolean:
            low = text.str.to_lowercase()
            parsed = (pl.select(pl.when(low.is_in(_TRUE)).then(True)
                                .when(low.is_in(_FALSE)).then(False)
                                .otherwise(None).alias(col)).to_series())
        else:
            parsed = text.cast(dtype, strict=False)
        bad = parsed.is_null() & text.is_not_null() & (text != "")
        if bad.any():
            raise DataValidationError(f"{source}: column '{col}' cannot be read as {dtype}: "
                                      f"{_bad_rows(df, bad, col)}")
        out.append(parsed.alias(col))
    return pl.DataFrame(out)


def _read_table(path: Path, types: dict[str, pl.DataType]) -> pl.DataFrame:
    """One parquet file as stored, or one CSV file (header row) parsed with ``types``."""
    if path.suffix.lower() == ".parquet":
        df = pl.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        df = pl.read_csv(path, infer_schema=False)
    else:
        raise ValueError(f"{path}: unsupported file type (use .parquet or .csv)")
    return _parse_text(df, types, str(path))


def read_bars(path: PathLike | Sequence[PathLike]) -> pl.DataFrame:
    """Daily bars in the canonical schema from parquet/CSV files, a directory or a glob.

    Each file is validated on its own (``validate_bars(df, source=<file>)``); the result
    is their concatenation, checked for a (date, code) present in two files, sorted by
    (code, date). Units: prices raw CNY, volume shares, amount CNY.
    """
    files = _expand(path, TABLE_SUFFIXES)
    frames = [validate_bars(_read_table(f, {**REQUIRED, **OPTIONAL}), source=str(f))
              for f in files]
    if len(frames) == 1:
        return frames[0]
    tagged = pl.concat([df.with_columns(pl.lit(i, pl.UInt32).alias("__file"))
                        for i, df in enumerate(frames)], how="diagonal")
    dup = tagged.select(pl.struct("date", "code").is_duplicated()).to_series()
    if dup.any():
        dups = tagged.filter(dup)
        first = dups.sort("code", "date", "__file").head(2)
        a, b = (files[i] for i in first["__file"])
        n_keys = dups.select(pl.struct("date", "code").n_unique()).item()
        raise DataValidationError(
            f"{a} and {b}: duplicate (date, code) across files: {n_keys} key(s), e.g. "
            f"date={first['date'][0].isoformat()} code={first['code'][0]}")
    return tagged.drop("__file").sort("code", "date")


def _read_qlib_instruments(path: Path) -> pl.DataFrame:
    """Qlib instruments file: ``CODE<TAB>start<TAB>end`` lines, no header."""
    df = pl.read_csv(path, separator="\t", has_header=False, infer_schema=False)
    if df.width < 3:
        raise DataValidationError(f"{path}: expected 3 tab-separated columns "
                                  f"CODE<TAB>start<TAB>end, found {df.width}")
    return df.select(df.columns[:3]).rename(dict(zip(df.columns[:3], MEMBERSHIP)))


def read_membership(path: PathLike) -> pl.DataFrame:
    """Universe membership ``code, start, end`` (inclusive Date interval per row).

    Reads a Qlib instruments file (any suffix but .csv/.parquet) or a CSV/parquet file
    with those columns. Codes are stripped and upper-cased (``sh600000`` -> ``SH600000``).
    """
    p = Path(path)
    if p.suffix.lower() in TABLE_SUFFIXES:
        df = _read_table(p, MEMBERSHIP)
    else:
        df = _parse_text(_read_qlib_instruments(p), MEMBERSHIP, str(p))
    return read_membership_frame(df, str(p))


def read_membership_frame(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """An in-memory membership table checked and normalised as :func:`read_membership` does."""
    for col in MEMBERSHIP:
        if col in df.columns and df[col].null_count():
            raise DataValidationError(f"{source}: column '{col}' has nulls: "
                                      f"{_bad_rows(df, df[col].is_null(), col)}")
    if "code" in df.columns:
        df = df.with_columns(pl.col("code").cast(pl.String).str.strip_chars().str.to_uppercase())
    return validate_membership(df, source)  # names missing columns, start after end


def validate_index_close(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """Cast to ``date, index_code, close`` (index points; NaN kept where absent) and check.

    Raises DataValidationError for missing columns, uncastable values, null date/code
    or a duplicate (date, index_code). Sorted by (index_code, date).
    """
    missing = [c for c in INDEX_CLOSE if c not in df.columns]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {missing}; found {df.columns}")
    out = []
    for col, dtype in INDEX_CLOSE.items():
        try:
            out.append(df[col].cast(dtype, strict=True))
        except Exception as exc:  # polars raises several error types for bad casts
            raise DataValidationError(f"{source}: column '{col}' cannot be read as {dtype}: "
                                      f"{exc}") from exc
    df = pl.DataFrame(out)
    for col in ("date", "index_code"):
        if df[col].null_count():
            raise DataValidationError(f"{source}: column '{col}' has nulls: "
                                      f"{_bad_rows(df, df[col].is_null(), col)}")
    dup = df.select(pl.struct("date", "index_code").is_duplicated()).to_series()
    if dup.any():
        raise DataValidationError(f"{source}: column 'date' duplicate (date, index_code): "
                                  f"{_bad_rows(df, dup, 'index_code')}")
    return df.sort("index_code", "date")


def read_index_close(path: PathLike) -> pl.DataFrame:
    """Benchmark levels ``date, index_code, close`` from a parquet/CSV file (index points)."""
    return validate_index_close(_read_table(Path(path), INDEX_CLOSE), str(path))


def _find_index_close(root: Path) -> Path | None:
    found = [p for p in (root / f"index_close{s}" for s in TABLE_SUFFIXES) if p.exists()]
    if len(found) > 1:
        raise DataValidationError(f"{root}: both {found[0].name} and {found[1].name} exist")
    return found[0] if found else None


def read_market_dir(root: PathLike) -> MarketData:
    """A :class:`MarketData` from the directory layout in the module docstring.

    ``source`` is ``market_dir:<root>``; everything else round-trips exactly with
    :func:`write_market_dir` (bars sorted by (code, date), as ``validate_bars`` returns).
    """
    r = Path(root)
    bars = read_bars(r / "bars")
    memberships: dict[str, pl.DataFrame] = {}
    mdir = r / "membership"
    if mdir.is_dir():
        for f in sorted(f for f in mdir.iterdir() if f.is_file() and not f.name.startswith(".")):
            if f.stem in memberships:
                raise DataValidationError(f"{f}: universe '{f.stem}' defined twice in {mdir}")
            memberships[f.stem] = read_membership(f)
    ic_path = _find_index_close(r)
    meta = json.loads((r / "market.json").read_text()) if (r / "market.json").exists() else {}
    index_codes = meta.get("index_codes", {})
    if not isinstance(index_codes, dict):
        raise DataValidationError(f"{r / 'market.json'}: 'index_codes' must be an object")
    return MarketData(bars=bars, memberships=memberships,
                      index_close=read_index_close(ic_path) if ic_path else None,
                      index_codes={str(k): str(v) for k, v in index_codes.items()},
                      source=f"market_dir:{r}")


def write_instruments(df: pl.DataFrame, path: Path) -> None:
    lines = df.select(pl.concat_str(pl.col("code"), pl.col("start").dt.to_string("%Y-%m-%d"),
                                    pl.col("end").dt.to_string("%Y-%m-%d"), separator="\t"))
    path.write_text("".join(f"{line}\n" for line in lines.to_series()))


def write_market_dir(market: MarketData, root: PathLike, overwrite: bool = False) -> None:
    """Write ``market`` in the directory layout of the module docstring.

    Bars are validated and written as ``bars/<year>.parquet``; memberships as Qlib
    instruments text (codes upper-cased); index levels as parquet. Refuses a root that
    already holds bars or memberships unless ``overwrite`` (then those files are replaced).
    """
    r = Path(root)
    bdir, mdir = r / "bars", r / "membership"
    old = [f for d in (bdir, mdir) if d.is_dir() for f in d.iterdir() if f.is_file()]
    if old and not overwrite:
        raise FileExistsError(f"{r} already holds market files (e.g. {old[0]}); "
                              f"pass overwrite=True to replace them")
    for name in market.memberships:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"universe name {name!r} is not a safe file name")
    bars = validate_bars(market.bars, market.source)
    if bars.is_empty():
        raise ValueError(f"{market.source}: no bars to write")
    members = {n: read_membership_frame(m, f"{market.source}:{n}")
               for n, m in market.memberships.items()}
    index_close = (None if market.index_close is None
                   else validate_index_close(market.index_close, f"{market.source}:index_close"))
    for f in old:
        f.unlink()
    if (ic := _find_index_close(r)) is not None:
        ic.unlink()
    bdir.mkdir(parents=True, exist_ok=True)
    years = bars["date"].dt.year()
    for year in years.unique().sort():
        bars.filter(years == year).write_parquet(bdir / f"{year}.parquet")
    if members:
        mdir.mkdir(parents=True, exist_ok=True)
    for name, m in members.items():
        write_instruments(m, mdir / f"{name}.txt")
    if index_close is not None:
        index_close.write_parquet(r / "index_close.parquet")
    meta = {"index_codes": dict(market.index_codes), "origin": market.source}
    (r / "market.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
