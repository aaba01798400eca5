"""The report command end to end on a tiny synthetic market; data specs; alignment errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtest.cli import main
from backtest.data import align_factor, market_source, read_factor_frame, source_from_key
from callbacks.factor_writer import write_factor
from market.panel import Panel
from market.sources import CNSharedMarket, MarketDirectory, SyntheticMarket, load_panel
from market.synthetic import generate_market, oracle_factor

MARKET = SyntheticMarket(n_stocks=80, n_days=420, seed=2)


@pytest.fixture(scope="module")
def factor_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Oracle (strong) and pure noise factors over the last 250 days, written as exported."""
    root = tmp_path_factory.mktemp("factors")
    market = generate_market(n_stocks=80, n_days=420, seed=2)
    oracle = oracle_factor(market).filter(pl.col("date") >= pl.date(2016, 2, 1))
    oracle = oracle.filter(pl.col("score").is_finite())
    rng = np.random.default_rng(0)
    noise = oracle.with_columns(pl.Series("score", rng.standard_normal(oracle.height)))
    meta = {"net": "Oracle", "data": MARKET.key(), "horizon": 10}
    return [write_factor(oracle, root / "oracle.parquet", meta),
            write_factor(noise, root / "noise.parquet", {**meta, "net": "Noise"})]


@pytest.fixture(scope="module")
def report(factor_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    code = main(["report", "--factors", *map(str, factor_files), "--data", "auto",
                 "--out", str(out), "--styles", "size,beta,momentum", "--prices",
                 "close_t0,vwap_t1", "--cache-dir", str(out / "cache")])
    assert code == 0
    return out


def test_report_files_and_numbers(report: Path) -> None:
    html = (report / "report.html").read_text()
    res = json.loads((report / "results.json").read_text())
    assert "data:image/png;base64," in html and "Rank IC decay" in html
    for name in ("cumulative_ic", "group_returns_all", "top_group_excess", "yearly_excess",
                 "topk_excess", "factor_correlation", "style_exposure", "ic_decay"):
        assert (report / "plots" / f"{name}.png").stat().st_size > 1000, name
    ic = {(r["factor"], r["universe"], r["horizon"], r["metric"]): r
          for r in res["tables"]["ic_summary"]}
    oracle, noise = ic[("oracle", "all", 10, "rank_ic")], ic[("noise", "all", 10, "rank_ic")]
    assert oracle["mean"] > 0.1 and abs(noise["mean"]) < 0.05
    assert f"{oracle['mean']:.4f}" in html  # the HTML shows the same number
    daily = pl.read_parquet(report / "tables" / "ic_daily.parquet")
    sel = daily.filter((pl.col("factor") == "oracle") & (pl.col("universe") == "all")
                       & (pl.col("horizon") == 10))
    assert sel["rank_ic"].fill_nan(None).mean() == pytest.approx(oracle["mean"])
    groups = {(r["factor"], r["universe"]): r for r in res["tables"]["groups_summary"]}
    assert groups[("oracle", "all")]["top_ann_excess"] > 0.2
    assert groups[("oracle", "all")]["n_groups"] == 20
    assert {r["universe"] for r in res["tables"]["groups_summary"]} == \
        {"all", "csi300", "csi500", "csi1000"}
    topk = pl.DataFrame(res["tables"]["topk_summary"])
    assert topk.height == 2 * 2 * 2 * 2  # factors x portfolios x rebalance x prices
    assert (topk["ann_excess_net"] < topk["ann_excess"]).all()  # fees cost something
    corr = pl.DataFrame(res["tables"]["factor_correlation"])
    assert abs(corr.filter(pl.col("factor") == "oracle")["noise"][0]) < 0.05
    assert res["tables"]["coverage"][0]["valid_coverage"] > 0.9


def test_data_specs(factor_files: list[Path], tmp_path: Path) -> None:
    auto = market_source("auto", factor_files)
    assert isinstance(auto, SyntheticMarket) and auto.key() == MARKET.key()
    spec = market_source("synthetic:n_stocks=80,n_days=420,seed=2")
    assert spec.key() == MARKET.key()
    assert isinstance(market_source("cn_shared:/x/y"), CNSharedMarket)
    assert market_source("cn_shared:root=/x,start=2016-01-01").start == "2016-01-01"
    assert isinstance(market_source(str(tmp_path)), MarketDirectory)
    assert source_from_key(f"dir:{tmp_path}").root == str(tmp_path)
    key = "cn_shared:/data/x:2016-01-01:None:csrc"
    src = source_from_key(key)
    assert (src.root, src.start, src.end, src.industry) == ("/data/x", "2016-01-01", None, "csrc")
    with pytest.raises(ValueError, match="expected auto"):
        market_source("nope")
    with pytest.raises(ValueError, match="options"):
        market_source("synthetic:n_stock=3")


def test_alignment_errors_and_allow_unmatched(tmp_path: Path) -> None:
    panel = load_panel(SyntheticMarket(n_stocks=20, n_days=60, seed=1))
    day = str(panel.dates[5])
    df = pl.DataFrame({"date": [day, day, "1999-01-04"],
                       "code": [str(panel.codes[0]), "XX000001", str(panel.codes[1])],
                       "score": [1.0, 2.0, 3.0]}).with_columns(pl.col("date").str.to_date())
    with pytest.raises(ValueError, match=r"1 row\(s\) with 1 dates not in the market.*1999"):
        align_factor(df, panel)
    arr, row = align_factor(df, panel, allow_unmatched=True)
    assert row["dropped_unmatched_date"] == 1 and row["dropped_unmatched_code"] == 1
    assert np.isfinite(arr).sum() == 1 and arr[5, 0] == 1.0
    with pytest.raises(ValueError, match="duplicate"):
        align_factor(pl.concat([df.head(1), df.head(1)]), panel)
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"date": ["2016-01-04"], "code": ["A"]}).write_parquet(bad)
    with pytest.raises(ValueError, match="missing"):
        read_factor_frame(bad)


