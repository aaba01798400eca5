"""The ``enhance`` command end to end on a factor file, its options, and the torch-free import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from backtest.enhance.cli import main
from market.cn_shared import default_cn_shared_root
from market.synthetic import generate_market, oracle_factor

DATA = "synthetic:n_stocks=120,n_days=260,seed=1"


def write_factor_file(df: pl.DataFrame, path: Path, meta: dict) -> Path:
    """A factor file in the documented schema (written here without the torch callbacks)."""
    table = df.to_arrow()
    table = table.replace_schema_metadata({b"deepfactor": json.dumps(meta).encode()})
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def factor_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    market = generate_market(n_stocks=120, n_days=260, seed=1)
    df = oracle_factor(market).filter(pl.col("date") >= pl.date(2015, 9, 1))
    return write_factor_file(df.drop_nulls(), tmp_path_factory.mktemp("f") / "oracle.parquet",
                             {"net": "oracle", "data": "synthetic(n_stocks=120,n_days=260,"
                                                       "seed=1,start=2015-01-05)"})


def test_enhance_command_writes_the_report(factor_file: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    assert main(["--factors", str(factor_file), "--benchmark", "csi1000", "--data", "auto",
                 "--preset", "report2_csi1000", "--cache-dir", "", "--out", str(tmp_path),
                 "--max-deviation", "0.02", "--styles", "size,beta"]) == 0
    out = tmp_path / "oracle_csi1000_report2_csi1000"
    metrics = pl.read_csv(out / "metrics.csv")
    overall = metrics.filter(pl.col("period") == "all").row(0, named=True)
    assert overall["ann_excess"] > 0.05 and overall["info_ratio"] > 1  # an oracle factor
    assert 0 < overall["monthly_win_rate"] <= 1 and overall["tracking_error"] > 0
    reb = pl.read_parquet(out / "rebalances.parquet")
    assert {"step", "max_deviation", "style_size", "style_beta", "max_industry",
            "turnover_one_sided", "constituent_weight"} <= set(reb.columns)
    ok = reb.filter(pl.col("step") == 0)
    assert ok.height >= 0.8 * reb.height
    assert ok["max_deviation"].max() <= 0.02 + 1e-6
    assert ok["style_size"].abs().max() <= 0.2 + 1e-6  # report 2, CSI 1000: size within ±0.2
    assert ok["max_industry"].max() <= 1e-6  # industry neutral
    assert ok["constituent_weight"].min() >= 0.8 - 1e-6
    assert ok.filter(~pl.col("initial"))["turnover_one_sided"].max() <= 0.3 + 1e-6
    weights = pl.read_parquet(out / "weights.parquet")
    sums = weights.group_by("trade_date").agg(pl.col("weight").sum())["weight"].to_numpy()
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    page = (out / "enhance.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "Relaxation ladder" in page
    assert "vwap" in page and "oracle vs csi1000" in capsys.readouterr().out


def test_overrides_can_drop_constraints() -> None:
    import argparse

    from backtest.enhance.cli import _overrides, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--factors", "x", "--style-bound", "none", "--style-bounds",
                              "size=0,beta=0.5", "--max-turnover", "0.2"])
    assert _overrides(args) == {"style_bound": None, "style_bounds": {"size": 0.0, "beta": 0.5},
                                "max_turnover": 0.2}
    args = parser.parse_args(["--factors", "x"])
    assert _overrides(args) == {}


def test_registered_as_a_backtest_subcommand() -> None:
    from backtest.cli import build_parser
    from backtest.enhance.cli import run_command

    args = build_parser().parse_args(["enhance", "--factors", "f.parquet", "--preset",
                                      "report2_csi500", "--industry-bound", "0.02"])
    assert args._run is run_command and args.preset == "report2_csi500"
    assert args.industry_bound == 0.02


def test_enhance_does_not_import_torch() -> None:
    code = ("import sys, backtest.enhance.cli, backtest.enhance.plots, backtest.enhance.report;"
            "sys.exit('torch' in sys.modules or 'lightning' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(default_cn_shared_root() is None, reason="../shared/data not available")
def test_real_data_csi500(tmp_path: Path) -> None:
    """CSI 500, 2019, on the shared A-share data with a 20-day reversal factor."""
    from market.sources import CNSharedMarket, load_panel

    cache = str(tmp_path / "cache")
    panel = load_panel(CNSharedMarket(start="2017-01-01", end="2019-12-31"), cache)
    adj = panel["adj_close"]
    rev = np.full(adj.shape, np.nan)
    rev[20:] = -(adj[20:] / adj[:-20] - 1)
    d, s = np.nonzero(np.isfinite(rev) & panel.valid
                      & (panel.dates >= np.datetime64("2019-01-01"))[:, None])
    df = pl.DataFrame({"date": panel.dates[d], "code": panel.codes[s], "score": rev[d, s]})
    df = df.with_columns(pl.col("date").cast(pl.Date))
    path = write_factor_file(df, tmp_path / "rev20.parquet", {"net": "reversal"})
    assert main(["--factors", str(path), "--benchmark", "csi500", "--cache-dir", cache,
                 "--data", "cn_shared:start=2017-01-01,end=2019-12-31", "--out",
                 str(tmp_path)]) == 0
    reb = pl.read_parquet(tmp_path / "rev20_csi500_report1" / "rebalances.parquet")
    assert reb.height > 45 and (reb["step"] == 0).mean() > 0.8
    ok = reb.filter(pl.col("step") == 0)
    assert ok["max_deviation"].max() <= 0.008 + 1e-6 and ok["max_industry"].max() <= 0.02 + 1e-6
    assert ok["constituent_weight"].min() >= 0.8 - 1e-6
    styles = [c for c in reb.columns if c.startswith("style_")]
    assert len(styles) == 6 and max(ok[c].abs().max() for c in styles) <= 0.3 + 1e-6
