"""The market-side cache: identical results, memory-mapped reuse, versioned invalidation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backtest.context import MarketContext
from backtest.market_cache import MarketCache, code_version
from backtest.styles import StyleConfig
from market.sources import SyntheticMarket, cache_path, load_panel


@pytest.fixture(scope="module")
def source() -> SyntheticMarket:
    return SyntheticMarket(n_stocks=80, n_days=320, seed=5)


def test_cached_arrays_equal_computed_ones(tmp_path: Path, source) -> None:
    panel = load_panel(source, str(tmp_path))
    root = cache_path(source, tmp_path) / "derived"
    plain = MarketContext.from_panel(panel)
    first = MarketContext.from_panel(panel, MarketCache(root))
    styles_args = (("size", "beta", "liquidity"), StyleConfig())
    for ctx in (first, MarketContext.from_panel(panel, MarketCache(root))):
        np.testing.assert_array_equal(ctx.price, plain.price)
        np.testing.assert_array_equal(ctx.can_buy, plain.can_buy)
        np.testing.assert_array_equal(ctx.trade_price("vwap_t1"), plain.trade_price("vwap_t1"))
        for h in (1, 5):
            np.testing.assert_array_equal(ctx.forward(h), plain.forward(h))
            np.testing.assert_array_equal(ctx.forward_sorted(h).order,
                                          plain.forward_sorted(h).order)
        got, want = ctx.styles(*styles_args), plain.styles(*styles_args)
        assert list(got) == list(want)  # order kept
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    assert first.cache.hits == [] and len(first.cache.misses) == 8
    second = MarketContext.from_panel(panel, MarketCache(root))
    second.forward(5)
    assert second.cache.hits == ["price", "forward_5"] and second.cache.misses == []
    assert isinstance(second.price, np.memmap) and not second.price.flags.writeable


def test_new_code_version_replaces_the_old_directory(tmp_path: Path) -> None:
    root = tmp_path / "derived"
    stale = root / "0123456789abcdef" / "price"
    stale.mkdir(parents=True)
    (stale / "complete").write_text("price")
    cache = MarketCache(root)
    assert cache.dir.name == code_version() != "0123456789abcdef"
    cache.get("x", lambda: {"a": np.arange(3)})
    assert not stale.parent.exists() and (cache.dir / "x" / "a.npy").exists()
    with pytest.raises(ValueError, match="plain name"):
        cache.get("y", lambda: {"a/b": np.arange(3)})


def test_report_command_uses_and_reports_the_cache(tmp_path: Path, source) -> None:
    from backtest.cli import main
    from callbacks.factor_writer import write_factor
    from market.synthetic import generate_market, oracle_factor

    market = generate_market(n_stocks=80, n_days=320, seed=5)
    path = write_factor(oracle_factor(market), tmp_path / "oracle.parquet",
                        {"data": source.key()})
    facts = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["report", "--factors", str(path), "--data", "synthetic:n_stocks=80,"
                     "n_days=320,seed=5", "--cache-dir", str(tmp_path / "cache"),
                     "--out", str(out), "--prices", "close_t1"]) == 0
        res = json.loads((out / "results.json").read_text())
        facts.append(res)
    a, b = (r["tables"]["ic_summary"] for r in facts)
    assert a == b
    html = (tmp_path / "b" / "report.html").read_text()
    assert "entries read, 0 computed" in html


def test_code_version_covers_the_kernel_package(monkeypatch) -> None:
    """Editing any compiled kernel module (a package's files) changes the version."""
    import backtest.jit.styles as styles_kernels

    before = code_version()
    real = Path.read_bytes

    def edited(self: Path) -> bytes:
        data = real(self)
        return data + b"# edit" if self == Path(styles_kernels.__file__) else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert code_version() != before