def test_factor_names_from_rolling_experiments(factor_files: list[Path], tmp_path: Path) -> None:
    from backtest.data import load_factors

    frame = pl.read_parquet(factor_files[0])
    files = []
    for exp in ("gru_ic", "decompgru_ic"):
        for stem in ("factor", "factor_seed42"):
            files.append(write_factor(frame, tmp_path / exp / f"{stem}.parquet",
                                      {"experiment": exp, "data": MARKET.key()}))
    files += [factor_files[0], factor_files[0]]
    names = load_factors(files, load_panel(MARKET)).names
    assert names == ["gru_ic", "gru_ic_seed42", "decompgru_ic", "decompgru_ic_seed42",
                     "oracle", "oracle_2"]


def test_import_boundary() -> None:
    """Importing and running the backtest package never loads torch or lightning."""
    code = ("import sys, backtest, backtest.cli, backtest.analysis, backtest.styles, "
            "backtest.report, backtest.wandb_log, backtest.__main__\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', "
            "'pytorch_lightning', 'torchmetrics')]\n"
            "assert not bad, bad\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_factors_load_while_the_market_side_is_prepared(factor_files: list[Path],
                                                        tmp_path: Path) -> None:
    """The report's overlap: same factors as a plain load, and every market-side array the
    sections use is built (the analysis then computes none)."""
    from backtest.analysis import AnalysisConfig, load_factors_preparing, run_analysis
    from backtest.context import MarketContext
    from backtest.data import load_factors

    panel = load_panel(MARKET, str(tmp_path))
    ctx = MarketContext.from_panel(panel)
    cfg = AnalysisConfig(sections=("ic", "groups", "topk"), styles=())
    factors, seconds = load_factors_preparing(factor_files, ctx, cfg)
    plain = load_factors(factor_files, panel)
    assert factors.names == plain.names and seconds >= 0
    for name in plain.names:
        np.testing.assert_array_equal(factors.values[name], plain.values[name])
    assert set(ctx._sorted) == {1, 2, 5, 10, 20}
    assert {"vwap", "open"} <= {k.split("_")[0] for k in ctx._trade}
    result = run_analysis(ctx, factors, {"all": panel.listed}, cfg)
    assert result.timings["forward_returns"] < 0.05  # read from the context, not computed
