"""``python -m market convert|info``: source parsing, the panel cache layout, the CLI."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from market.__main__ import main
from market.cn_shared import default_cn_shared_root
from market.convert import cache_path, convert, parse_source
from market.panel import Panel
from market.qlib import QlibMarket, write_qlib
from market.sources import CNSharedMarket, MarketDirectory, SyntheticMarket, load_panel
from market.synthetic import generate_market

SMALL = "synthetic:n_stocks=40,n_days=120,seed=2"


def test_parse_source() -> None:
    syn = parse_source(SMALL)
    assert isinstance(syn, SyntheticMarket) and (syn.n_stocks, syn.n_days, syn.seed) == (40, 120, 2)
    assert isinstance(parse_source("synthetic"), SyntheticMarket)
    cn = parse_source("cn_shared:/data/cn", start="2015-01-01", industry="tushare")
    assert isinstance(cn, CNSharedMarket)
    assert (cn.root, cn.start, cn.end, cn.industry) == ("/data/cn", "2015-01-01", None, "tushare")
    assert parse_source("cn_shared").root is None  # type: ignore[attr-defined]
    q = parse_source("qlib:/q/cn_data", end="2019-12-31")
    assert isinstance(q, QlibMarket) and (q.root, q.end) == ("/q/cn_data", "2019-12-31")
    d = parse_source("dir:/my/market")
    assert isinstance(d, MarketDirectory) and d.root == "/my/market"
    for bad, match in [("csv:/x", "unknown source"), ("qlib", "needs a directory"),
                       ("synthetic:n_stocks", "key=value"), ("synthetic:seed=x", "integer"),
                       ("synthetic:colour=1", "key=value")]:
        with pytest.raises(ValueError, match=match):
            parse_source(bad)
    with pytest.raises(ValueError, match="--start/--end"):
        parse_source("dir:/my/market", start="2019-01-01")


def test_convert_writes_the_load_panel_cache(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source = parse_source(SMALL)
    result = convert(source, tmp_path)
    assert not result.cached and result.path == cache_path(source, tmp_path)
    assert set(result.seconds) == {"read", "build", "save", "reload"}
    assert result.panel.shape == (120, 40) and isinstance(result.panel["close"], np.memmap)
    assert (result.path / "source.txt").read_text() == source.key()
    built = Panel.from_market(source.load())
    monkeypatch.setattr(Panel, "from_market", lambda m: pytest.fail("rebuilt, cache not used"))
    cached = load_panel(source, str(tmp_path))  # the training code finds it
    np.testing.assert_array_equal(cached["adj_close"], built["adj_close"])
    assert convert(source, tmp_path).cached
    monkeypatch.undo()
    mtime = (result.path / "meta.json").stat().st_mtime_ns
    time.sleep(0.01)
    assert not convert(source, tmp_path, force=True).cached
    assert (result.path / "meta.json").stat().st_mtime_ns > mtime


def test_cli_convert_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", "--source", SMALL, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "shape      120 days x 40 stocks (2015-01-05 .. " in out
    assert "universes  csi1000" in out and "report     zero_volume_bars=0" in out
    assert "time       read " in out and "reload (mmap)" in out
    assert main(["info", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert listing.count("shape      120 days x 40 stocks") == 1 and "source     synthetic(" in listing
    panel_dir = cache_path(parse_source(SMALL), tmp_path)
    assert main(["info", str(panel_dir)]) == 0 and str(panel_dir) in capsys.readouterr().out
    assert main(["info", str(tmp_path / "empty")]) == 2
    assert "no cached panel" in capsys.readouterr().err
    assert main(["convert", "--source", "nope", "--out", str(tmp_path)]) == 2


def test_cli_convert_qlib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_qlib(generate_market(n_stocks=30, n_days=80, seed=4), tmp_path / "qlib")
    args = ["convert", "--source", f"qlib:{tmp_path / 'qlib'}", "--out", str(tmp_path / "c"),
            "--start", "2015-02-02"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "x 30 stocks (2015-02-02 .. " in out and "source     qlib:" in out


@pytest.mark.slow
@pytest.mark.skipif(default_cn_shared_root() is None, reason="real A-share data not found")
def test_convert_cn_shared_all_years(tmp_path: Path) -> None:
    """The measurement of docs/data.md: first build, then the memory-mapped reload."""
    result = convert(CNSharedMarket(), tmp_path)
    print("\n", {k: round(v, 3) for k, v in result.seconds.items()})
    assert result.panel.shape == (2431, 3806)
    assert convert(CNSharedMarket(), tmp_path).seconds["reload"] < 1.0
