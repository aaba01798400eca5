"""Canonical long files: round trips, error messages, Qlib memberships, market dirs, panels."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from market.io import (read_bars, read_index_close, read_market_dir, read_membership,
                       write_market_dir)
from market.panel import Panel
from market.schema import DataValidationError, MarketData, validate_bars

DATES = [date(2018, 12, 27), date(2018, 12, 28), date(2019, 1, 2), date(2019, 1, 3),
         date(2019, 1, 4)]
CODES = ["SH600000", "SZ000001", "SZ300750"]


def make_bars(seed: int = 0) -> pl.DataFrame:
    """Every code on every date except SZ300750 on 2018-12-27 (listed a day later)."""
    rng = np.random.default_rng(seed)
    rows = [(d, c) for c in CODES for d in DATES if not (c == "SZ300750" and d == DATES[0])]
    n = len(rows)
    close = np.round(rng.uniform(5, 20, n), 2)
    open_ = np.round(close * rng.uniform(0.97, 1.03, n), 2)
    high = np.round(np.maximum(open_, close) * 1.01, 2)
    low = np.round(np.minimum(open_, close) * 0.99, 2)
    return validate_bars(pl.DataFrame({
        "date": [r[0] for r in rows], "code": [r[1] for r in rows], "open": open_,
        "high": high, "low": low, "close": close,
        "volume": rng.integers(1_000, 100_000, n).astype(float),
        "amount": np.round(close * 50_000, 2), "preclose": np.round(close * 0.995, 2),
        "total_shares": np.full(n, 1e9), "float_shares": np.full(n, 8e8),
        "industry": ["J66货币金融服务" if r[1] == "SH600000" else None for r in rows],
        "is_st": [r[1] == "SZ000001" for r in rows]}))


def split_by_year(bars: pl.DataFrame, directory: Path, suffix: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for year in (2018, 2019):
        part = bars.filter(pl.col("date").dt.year() == year)
        path = directory / f"{year}{suffix}"
        part.write_parquet(path) if suffix == ".parquet" else part.write_csv(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_bars_round_trip(tmp_path: Path, suffix: str) -> None:
    bars = make_bars()
    paths = split_by_year(bars, tmp_path / "bars", suffix)
    for source in (tmp_path / "bars", str(tmp_path / "bars" / f"*{suffix}"), paths):
        got = read_bars(source)
        assert got.schema == bars.schema
        assert got.equals(bars)
    one = read_bars(paths[1])
    assert one.equals(bars.filter(pl.col("date").dt.year() == 2019))


def write_one(df: pl.DataFrame, path: Path) -> Path:
    df.write_parquet(path) if path.suffix == ".parquet" else df.write_csv(path)
    return path


def assert_error(path: Path, column: str, *fragments: str) -> None:
    with pytest.raises(DataValidationError) as info:
        read_bars(path)
    msg = str(info.value)
    for part in (path.name, f"'{column}'" if column else "", *fragments):
        assert part in msg, f"{part!r} not in {msg!r}"


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_missing_column_names_file_and_column(tmp_path: Path, suffix: str) -> None:
    path = write_one(make_bars().drop("volume"), tmp_path / f"bars{suffix}")
    assert_error(path, "volume", "missing")


def test_uncastable_value_csv(tmp_path: Path) -> None:
    bars = make_bars().with_columns(pl.col("close").cast(pl.String))
    bars = bars.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("abc"))
                             .otherwise(pl.col("close")).alias("close"))
    path = write_one(bars, tmp_path / "bad_close.csv")
    assert_error(path, "close", "abc", "'row': 3")


def test_uncastable_value_parquet(tmp_path: Path) -> None:
    bars = make_bars().with_columns(pl.lit("n/a").alias("volume"))
    assert_error(write_one(bars, tmp_path / "bad_volume.parquet"), "volume", "Float64")


def test_bad_csv_date(tmp_path: Path) -> None:
    bars = make_bars().with_columns(pl.col("date").dt.to_string("%Y/%m/%d"))
    assert_error(write_one(bars, tmp_path / "slashes.csv"), "date", "Date")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_duplicate_within_file(tmp_path: Path, suffix: str) -> None:
    bars = make_bars()
    path = write_one(pl.concat([bars, bars.head(1)]), tmp_path / f"dup{suffix}")
    assert_error(path, "", "duplicate (date, code)", "SH600000")


def test_duplicate_across_files(tmp_path: Path) -> None:
    bars = make_bars()
    (tmp_path / "bars").mkdir()
    a = write_one(bars.filter(pl.col("date") <= DATES[2]), tmp_path / "bars" / "a.parquet")
    b = write_one(bars.filter(pl.col("date") >= DATES[2]), tmp_path / "bars" / "b.parquet")
    with pytest.raises(DataValidationError) as info:
        read_bars(tmp_path / "bars")
    msg = str(info.value)
    assert a.name in msg and b.name in msg and "(date, code)" in msg
    assert "3 key(s)" in msg and "date=2019-01-02 code=SH600000" in msg


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_high_below_close(tmp_path: Path, suffix: str) -> None:
    bars = make_bars().with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.col("close") * 0.5)
        .otherwise(pl.col("high")).alias("high"))
    assert_error(write_one(bars, tmp_path / f"high{suffix}"), "high", "'row': 2")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_bars(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        read_bars(tmp_path / "empty")


def test_qlib_instruments(tmp_path: Path) -> None:
    path = tmp_path / "csi_test.txt"
    path.write_text("sh600000\t2018-01-01\t2018-12-28\n"
                    "SZ000001\t2019-01-03\t2099-12-31\n"
                    "SH600000\t2019-01-03\t2019-01-03\n")
    got = read_membership(path)
    assert got.schema == pl.Schema({"code": pl.String, "start": pl.Date, "end": pl.Date})
    assert got["code"].to_list() == ["SH600000", "SZ000001", "SH600000"]
    assert got["end"].to_list() == [date(2018, 12, 28), date(2099, 12, 31), date(2019, 1, 3)]
    as_csv = write_one(got, tmp_path / "members.csv")
    assert read_membership(as_csv).equals(got)
    assert read_membership(write_one(got, tmp_path / "members.parquet")).equals(got)


def test_membership_errors(tmp_path: Path) -> None:
    bad_date = tmp_path / "bad.txt"
    bad_date.write_text("SH600000\t2018-01-01\t2018-13-40\n")
    with pytest.raises(DataValidationError, match=r"bad\.txt: column 'end'"):
        read_membership(bad_date)
    empty_end = tmp_path / "empty.txt"
    empty_end.write_text("SH600000\t2018-01-01\t\n")
    with pytest.raises(DataValidationError, match=r"empty\.txt: column 'end' has nulls"):
        read_membership(empty_end)
    reversed_ = tmp_path / "reversed.txt"
    reversed_.write_text("SH600000\t2019-01-01\t2018-01-01\n")
    with pytest.raises(DataValidationError, match=r"reversed\.txt: start after end"):
        read_membership(reversed_)


def test_index_close(tmp_path: Path) -> None:
    ic = pl.DataFrame({"date": DATES[:2] * 2, "index_code": ["SH000300"] * 2 + ["SH000905"] * 2,
                       "close": [3000.5, 3010.25, float("nan"), 5000.0]})
    got = read_index_close(write_one(ic, tmp_path / "ic.csv"))
    assert got.equals(ic.sort("index_code", "date"), null_equal=True)
    dup = write_one(pl.concat([ic, ic.head(1)]), tmp_path / "ic_dup.parquet")
    with pytest.raises(DataValidationError, match=r"ic_dup\.parquet: column 'date' duplicate"):
        read_index_close(dup)


def make_market() -> MarketData:
    members = pl.DataFrame({"code": ["sh600000", "SZ300750", "SZ000001"],
                            "start": [date(2018, 1, 1), date(2018, 12, 28), date(2019, 1, 3)],
                            "end": [date(2019, 1, 2), date(2019, 1, 3), date(2030, 1, 1)]})
    ic = pl.DataFrame({"date": DATES, "index_code": ["SH000300"] * 5,
                       "close": [3000.0, 3010.0, 2990.0, 3050.5, 3100.0]})
    return MarketData(make_bars(), {"csi_test": members}, ic, {"csi_test": "SH000300"}, "test")


def test_market_dir_round_trip(tmp_path: Path) -> None:
    market = make_market()
    write_market_dir(market, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m" / "bars").iterdir()) == ["2018.parquet",
                                                                           "2019.parquet"]
    got = read_market_dir(tmp_path / "m")
    assert got.bars.equals(market.bars)
    expected = market.memberships["csi_test"].with_columns(pl.col("code").str.to_uppercase())
    assert got.memberships["csi_test"].equals(expected)
    assert got.index_close is not None and got.index_close.equals(market.index_close)
    assert got.index_codes == market.index_codes
    assert got.source == f"market_dir:{tmp_path / 'm'}"
    with pytest.raises(FileExistsError):
        write_market_dir(market, tmp_path / "m")
    smaller = MarketData(market.bars.filter(pl.col("date").dt.year() == 2019))
    write_market_dir(smaller, tmp_path / "m", overwrite=True)
    again = read_market_dir(tmp_path / "m")
    assert again.bars.equals(smaller.bars)
    assert again.memberships == {} and again.index_close is None and again.index_codes == {}


def test_market_dir_to_panel_membership(tmp_path: Path) -> None:
    write_market_dir(make_market(), tmp_path / "m")
    panel = Panel.from_market(read_market_dir(tmp_path / "m"))
    assert panel.codes.tolist() == CODES
    assert panel.dates.tolist() == DATES
    # rows: 2018-12-27, 12-28, 2019-01-02, 01-03, 01-04; columns: SH600000, SZ000001, SZ300750
    expected = np.array([[1, 0, 0],
                         [1, 0, 1],
                         [1, 0, 1],
                         [0, 1, 1],
                         [0, 1, 0]], bool)
    np.testing.assert_array_equal(panel.universes["csi_test"], expected)
    assert not panel.listed[0, 2] and panel.listed[1:, 2].all()
    assert panel.is_st[:, 1].all() and not panel.is_st[:, 0].any()
    assert panel.industry_names == ["J66货币金融服务", "unknown"]
    assert (panel.industry[:, 0] == 0).all() and (panel.industry[:, 1:] == 1).all()
    np.testing.assert_allclose(panel.index_close["SH000300"], [3000, 3010, 2990, 3050.5, 3100])
    bars = make_bars().filter(pl.col("code") == "SZ000001")
    np.testing.assert_allclose(panel["close"][:, 1], bars["close"].to_numpy())


def test_panel_save_load(tmp_path: Path) -> None:
    panel = Panel.from_market(make_market())
    panel.save(tmp_path / "panel")
    for mmap in (True, False):
        got = Panel.load(tmp_path / "panel", mmap=mmap)
        np.testing.assert_array_equal(got.dates, panel.dates)
        np.testing.assert_array_equal(got.codes, panel.codes)
        for name in ("valid", "listed", "is_st", "industry"):
            a, b = getattr(got, name), getattr(panel, name)
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        for group in ("fields", "universes", "index_close"):
            a, b = getattr(got, group), getattr(panel, group)
            assert a.keys() == b.keys()
            for k in a:
                assert a[k].dtype == b[k].dtype
                np.testing.assert_array_equal(a[k], b[k])
        assert (got.industry_names, got.index_codes, got.report) == (
            panel.industry_names, panel.index_codes, panel.report)
