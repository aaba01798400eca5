"""Output ensemble (report 2): average of separately trained factors, per-day standardized.

``ensemble = mean over members of z(score)``, where ``z`` is the per-day cross-sectional
z-score of one member's scores (mean 0, standard deviation 1 with ddof 0, over the
stocks with a finite score that day; a day whose scores are all equal scores 0). By
default a (date, code) is kept only if every member scores it (``min_members`` lowers
that). The result is an ordinary factor file (``date, code, score`` parquet, metadata
under ``deepfactor``), so the backtest scores it next to its members.

Command (the report's two variants; F_daily etc. are factor files of single-granularity
models, e.g. ``runs/factors/GRU_daily_MSELoss_seed0.parquet``)::

    python -m backtest ensemble --out runs/factors/Ensemble_all.parquet \\
        F_daily.parquet F_60min.parquet F_30min.parquet
    python -m backtest ensemble --out runs/factors/Ensemble_daily_30min.parquet \\
        F_daily.parquet F_30min.parquet

(``python -m backtest.ensemble ...`` takes the same arguments.) Torch-free.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from backtest.data import factor_metadata, read_factor_frame

# metadata keys that describe one training run, not the data; never copied to the ensemble
RUN_KEYS = {"net", "loss", "seed", "checkpoint", "rows", "created", "name", "members"}


def standardize_per_day(df: pl.DataFrame) -> pl.DataFrame:
    """``date, code, score`` -> same rows with finite scores, score z-scored per date."""
    finite = df.filter(pl.col("score").is_finite())
    mean = pl.col("score").mean().over("date")
    std = pl.col("score").std(ddof=0).over("date")
    z = pl.when(std > 1e-12).then((pl.col("score") - mean) / std).otherwise(0.0)
    return finite.with_columns(z.alias("score"))


def ensemble_frames(frames: Sequence[pl.DataFrame], min_members: int | None = None
                    ) -> pl.DataFrame:
    """Mean of the members' per-day z-scores per (date, code), sorted by (date, code).

    min_members: keep a (date, code) scored by at least this many members (default: all).
    """
    if len(frames) < 2:
        raise ValueError(f"an ensemble needs at least 2 factors, got {len(frames)}")
    need = len(frames) if min_members is None else min_members
    if not 1 <= need <= len(frames):
        raise ValueError(f"min_members must be in [1, {len(frames)}], got {min_members}")
    stacked = pl.concat([standardize_per_day(f.select("date", "code", "score"))
                         for f in frames])
    out = (stacked.group_by("date", "code")
           .agg(pl.col("score").mean(), pl.len().alias("members"))
           .filter(pl.col("members") >= need))
    return out.select("date", "code", pl.col("score").cast(pl.Float64)).sort("date", "code")


def shared_metadata(metas: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Keys (other than per-run ones) with the same value in every member's metadata,
    e.g. ``data`` (the market, used by ``--data auto``), ``horizon``, ``splits``."""
    keys = set(metas[0]).intersection(*metas[1:]) - RUN_KEYS if metas else set()
    return {k: metas[0][k] for k in sorted(keys) if all(m[k] == metas[0][k] for m in metas)}


def write_ensemble(paths: Sequence[str | Path], out: str | Path, name: str | None = None,
                   min_members: int | None = None) -> Path:
    """Read factor files, write their ensemble to ``out`` atomically; returns ``out``."""
    frames = [read_factor_frame(p) for p in paths]
    metas = [factor_metadata(p) for p in paths]
    df = ensemble_frames(frames, min_members)
    out = Path(out)
    meta = {**shared_metadata(metas), "net": "Ensemble", "name": name or out.stem,
            "loss": "none", "seed": "ensemble",
            "method": "mean of per-day z-scores (ddof 0)",
            "members": [{"path": str(p), **{k: m.get(k) for k in ("net", "loss", "seed")}}
                        for p, m in zip(paths, metas)],
            "min_members": min_members or len(paths), "rows": df.height,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out.parent.mkdir(parents=True, exist_ok=True)
    table = df.to_arrow()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           b"deepfactor": json.dumps(meta, default=str).encode()})
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("factors", nargs="+", help="member factor files (date, code, score parquet)")
    p.add_argument("--out", required=True, help="output factor file (.parquet)")
    p.add_argument("--name", default=None, help="ensemble name in the metadata (default: "
                   "the output file's stem)")
    p.add_argument("--min-members", type=int, default=None,
                   help="keep stock-days scored by at least this many members (default all)")


def run(args: argparse.Namespace) -> int:
    out = write_ensemble(args.factors, args.out, args.name, args.min_members)
    print(f"ensemble of {len(args.factors)} factors -> {out} "
          f"({pl.scan_parquet(out).select(pl.len()).collect().item()} rows)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m backtest.ensemble --out OUT.parquet F1.parquet F2.parquet [...]``."""
    parser = argparse.ArgumentParser(prog="python -m backtest.ensemble",
                                     description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
