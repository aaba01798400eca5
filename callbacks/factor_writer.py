"""FactorWriter: writes the predicted test-period factor as ``date, code, score`` parquet."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import polars as pl
import pyarrow.parquet as pq
import torch
from lightning.pytorch.callbacks import BasePredictionWriter


def write_factor(df: pl.DataFrame, path: Path, metadata: dict[str, Any]) -> Path:
    """Write a factor frame with key-value metadata atomically (temp file + rename)."""
    dup = df.select(pl.struct("date", "code").is_duplicated().any()).item()
    if dup:
        raise ValueError(f"factor for {path} has duplicate (date, code) rows")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = df.to_arrow()
    meta = {**(table.schema.metadata or {}),
            b"deepfactor": json.dumps(metadata, default=str).encode()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(path)
    return path


def read_factor_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata dict stored by :func:`write_factor`."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"deepfactor", b"{}"))


class FactorWriter(BasePredictionWriter):
    """After ``trainer.test`` or ``trainer.predict`` on the test period, write one score per
    (date, code).

    After fit the CLI tests the best checkpoint once: the test pass both computes the test
    metrics and exports the factor (``FactorModule.test_step`` returns the day's scores),
    so the test year is scored once. ``python main.py predict`` exports too. Output: parquet with
    columns ``date`` (Date), ``code`` (String), ``score`` (Float64) and metadata
    (net, loss, seed, data source, horizon, splits, checkpoint) under the key
    ``deepfactor``.

    Args:
        dirpath: output directory.
        filename: file name template; fields ``{net}``, ``{loss}``, ``{seed}``.
    """

    def __init__(self, dirpath: str = "runs/factors",
                 filename: str = "{net}_{loss}_seed{seed}.parquet") -> None:
        super().__init__(write_interval="epoch")
        self.dirpath, self.filename = dirpath, filename
        self.last_path: Path | None = None
        self.checkpoint: str | None = None
        self._test_outputs: list[dict[str, torch.Tensor]] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._test_outputs = []

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                          outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        if isinstance(outputs, dict) and "score" in outputs:
            self._test_outputs.append({k: v.cpu() for k, v in outputs.items()})

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._test_outputs:
            self.write_on_epoch_end(trainer, pl_module, self._test_outputs, [])
        self._test_outputs = []

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           predictions: Sequence[Any], batch_indices: Sequence[Any]) -> None:
        preds = [p for p in predictions if p]
        if preds and isinstance(preds[0], list):  # several dataloaders
            preds = [p for group in preds for p in group]
        dm = trainer.datamodule
        day = torch.cat([p["day"].cpu() for p in preds]).numpy()  # GPU runs: to host first
        stock = torch.cat([p["stock"].cpu() for p in preds]).numpy()
        score = torch.cat([p["score"].cpu() for p in preds]).double().numpy()
        df = pl.DataFrame({"date": dm.panel.dates[day], "code": dm.panel.codes[stock],
                           "score": score}).sort("date", "code")
        meta = self.metadata(trainer, pl_module, df)
        name = self.filename.format(net=meta["net"], loss=meta["loss"], seed=meta["seed"])
        self.last_path = write_factor(df, Path(self.dirpath) / name, meta)

    def metadata(self, trainer: L.Trainer, pl_module: L.LightningModule,
                 df: pl.DataFrame) -> dict[str, Any]:
        dm = trainer.datamodule
        net = getattr(pl_module.net, "factor_name", type(pl_module.net).__name__)
        return {"net": net, "loss": type(pl_module.loss).__name__,
                "seed": os.environ.get("PL_GLOBAL_SEED", "none"),
                "data": dm.market.key(), "horizon": dm.horizon, "window": dm.window,
                "label_transform": dm.label_transform, "universe": dm.universe,
                "test_universe": getattr(dm, "test_universe", None),
                "label_scope": getattr(dm, "label_scope", None),
                "splits": {k: [str(dm.panel.dates[s.days[0]]), str(dm.panel.dates[s.days[-1]])]
                           for k, s in dm.splits.items()},
                "checkpoint": self.checkpoint, "rows": df.height,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
