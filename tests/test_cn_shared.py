"""The shared real A-share data as canonical bars (skipped where the data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from market.cn_shared import (ENV_VAR, default_cn_shared_root, normalize_code, read_cn_shared,
                              read_industry_map)
from market.panel import UNKNOWN_INDUSTRY, Panel
from market.schema import MarketData, validate_bars

ROOT = default_cn_shared_root()
needs_data = pytest.mark.skipif(
    ROOT is None, reason=f"real A-share data not found (set {ENV_VAR} or provide ../shared/data)")


def test_normalize_code() -> None:
    raw = pl.Series(["sh.600000", "000001.SZ", "sz300750", " SH688981 ", "430047.BJ"])
    got = pl.select(normalize_code(raw)).to_series().to_list()
    assert got == ["SH600000", "SZ000001", "SZ300750", "SH688981", "BJ430047"]


def test_default_root_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert default_cn_shared_root() == tmp_path
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "absent"))
    assert default_cn_shared_root() is None


@pytest.fixture(scope="module")
def market_2019() -> MarketData:
    """2019 bars plus December 2018, so that 2019's new listings can be told apart."""
    assert ROOT is not None
    return read_cn_shared(ROOT, start="2018-12-01", end="2019-12-31")


@pytest.fixture(scope="module")
def panel_2019(market_2019: MarketData) -> Panel:
    return Panel.from_market(market_2019)


@needs_data
def test_schema_and_range(market_2019: MarketData) -> None:
    bars = market_2019.bars
    assert validate_bars(bars, "cn_shared").equals(bars)  # valid and already sorted
    assert bars["date"].min().isoformat() >= "2018-12-03"
    assert bars["date"].max().isoformat() == "2019-12-31"
    assert bars.schema["close"] == pl.Float64 and bars.schema["volume"] == pl.Float64
    assert bars["code"].str.contains(r"^(SH|SZ)\d{6}$").all()
    assert 3_500 <= bars.filter(pl.col("date").dt.year() == 2019)["code"].n_unique() <= 3_900
    assert market_2019.source == f"cn_shared:{ROOT}"


@needs_data
def test_prices_in_cny(market_2019: MarketData) -> None:
    row = market_2019.bars.filter(pl.col("code") == "SH600000",
                                  pl.col("date") == pl.date(2019, 1, 2))
    assert row.height == 1 and 5 < row["close"].item() < 20
    # VWAP from amount (CNY) / volume (shares) lies within the bar's range up to rounding
    vwap = pl.col("amount") / pl.col("volume")
    inside = market_2019.bars.filter(pl.col("volume") > 0).select(
        ((vwap >= pl.col("low") * 0.999) & (vwap <= pl.col("high") * 1.001)).mean()).item()
    assert inside > 0.999


@needs_data
def test_daily_returns_within_price_limits(market_2019: MarketData) -> None:
    """close/preclose - 1 within the limit (+half a fen of rounding) after the 5th bar."""
    limit = (pl.when(pl.col("is_st")).then(0.05)
             .when(pl.col("code").str.starts_with("SH688")).then(0.20).otherwise(0.10))
    rows = (market_2019.bars
            .with_columns(pl.int_range(pl.len()).over("code").alias("nth_bar"))
            .filter(pl.col("date").dt.year() == 2019, pl.col("nth_bar") >= 5))
    ok = ((pl.col("close") - pl.col("preclose")).abs()
          <= pl.col("preclose") * limit + 0.005 + 1e-9)
    share = rows.select(ok.mean()).item()
    assert rows.height > 800_000
    assert share > 0.999, f"only {share:.5%} of rows within price limits"


@needs_data
def test_memberships(market_2019: MarketData, panel_2019: Panel) -> None:
    assert set(market_2019.memberships) == {"csi300", "csi500", "csi1000"}
    assert market_2019.index_codes["csi800"] == "SH000906"
    for day in ("2019-01-02", "2019-06-14", "2019-12-31"):
        i = panel_2019.date_index(day)
        assert str(panel_2019.dates[i]) == day
        counts = {k: int(v[i].sum()) for k, v in panel_2019.universes.items()}
        assert counts == {"csi300": 300, "csi500": 500, "csi1000": 1000}
    both = panel_2019.universes["csi300"] & panel_2019.universes["csi500"]
    assert not both.any()
    levels = panel_2019.index_close["SH000300"]
    assert np.isfinite(levels).all() and 2_900 < levels[panel_2019.date_index("2019-01-02")] < 3_200


@needs_data
def test_industry(market_2019: MarketData, panel_2019: Panel) -> None:
    names = panel_2019.industry_names
    assert UNKNOWN_INDUSTRY in names and "J66货币金融服务" in names
    assert 60 <= len(names) <= 84
    unknown = panel_2019.listed & (panel_2019.industry == names.index(UNKNOWN_INDUSTRY))
    share = unknown.sum() / panel_2019.listed.sum()
    print(f"\nCSRC industry unknown share of listed stock-days, 2019: {share:.2%}")
    # unknown is mostly stocks delisted after 2019 (the map is a 2026 snapshot)
    assert share < 0.08
    sections = read_industry_map(ROOT, "csrc_section")  # type: ignore[arg-type]
    assert sections["industry"].drop_nulls().str.len_chars().max() == 1
    assert sections["industry"].n_unique() == 20  # 19 sections + null


@needs_data
def test_subset_and_options() -> None:
    assert ROOT is not None
    m = read_cn_shared(ROOT, start="2019-01-02", end="2019-01-31",
                       codes=["sh.600000", "000001.SZ"], industry="tushare")
    assert m.bars["code"].unique().sort().to_list() == ["SH600000", "SZ000001"]
    assert m.bars["industry"].unique().sort().to_list() == ["银行"]
    assert m.bars["date"].min().isoformat() == "2019-01-02"
    assert m.index_close is not None and m.index_close["date"].max().isoformat() == "2019-01-31"
    none = read_cn_shared(ROOT, start="2019-01-02", end="2019-01-02", industry="none")
    assert "industry" not in none.bars.columns and none.bars.height > 3_000
    with pytest.raises(ValueError, match="industry"):
        read_industry_map(ROOT, "sic")  # type: ignore[arg-type]
