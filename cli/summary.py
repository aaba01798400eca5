"""What the CLI does after ``fit``: test and export with the best weights, then report."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from rich.console import Console
from rich.table import Table

from callbacks.factor_writer import FactorWriter


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """Path of the best checkpoint, or None (fast_dev_run / checkpointing disabled)."""
    cb = trainer.checkpoint_callback
    return cb.best_model_path if cb is not None and cb.best_model_path else None


def wandb_run_dir(trainer: L.Trainer) -> str | None:
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return str(Path(logger.experiment.dir).parent)
    return None


def after_fit_summary(trainer: L.Trainer, model: L.LightningModule,
                      datamodule: L.LightningDataModule) -> dict[str, object]:
    """Test the best checkpoint, export its test-period factor, print where things are."""
    if trainer.interrupted:
        return {}
    ckpt = best_checkpoint(trainer)
    writers = [cb for cb in trainer.callbacks if isinstance(cb, FactorWriter)]
    for writer in writers:
        writer.checkpoint, writer.last_path = ckpt, None
    test = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
    if any(w.last_path is None for w in writers):  # test_step returned no scores: predict
        trainer.predict(model, datamodule=datamodule, ckpt_path=ckpt, return_predictions=True)
    metrics = test[0] if test else {}
    info = {"checkpoint": ckpt, "wandb_run": wandb_run_dir(trainer),
            "factor": str(writers[0].last_path) if writers else None,
            **{k: round(float(v), 4) for k, v in metrics.items()},
            # documented data handling, counted (NaN fills, VWAP fallbacks, ...)
            **{f"data/{k}": v for k, v in getattr(datamodule, "report", {}).items()}}
    if trainer.is_global_zero:
        table = Table(title="deepfactor fit summary", show_header=False)
        for key, value in info.items():
            table.add_row(key, str(value))
        Console().print(table)
    return info
