"""Intraday bars: schema validation, the aggregation check, synthetic bars and their signal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from datamodules.multigranularity import load_intraday
from market.intraday import (BAR_TIMES, IntradayBars, check_aggregation, read_intraday,
                             validate_intraday)
from market.panel import Panel
from market.schema import DataValidationError
from market.sources import CNSharedMarket, MarketDirectory
from market.synthetic import SyntheticMarketData, generate_market, oracle_scores
from market.synthetic_intraday import synthetic_intraday


@pytest.fixture(scope="module")
def market() -> SyntheticMarketData:
    return generate_market(n_stocks=80, n_days=160, seed=2)


@pytest.fixture(scope="module")
def bars30(market: SyntheticMarketData) -> IntradayBars:
    return synthetic_intraday(market, "30min")


@pytest.fixture(scope="module")
def long30(bars30: IntradayBars) -> pl.DataFrame:
    return validate_intraday(bars30.to_long(price_decimals=2), "30min", "synthetic 30min")


def test_synthetic_bars_aggregate_exactly_to_the_daily_bars(
        market: SyntheticMarketData, long30: pl.DataFrame) -> None:
    # prices are exact ticks; float32 storage leaves volumes within ~6e-8 (relative)
    report = check_aggregation(long30, market.bars, "synthetic 30min", rtol=1e-7)
    assert report.ok, report.summary()
    assert report.days_checked == market.bars.height
    bars60 = synthetic_intraday(market, "60min")
    report60 = check_aggregation(validate_intraday(bars60.to_long(2), "60min"), market.bars,
                                 rtol=1e-7)
    assert report60.ok and report60.days_checked == market.bars.height
    # the bars' VWAPs average (volume-weighted) to the daily VWAP, up to whole lots
    agg = long30.group_by("date", "code").agg(
        (pl.col("amount").sum() / pl.col("volume").sum()).alias("bar_vwap"))
    joined = agg.join(market.bars, on=["date", "code"])
    rel = ((joined["bar_vwap"] - joined["vwap"]).abs() / joined["vwap"]).to_numpy()
    assert np.quantile(rel, 0.99) < 1e-5 and rel.max() < 1e-3


def test_bar_times_ticks_lots_and_ranges(long30: pl.DataFrame) -> None:
    assert long30.group_by("date", "code").len()["len"].unique().to_list() == [8]
    assert sorted(long30["time"].unique().to_list()) == list(BAR_TIMES["30min"])
    exact = long30.filter(pl.col("volume") < 2 ** 24)  # float32 holds these integers exactly
    assert exact.height > 0.9 * long30.height and (exact["volume"] % 100 == 0).all()
    for col in ("open", "high", "low", "close"):
        assert (long30[col] * 100 - (long30[col] * 100).round()).abs().max() < 1e-3
    bad = long30.filter((pl.col("vwap") < pl.col("low") - 1e-4)
                        | (pl.col("vwap") > pl.col("high") + 1e-4))
    assert bad.height == 0
    # U-shaped volume: the first and last half hours trade the most
    share = (long30.with_columns(s=pl.col("volume") / pl.col("volume").sum().over("date", "code"))
             .group_by("time").agg(pl.col("s").mean()).sort("time")["s"].to_numpy())
    assert share[0] > 1.5 * share[3] and share[-1] > 1.5 * share[3]


def test_60min_bars_merge_pairs_of_30min_bars(market: SyntheticMarketData,
                                              bars30: IntradayBars) -> None:
    b60 = synthetic_intraday(market, "60min").values.astype(np.float64)
    v30 = bars30.values.astype(np.float64)
    ok = np.isfinite(v30[..., 0, 0])
    np.testing.assert_allclose(b60[ok][:, :, 0], v30[ok][:, ::2, 0])  # open: first
    np.testing.assert_allclose(b60[ok][:, :, 3], v30[ok][:, 1::2, 3])  # close: last
    np.testing.assert_allclose(b60[ok][:, :, 1], np.maximum(v30[ok][:, ::2, 1],
                                                             v30[ok][:, 1::2, 1]))
    np.testing.assert_allclose(b60[ok][:, :, 5], v30[ok][:, ::2, 5] + v30[ok][:, 1::2, 5])


def test_planted_signal_is_visible_only_in_intraday_bars(market: SyntheticMarketData,
                                                         bars30: IntradayBars) -> None:
    panel = Panel.from_market(market)
    ok = panel.valid & (panel["high"] > panel["low"])
    last_hour = np.log(bars30.values[..., 7, 3] / bars30.values[..., 5, 3])  # 14:00 -> 15:00
    shock = market.intraday_shock
    assert np.corrcoef(last_hour[ok], shock[ok])[0, 1] > 0.4
    daily = {"return": np.log(panel["close"] / panel["preclose"]),
             "range": np.log(panel["high"] / panel["low"]),
             "close/vwap": np.log(panel["close"] / panel["vwap"]),
             "volume": np.log(panel["volume"])}
    for name, value in daily.items():
        assert abs(np.corrcoef(value[ok], shock[ok])[0, 1]) < 0.05, name
    # and it feeds future returns: the oracle's intraday component is non-trivial
    part = oracle_scores(market, "intraday")
    assert np.nanstd(part) > 0.002


def test_deterministic_and_seeded(market: SyntheticMarketData, bars30: IntradayBars) -> None:
    again = synthetic_intraday(market, "30min")
    assert np.array_equal(again.values, bars30.values, equal_nan=True)
    other = synthetic_intraday(market, "30min", seed=99)
    ok = np.isfinite(bars30.values)
    assert not np.allclose(other.values[ok], bars30.values[ok])
    assert np.array_equal(other.values[..., 0, 0], bars30.values[..., 0, 0], equal_nan=True)
    no_shock = SyntheticMarketData(bars=market.bars)
    with pytest.raises(ValueError, match="intraday shocks"):
        synthetic_intraday(no_shock)
    with pytest.raises(ValueError, match="granularity"):
        synthetic_intraday(market, "15min")


def test_long_dense_round_trip(long30: pl.DataFrame, bars30: IntradayBars) -> None:
    dense = IntradayBars.from_long(long30, "30min", bars30.dates, bars30.codes)
    np.testing.assert_allclose(dense.values, bars30.values, rtol=1e-6, equal_nan=True)


def _write(df: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        df.with_columns(pl.col("time").dt.strftime("%H:%M")).write_csv(path)
    else:
        df.write_parquet(path)
    return path


def test_read_csv_and_parquet_with_aggregation_check(tmp_path: Path, market: SyntheticMarketData,
                                                     long30: pl.DataFrame) -> None:
    first = long30.filter(pl.col("date") < dt.date(2015, 3, 1))
    _write(first, tmp_path / "a.csv")
    _write(long30.filter(pl.col("date") >= dt.date(2015, 3, 1)), tmp_path / "b.parquet")
    out = read_intraday(tmp_path, "30min", daily=market.bars)
    assert out.height == long30.height and out["time"].dtype == pl.Time
    broken = first.with_columns(pl.when((pl.col("code") == "SH600003") & (pl.col("time") ==
                                                                         dt.time(14, 30)))
                                .then(pl.col("volume") + 100).otherwise(pl.col("volume"))
                                .alias("volume"))
    bad = _write(broken, tmp_path / "bad" / "c.csv")
    with pytest.raises(DataValidationError, match=r"(?s)c\.csv.*aggregation mismatches.*SH600003"):
        read_intraday(bad, "30min", daily=market.bars)
    lenient = read_intraday(bad, "30min", daily=market.bars, strict=False)
    assert lenient.height == first.height
    report = check_aggregation(validate_intraday(broken, "30min"), market.bars)
    assert set(report.mismatches["field"]) == {"volume"}
    assert report.mismatches["code"].unique().to_list() == ["SH600003"]
    assert (report.mismatches["intraday"] - report.mismatches["daily"]).to_list() == \
        [100.0] * report.mismatches.height


def test_validation_errors_name_source_and_rows(long30: pl.DataFrame) -> None:
    day = long30.head(8)
    with pytest.raises(DataValidationError, match=r"f\.csv.*outside the 30min set"):
        validate_intraday(day.with_columns(pl.lit(dt.time(12, 0)).alias("time")), "30min",
                          "f.csv")
    with pytest.raises(DataValidationError, match="without all 8"):
        validate_intraday(day.head(7), "30min", "f.csv")
    with pytest.raises(DataValidationError, match="duplicate"):
        validate_intraday(pl.concat([day, day.tail(1)]).head(8).with_columns(
            pl.Series("time", list(BAR_TIMES["30min"][:7]) + [BAR_TIMES["30min"][6]])),
            "30min")
    with pytest.raises(DataValidationError, match="'high' violates"):
        validate_intraday(day.with_columns(pl.col("low").alias("high")), "30min")
    with pytest.raises(DataValidationError, match="HH:MM"):
        validate_intraday(day.with_columns(pl.lit("noon").alias("time")), "30min")
    with pytest.raises(DataValidationError, match="'time'"):
        validate_intraday(day.drop("time"), "30min")
    with pytest.raises(ValueError, match="granularity"):
        validate_intraday(day, "5min")
    missing_day = check_aggregation(long30.filter(pl.col("code") != "SH600001"),
                                    pl.concat([long30.head(0).drop("time").select(
                                        "date", "code", "open", "high", "low", "close",
                                        "volume")]))
    assert missing_day.missing_daily.height > 0 and not missing_day.ok


def test_load_intraday_sources(tmp_path: Path, market: SyntheticMarketData,
                               long30: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="no intraday bars"):
        load_intraday(CNSharedMarket(root=str(tmp_path)), ["30min"], np.array([]), np.array([]))
    from market.io import write_market_dir

    write_market_dir(market, tmp_path / "m")
    _write(long30, tmp_path / "m" / "intraday" / "30min" / "bars.parquet")
    panel = Panel.from_market(market)
    got = load_intraday(MarketDirectory(str(tmp_path / "m")), ["30min"], panel.dates,
                        panel.codes)["30min"]
    np.testing.assert_allclose(got.values, synthetic_intraday(market).values, rtol=1e-6,
                               equal_nan=True)
