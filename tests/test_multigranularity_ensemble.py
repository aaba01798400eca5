"""Output ensemble of factor files: per-day standardization, averaging, the command."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from backtest.data import factor_metadata, read_factor_frame
from backtest.ensemble import ensemble_frames, main, standardize_per_day, write_ensemble

D1, D2 = dt.date(2020, 1, 2), dt.date(2020, 1, 3)


def frame(rows: list[tuple[dt.date, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"date": pl.Date, "code": pl.String, "score": pl.Float64},
                        orient="row")


A = frame([(D1, "a", 1.0), (D1, "b", 2.0), (D1, "c", 3.0), (D2, "a", 5.0), (D2, "b", 5.0)])
B = frame([(D1, "a", 30.0), (D1, "b", 10.0), (D1, "c", 20.0), (D1, "d", 0.0),
           (D2, "a", float("nan")), (D2, "b", 1.0)])


def test_standardize_per_day() -> None:
    z = standardize_per_day(A).sort("date", "code")
    s = np.sqrt(2 / 3)
    np.testing.assert_allclose(z["score"].to_numpy(), [-1 / s, 0, 1 / s, 0, 0])  # D2 constant
    zb = standardize_per_day(B)
    assert zb.height == 5  # the NaN score is dropped
    day1 = zb.filter(pl.col("date") == D1)["score"].to_numpy()
    assert abs(day1.mean()) < 1e-12 and abs(day1.std() - 1) < 1e-12


def test_ensemble_averages_z_scores_where_every_member_scores() -> None:
    out = ensemble_frames([A, B])
    za = standardize_per_day(A).rename({"score": "za"})
    zb = standardize_per_day(B).rename({"score": "zb"})
    expect = za.join(zb, on=["date", "code"]).with_columns(
        ((pl.col("za") + pl.col("zb")) / 2).alias("score")).sort("date", "code")
    assert out.select("date", "code").rows() == [(D1, "a"), (D1, "b"), (D1, "c"), (D2, "b")]
    np.testing.assert_allclose(out["score"].to_numpy(), expect["score"].to_numpy())
    b_d1 = (np.array([30.0, 10.0, 20.0]) - 15.0) / np.std([30.0, 10.0, 20.0, 0.0])
    assert out["score"][0] == pytest.approx((-1 / np.sqrt(2 / 3) + b_d1[0]) / 2)
    union = ensemble_frames([A, B], min_members=1)
    assert union.height == 6  # (D1, d) and (D2, a) come from one member only
    assert union.filter((pl.col("date") == D1) & (pl.col("code") == "d"))["score"].item() == \
        pytest.approx(-15.0 / np.std([30.0, 10.0, 20.0, 0.0]))
    with pytest.raises(ValueError, match="at least 2"):
        ensemble_frames([A])
    with pytest.raises(ValueError, match="min_members"):
        ensemble_frames([A, B], min_members=3)


def _write(df: pl.DataFrame, path: Path, meta: dict) -> Path:
    table = df.to_arrow()
    pq.write_table(table.replace_schema_metadata({b"deepfactor": json.dumps(meta).encode()}),
                   path)
    return path


def test_command_writes_a_factor_file_with_metadata(tmp_path: Path) -> None:
    common = {"data": "synthetic(n_stocks=10)", "horizon": 10, "window": 150}
    a = _write(A, tmp_path / "GRU_daily.parquet", {**common, "net": "GRU_daily", "seed": "0"})
    b = _write(B, tmp_path / "GRU_30min.parquet", {**common, "net": "GRU_30min",
                                                   "window": 60, "seed": "0"})
    out = tmp_path / "ens" / "Ensemble_daily_30min.parquet"
    assert main([str(a), str(b), "--out", str(out)]) == 0
    df = read_factor_frame(out)
    assert df.equals(ensemble_frames([A, B]))
    meta = factor_metadata(out)
    assert meta["net"] == "Ensemble" and meta["name"] == "Ensemble_daily_30min"
    assert meta["data"] == common["data"] and meta["horizon"] == 10 and "window" not in meta
    assert [m["net"] for m in meta["members"]] == ["GRU_daily", "GRU_30min"]
    again = write_ensemble([a, b, out], tmp_path / "nested.parquet", min_members=2)
    assert factor_metadata(again)["min_members"] == 2


def test_torch_free_and_registered_with_the_backtest_cli(tmp_path: Path) -> None:
    code = ("import sys, backtest.ensemble; "
            "assert 'torch' not in sys.modules and 'lightning' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
    from backtest.cli import SUBCOMMANDS

    assert "ensemble" in SUBCOMMANDS
