"""Qlib binary format: hand-written directories, writer layout, round trip, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from market.cn_shared import default_cn_shared_root, read_cn_shared
from market.panel import Panel
from market.qlib import QlibMarket, read_bin, read_qlib, write_qlib
from market.returns import forward_returns
from market.schema import DataValidationError, MarketData
from market.sources import load_panel
from market.synthetic import generate_market

NAN = np.nan
CALENDAR = ["2019-01-02", "2019-01-03", "2019-01-04", "2019-01-07", "2019-01-08", "2019-01-09"]


def put(path: Path, start: float, values: list[float]) -> None:
    """A ``.day.bin`` file: float32 start index then the values (Qlib's dump_bin layout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.array([start, *values], "<f4").tofile(path)


@pytest.fixture
def qlib_dir(tmp_path: Path) -> Path:
    """Two stocks and an index; adjusted prices, a 1.1 split-like factor step, a gap."""
    root = tmp_path / "qlib"
    (root / "calendars").mkdir(parents=True)
    (root / "calendars" / "day.txt").write_text("\n".join(CALENDAR) + "\n")
    (root / "instruments").mkdir()
    (root / "instruments" / "all.txt").write_text(
        "sh600000\t2019-01-02\t2019-01-08\nSZ000001\t2019-01-04\t2019-01-07\n"
        "SH000300\t2019-01-02\t2019-01-09\n")
    (root / "instruments" / "csi300.txt").write_text("SH600000\t2019-01-02\t2019-01-04\n")
    a = root / "features" / "sh600000"  # lowercase, as dump_bin writes
    close = [10.0, 11.0, NAN, 12.1, 13.2]
    for name in ("high", "low", "vwap", "close"):
        put(a / f"{name}.day.bin", 0, close)
    put(a / "open.day.bin", 0, [*close, NAN])  # longer file: aligned on the close's days
    put(a / "factor.day.bin", 0, [1.0, 1.0, NAN, 1.1, 1.1])
    put(a / "volume.day.bin", 0, [100.0, 200.0, NAN, 300.0, 400.0])
    put(a / "amount.day.bin", 1, [2200.0, NAN, 3630.0, 5280.0])  # starts a day later
    b = root / "features" / "SZ000001"  # upper case also accepted
    for name in ("open", "high", "low", "close"):
        put(b / f"{name}.day.bin", 2, [5.0, 5.5])
    put(b / "factor.day.bin", 2, [2.0, 2.0])
    put(b / "volume.day.bin", 2, [10.0, 0.0])  # a zero-volume bar is kept
    put(root / "features" / "sh000300" / "close.day.bin", 0, [3000, 3010, 3020, 3030, 3040, 3050])
    return root


def test_read_hand_written_directory(qlib_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="market.qlib"):
        m = read_qlib(qlib_dir)
    assert "csi500" in caplog.text and "csi1000" in caplog.text  # absent universes skipped
    bars = m.bars
    assert bars["code"].to_list() == ["SH600000"] * 4 + ["SZ000001"] * 2  # no index, no gap row
    a = bars.filter(pl.col("code") == "SH600000")
    assert a["date"].cast(pl.String).to_list() == [CALENDAR[i] for i in (0, 1, 3, 4)]
    np.testing.assert_allclose(a["close"], [10, 11, 11, 12], rtol=1e-6)  # raw = $close / factor
    np.testing.assert_allclose(a["open"], [10, 11, 11, 12], rtol=1e-6)
    np.testing.assert_allclose(a["volume"], [100, 200, 330, 440], rtol=1e-6)  # raw = $vol * f
    np.testing.assert_allclose(a["preclose"], [NAN, 10, 10, 11], rtol=1e-6)  # ex-rights
    np.testing.assert_allclose(a["adj_factor"], [1, 1, 1.1, 1.1], rtol=1e-6)
    np.testing.assert_allclose(a["amount"], [NAN, 2200, 3630, 5280], rtol=1e-6)
    b = bars.filter(pl.col("code") == "SZ000001")
    np.testing.assert_allclose(b["close"], [2.5, 2.75])
    assert b["volume"].to_list() == [20.0, 0.0]
    assert set(m.memberships) == {"csi300"} and m.index_codes == {"csi300": "SH000300"}
    assert m.index_close is not None and m.index_close["close"].to_list()[:2] == [3000, 3010]
    panel = Panel.from_market(m)
    np.testing.assert_allclose(panel["adj_close"][[0, 1, 3, 4], 0], [10, 11, 12.1, 13.2],
                               rtol=1e-6)  # the panel's adjusted close is Qlib's $close
    assert len(panel.dates) == 5  # the panel's calendar: days with a stock bar
    assert panel.valid[:, 1].tolist() == [False, False, True, False, False]
    assert panel.universes["csi300"][:, 0].tolist() == [True] * 3 + [False] * 2


def test_read_window(qlib_dir: Path) -> None:
    m = read_qlib(qlib_dir, start="2019-01-04", end="2019-01-08", universes=())
    assert m.bars.height == 4 and m.index_close is None and m.memberships == {}
    a = m.bars.filter(pl.col("code") == "SH600000")
    assert a["date"].cast(pl.String).to_list() == ["2019-01-07", "2019-01-08"]
    np.testing.assert_allclose(a["preclose"], [10, 11], rtol=1e-6)  # from before the window
    with pytest.raises(ValueError, match="no trading day"):
        read_qlib(qlib_dir, start="2019-01-05", end="2019-01-06")
    with pytest.raises(ValueError, match="unknown Qlib field"):
        read_qlib(qlib_dir, fields=["turnover"])


@pytest.mark.parametrize("field, start, values, message", [
    ("high", None, None, r"high\.day\.bin: wrong size, 5 bytes"),
    ("close", 10, [1.0], r"close\.day\.bin: start index 10\.0 is not a day of the 6-day"),
    ("close", 3, [1.0] * 4, r"close\.day\.bin: 4 values from calendar index 3 run past"),
    ("open", 0, [10.0, NAN, NAN, 12.1, 13.2], r"open\.day\.bin: 1 bar day.*2019-01-03"),
    ("close", 0, [10.0, -11.0, NAN, 12.1, 13.2], r"close\.day\.bin: 1 bar day"),
    ("volume", 0, [100.0, -1.0, NAN, 1.0, 1.0], r"volume\.day\.bin: 1 bar day.*< 0"),
    ("high", 0, [10.0, 10.5, NAN, 12.1, 13.2], r"features.*'high' violates.*SH600000"),
])
def test_errors_name_the_file(qlib_dir: Path, field: str, start: int | None,
                              values: list[float] | None, message: str) -> None:
    path = qlib_dir / "features" / "sh600000" / f"{field}.day.bin"
    if start is None:
        path.write_bytes(b"\0" * 5)
    else:
        put(path, start, values or [])
    with pytest.raises(DataValidationError, match=message):
        read_qlib(qlib_dir)


def test_missing_files_and_bad_calendar(qlib_dir: Path) -> None:
    (qlib_dir / "features" / "sh600000" / "factor.day.bin").unlink()
    with pytest.raises(DataValidationError, match=r"factor\.day\.bin: missing"):
        read_qlib(qlib_dir)
    (qlib_dir / "calendars" / "day.txt").write_text("2019-01-03\n2019-01-02\n")
    with pytest.raises(DataValidationError, match=r"day\.txt: needs strictly ascending"):
        read_qlib(qlib_dir)
    with pytest.raises(FileNotFoundError, match="no Qlib calendar"):
        read_qlib(qlib_dir / "nowhere")


def test_writer_layout_and_factor(tmp_path: Path) -> None:
    """Back-adjustment from preclose: a 0.5 dividend makes factor 10/9.5 from that day."""
    rows = [("2019-01-02", "SH600000", 10.0, 10.0), ("2019-01-04", "SH600000", 9.5, 9.5),
            ("2019-01-07", "SH600000", 10.45, 9.5), ("2019-01-03", "SZ000001", 5.0, 5.0)]
    bars = pl.DataFrame(rows, schema=["date", "code", "close", "preclose"], orient="row")
    bars = bars.with_columns(pl.col("date").str.to_date(), open=pl.col("close"),
                             high=pl.col("close"), low=pl.col("close"), volume=pl.lit(1000.0))
    write_qlib(MarketData(bars=bars), tmp_path)
    assert (tmp_path / "calendars" / "day.txt").read_text().split() == CALENDAR[:4]
    assert (tmp_path / "instruments" / "all.txt").read_text() == (
        "SH600000\t2019-01-02\t2019-01-07\nSZ000001\t2019-01-03\t2019-01-03\n")
    raw = np.fromfile(tmp_path / "features" / "sh600000" / "close.day.bin", "<f4")
    np.testing.assert_allclose(raw, [0, 10, NAN, 10, 11], rtol=1e-6)
    start, factor = read_bin(tmp_path / "features" / "sh600000" / "factor.day.bin", 4)
    np.testing.assert_allclose(factor, [1, NAN, 10 / 9.5, 10 / 9.5], rtol=1e-6)
    _, volume = read_bin(tmp_path / "features" / "sh600000" / "volume.day.bin", 4)
    np.testing.assert_allclose(volume, [1000, NAN, 950, 950], rtol=1e-6)
    assert read_bin(tmp_path / "features" / "sz000001" / "close.day.bin", 4)[0] == 1
    with pytest.raises(FileExistsError, match="overwrite"):
        write_qlib(MarketData(bars=bars), tmp_path)
    write_qlib(MarketData(bars=bars.filter(pl.col("code") == "SZ000001")), tmp_path,
               overwrite=True)
    assert [d.name for d in (tmp_path / "features").iterdir()] == ["sz000001"]


def test_round_trip_synthetic(tmp_path: Path) -> None:
    market = generate_market(n_stocks=60, n_days=250, seed=3)
    write_qlib(market, tmp_path)
    p0, p1 = Panel.from_market(market), Panel.from_market(read_qlib(tmp_path))
    assert p1.shape == p0.shape and (p1.codes == p0.codes).all()
    assert (p1.valid == p0.valid).all() and (p1.is_st == p0.is_st).all()
    r0, r1 = forward_returns(p0, 10), forward_returns(p1, 10)
    assert (np.isfinite(r0) == np.isfinite(r1)).all() and np.isfinite(r0).sum() > 8_000
    assert np.nanmax(np.abs(r1 - r0)) < 1e-6  # float32 storage
    for name in ("open", "high", "low", "close", "vwap", "volume", "amount", "total_shares"):
        a, b = p0[name].astype(np.float64), p1[name].astype(np.float64)
        assert np.nanmax(np.abs(b - a) / a) < 1e-6, name
    bar = ~np.isnan(p0["close"])
    later = bar & (np.cumsum(bar, axis=0) > 1)  # a stock's first bar has no preclose in Qlib
    assert (np.isnan(p1["preclose"][bar]) == ~later[bar]).all()
    np.testing.assert_allclose(p1["preclose"][later], p0["preclose"][later], rtol=1e-6)
    assert p1.industry_names == p0.industry_names and (p1.industry == p0.industry).all()
    for name, mask in p0.universes.items():
        assert (p1.universes[name] == mask).all(), name
    for code, levels in p0.index_close.items():
        np.testing.assert_allclose(p1.index_close[code], levels, rtol=1e-6)


def test_qlib_market_source(qlib_dir: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    src = QlibMarket(str(qlib_dir), start="2019-01-03", universes=("csi300",))
    assert src.key() == f"qlib:{qlib_dir.resolve()}:2019-01-03:None:csi300"
    assert src.load().bars.equals(read_qlib(qlib_dir, start="2019-01-03").bars)
    first = load_panel(src, str(tmp_path / "cache"))
    monkeypatch.setattr(Panel, "from_market", lambda m: pytest.fail("cache not used"))
    again = load_panel(src, str(tmp_path / "cache"))
    np.testing.assert_array_equal(again["close"], first["close"])


@pytest.mark.slow
@pytest.mark.skipif(default_cn_shared_root() is None, reason="real A-share data not found")
def test_round_trip_real_2019(tmp_path: Path) -> None:
    market = read_cn_shared(default_cn_shared_root(), start="2019-01-01",  # type: ignore[arg-type]
                            end="2019-12-31", industry="none")
    write_qlib(market, tmp_path)
    p0, p1 = Panel.from_market(market), Panel.from_market(read_qlib(tmp_path))
    r0, r1 = forward_returns(p0, 10), forward_returns(p1, 10)
    assert (np.isfinite(r0) == np.isfinite(r1)).all() and np.nanmax(np.abs(r1 - r0)) < 1e-6
