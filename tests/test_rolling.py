"""Rolling experiment: windows, stitching, seed ensemble, kill-and-resume identity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from callbacks import read_factor_metadata, write_factor
from cli.rolling import RollingExperiment, split_args
from cli.stitch import ensemble_seeds, stitch_windows

REPO = Path(__file__).resolve().parents[1]
TINY = ["--config", str(REPO / "configs" / "gru_ic.yaml"), "--data.market.n_stocks=40",
        "--data.market.n_days=700", "--data.window=30", "--data.norm_sample_days=4",
        "--trainer.max_epochs=4", "--trainer.limit_train_batches=6",
        "--trainer.limit_val_batches=10", "--trainer.logger=false",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
ROLL = ["--rolling.test_years=[2016]", "--rolling.seeds=[0,7]", "--rolling.val_months=6"]


def test_windows_expanding_and_sliding(tmp_path: Path) -> None:
    cells = RollingExperiment(test_years=[2018, 2017], seeds=[1], val_months=6).cells(tmp_path)
    assert [(c.year, c.val_start, c.test_start, c.test_end, c.train_start) for c in cells] == [
        (2017, "2016-07-01", "2017-01-01", "2017-12-31", None),
        (2018, "2017-07-01", "2018-01-01", "2018-12-31", None)]
    sliding = RollingExperiment(test_years=[2019], seeds=[0], train_years=4).cells(tmp_path)
    assert sliding[0].train_start == "2015-01-01" and sliding[0].val_start == "2018-01-01"


def test_split_args() -> None:
    rolling, fit = split_args(["--config", "a.yaml", "--rolling.seeds", "[1]",
                               "--rolling.workers=2", "--trainer.max_epochs=1"])
    assert rolling == ["--rolling.seeds", "[1]", "--rolling.workers=2"]
    assert fit == ["--config", "a.yaml", "--trainer.max_epochs=1"]


def _factor(dates: list[str], codes: list[str], seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(np.datetime64(d, "D").astype(object), c) for d in dates for c in codes]
    return pl.DataFrame({"date": [r[0] for r in rows], "code": [r[1] for r in rows],
                         "score": rng.normal(size=len(rows))})


def test_stitch_checks_overlap_and_gaps(tmp_path: Path) -> None:
    cal = np.array(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"], "datetime64[D]")
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_factor(_factor(["2020-01-02", "2020-01-03"], ["X", "Y"], 0), a, {})
    write_factor(_factor(["2020-01-06", "2020-01-07"], ["X", "Y"], 1), b, {})
    assert stitch_windows([b, a], cal).height == 8
    write_factor(_factor(["2020-01-07"], ["X", "Y"], 1), b, {})
    with pytest.raises(ValueError, match="gap"):
        stitch_windows([a, b], cal)
    write_factor(_factor(["2020-01-03", "2020-01-06"], ["X", "Y"], 1), b, {})
    with pytest.raises(ValueError, match="overlap"):
        stitch_windows([a, b], cal)


def test_ensemble_is_mean_of_daily_zscores() -> None:
    f0, f1 = _factor(["2020-01-02"], ["X", "Y", "Z"], 0), _factor(["2020-01-02"], ["X", "Y", "Z"], 1)
    ens = ensemble_seeds({0: f0, 1: f1}).sort("code")
    z = [(s - s.mean()) / s.std() for s in (f0["score"].to_numpy(), f1["score"].to_numpy())]
    np.testing.assert_allclose(ens["score"].to_numpy(), (z[0] + z[1]) / 2, atol=1e-12)
    assert ens.columns == ["date", "code", "score", "score_seed0", "score_seed1"]


def _rolling(out: Path, wait_for: Path | None = None) -> subprocess.Popen | None:
    cmd = [sys.executable, str(REPO / "main.py"), "rolling", *ROLL,
           f"--rolling.out_dir={out}", "--rolling.name=exp", *TINY]
    env = {**os.environ, "WANDB_MODE": "offline"}
    if wait_for is None:
        subprocess.run(cmd, check=True, cwd=out.parent, env=env, capture_output=True)
        return None
    proc = subprocess.Popen(cmd, cwd=out.parent, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not wait_for.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc


def test_kill_and_rerun_gives_identical_factor(tmp_path: Path) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    _rolling(clean)
    first_ckpt = killed / "exp" / "window=2016" / "seed=0" / "checkpoints" / "last.ckpt"
    _rolling(killed, wait_for=first_ckpt)
    assert first_ckpt.exists(), "the run was killed after its first checkpoint"
    assert not (killed / "exp" / "factor.parquet").exists(), "killed before the end"
    _rolling(killed)
    a = pl.read_parquet(clean / "exp" / "factor.parquet")
    b = pl.read_parquet(killed / "exp" / "factor.parquet")
    assert a.columns == ["date", "code", "score", "score_seed0", "score_seed7"]
    assert a.select("date", "code").equals(b.select("date", "code"))
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=1e-6)
    days = a["date"].unique()
    assert days.min().year == 2016 and days.max().year == 2016
    meta = read_factor_metadata(clean / "exp" / "factor.parquet")
    assert meta["seeds"] == [0, 7] and meta["test_years"] == [2016]


def test_default_experiment_name_is_the_model_config() -> None:
    from cli.rolling import _config_stem

    args = ["--config", "configs/decompgru_ic.yaml", "--config", "configs/cn_shared.yaml",
            "--config=configs/cn_cpu_scale.yaml", "--trainer.max_epochs=1"]
    assert _config_stem(args) == "decompgru_ic"
    assert _config_stem(["--config", "configs/cn_shared.yaml"]) == "cn_shared"
    assert _config_stem(["--trainer.max_epochs=1"]) == "experiment"


@pytest.mark.slow
def test_end_to_end_two_years_parallel_workers_then_backtest(tmp_path: Path) -> None:
    """rolling (2 test years x 2 seeds) with 2 worker processes == 1 process; stitched
    factor passes its checks; the backtest report scores it."""
    roll = ["--rolling.test_years=[2016,2017]", "--rolling.seeds=[0,7]",
            "--rolling.val_months=6"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    out = {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        root.mkdir()
        subprocess.run([sys.executable, str(REPO / "main.py"), "rolling", *roll,
                        f"--rolling.workers={workers}", f"--rolling.out_dir={root}",
                        "--rolling.name=exp", *TINY], check=True, cwd=root, env=env,
                       capture_output=True)
        out[workers] = pl.read_parquet(root / "exp" / "factor.parquet")
    a, b = out[1], out[2]
    assert a.select("date", "code").equals(b.select("date", "code"))
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=1e-4)
    assert a.select("date", "code").is_duplicated().sum() == 0
    years = a["date"].dt.year().unique().sort().to_list()
    assert years == [2016, 2017]
    cells = sorted((tmp_path / "w2" / "exp").glob("window=*/seed=*/factor.parquet"))
    assert len(cells) == 4
    report = tmp_path / "report"
    subprocess.run([sys.executable, "-m", "backtest", "report", "--factors",
                    str(tmp_path / "w2" / "exp" / "factor.parquet"), "--data", "auto",
                    "--sections", "ic,groups", "--groups", "all=5", "--out", str(report)],
                   check=True, cwd=REPO, capture_output=True)
    results = json.loads((report / "results.json").read_text())
    assert results["tables"]["ic_summary"]
