"""The report command on the real A-share data (skipped without ../shared/data; slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from market.cn_shared import default_cn_shared_root

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(default_cn_shared_root() is None,
                                 reason="../shared/data not available")]


def test_report_on_real_data_reversal(tmp_path: Path) -> None:
    """Minus the 20-day return, 2019, all market + CSI indexes: a known weak reversal."""
    from backtest.cli import main  # imported here: collection stays cheap when skipped
    from callbacks.factor_writer import write_factor
    from market.sources import CNSharedMarket, load_panel

    source = CNSharedMarket(start="2017-01-01", end="2019-12-31")
    cache = str(tmp_path / "cache")
    panel = load_panel(source, cache)
    adj = panel["adj_close"]
    rev = np.full(adj.shape, np.nan)
    rev[20:] = -(adj[20:] / adj[:-20] - 1)
    keep = np.isfinite(rev) & panel.valid & (panel.dates >= np.datetime64("2019-01-01"))[:, None]
    d, s = np.nonzero(keep)
    frame = pl.DataFrame({"date": panel.dates[d], "code": panel.codes[s],
                          "score": rev[d, s]}).with_columns(pl.col("date").cast(pl.Date))
    path = write_factor(frame, tmp_path / "reversal20.parquet", {"data": source.key()})
    out = tmp_path / "report"
    assert main(["report", "--factors", str(path), "--data", "auto", "--cache-dir", cache,
                 "--out", str(out), "--prices", "vwap_t1"]) == 0
    res = json.loads((out / "results.json").read_text())
    ic = {(r["universe"], r["horizon"]): r["mean"] for r in res["tables"]["ic_summary"]
          if r["metric"] == "rank_ic"}
    assert set(u for u, _ in ic) == {"all", "csi300", "csi500", "csi1000"}
    assert -0.05 < ic[("all", 10)] < 0.2
    assert res["tables"]["coverage"][0]["valid_coverage"] > 0.95
    assert (out / "report.html").stat().st_size > 100_000
