"""Stitch per-window factor files into one continuous factor; ensemble the seeds.

Checks (ValueError naming the files on failure): exactly one score per (date, code)
within a window file; test windows do not overlap; every trading day between the first
and the last test day is present (no gaps). The experiment's factor is the mean over
seeds of the per-day z-scored predictions (SPEC 2); a stock missing from some seed on a
day is averaged over the seeds that have it (counted in the metadata).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from callbacks.factor_writer import read_factor_metadata, write_factor


def stitch_windows(files: list[Path], calendar: np.ndarray) -> pl.DataFrame:
    """Concatenate one seed's window files (``date, code, score``) after checking them."""
    frames = [pl.read_parquet(f).select("date", "code", "score") for f in files]
    spans = sorted((f["date"].min(), f["date"].max(), str(p)) for f, p in zip(frames, files))
    for (a0, a1, pa), (b0, b1, pb) in zip(spans, spans[1:]):
        if b0 <= a1:
            raise ValueError(f"test windows overlap: {pa} ends {a1}, {pb} starts {b0}")
    df = pl.concat(frames).sort("date", "code")
    dup = df.filter(pl.struct("date", "code").is_duplicated())
    if dup.height:
        raise ValueError(f"duplicate (date, code) in {files}: {dup.head(5).to_dicts()}")
    days = calendar[(calendar >= np.datetime64(spans[0][0])) &
                    (calendar <= np.datetime64(spans[-1][1]))]
    have = set(df["date"].unique().to_numpy().astype("datetime64[D]").tolist())
    missing = [d for d in days.tolist() if d not in have]
    if missing:
        raise ValueError(f"gap in the stitched factor of {files}: {len(missing)} trading day(s) "
                         f"without scores, e.g. {missing[:5]}")
    return df


def ensemble_seeds(per_seed: dict[int, pl.DataFrame]) -> pl.DataFrame:
    """``date, code, score`` (mean of per-day z-scores) + ``score_seed<k>`` columns."""
    z = []
    for seed, df in per_seed.items():
        s = pl.col("score")
        z.append(df.with_columns(((s - s.mean().over("date")) / s.std(ddof=0).over("date"))
                                 .fill_nan(0.0).alias(f"score_seed{seed}")).drop("score"))
    out = z[0]
    for other in z[1:]:
        out = out.join(other, on=["date", "code"], how="full", coalesce=True)
    cols = [f"score_seed{s}" for s in per_seed]
    return (out.with_columns(pl.mean_horizontal(cols).alias("score"))
            .select("date", "code", "score", *cols).sort("date", "code"))


def write_experiment(out_dir: Path, per_seed_files: dict[int, list[Path]],
                     calendar: np.ndarray, metadata: dict[str, Any]) -> Path:
    """Write ``factor_seed<k>.parquet`` per seed and the ensemble ``factor.parquet``."""
    per_seed = {}
    for seed, files in sorted(per_seed_files.items()):
        df = stitch_windows(files, calendar)
        meta = {**read_factor_metadata(files[0]), **metadata, "seed": seed,
                "windows": [str(f) for f in files]}
        write_factor(df, out_dir / f"factor_seed{seed}.parquet", meta)
        per_seed[seed] = df
    ens = ensemble_seeds(per_seed)
    partial = ens.select(pl.any_horizontal(pl.all().is_null()).sum()).item()
    meta = {**metadata, "seeds": sorted(per_seed), "rows_missing_some_seed": int(partial),
            "score": "mean over seeds of per-day z-scored predictions"}
    return write_factor(ens, out_dir / "factor.parquet", meta)
