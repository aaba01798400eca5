"""One (window, seed) cell of a rolling experiment: fit, resume, test, export, record."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from callbacks.factor_writer import FactorWriter
from cli.summary import after_fit_summary


@dataclass
class Cell:
    """Dates and directory of one (window, seed) training run."""

    year: int
    seed: int
    train_start: str | None
    val_start: str
    test_start: str
    test_end: str
    directory: str

    @property
    def path(self) -> Path:
        return Path(self.directory)

    def fit_args(self) -> list[str]:
        args = [f"--seed_everything={self.seed}", f"--data.val_start={self.val_start}",
                f"--data.test_start={self.test_start}", f"--data.test_end={self.test_end}"]
        if self.train_start:
            args.append(f"--data.train_start={self.train_start}")
        return args


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


def _cell_logger(cli: Any, cell: Cell, experiment: str) -> WandbLogger | None:
    """A W&B run per cell: grouped by experiment, tagged, id kept for resumption."""
    spec = cli.config["trainer"]["logger"]
    if not spec or not str(getattr(spec, "class_path", "")).endswith("WandbLogger"):
        return None
    id_file = cell.path / "wandb_id.txt"
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:12])
    net, loss = type(cli.model.net).__name__, type(cli.model.loss).__name__
    init = {**dict(spec.init_args), "name": f"{experiment}/{cell.year}/s{cell.seed}",
            "group": experiment, "id": id_file.read_text().strip(), "resume": "allow",
            "tags": [net, loss, f"window={cell.year}", f"seed={cell.seed}"],
            "job_type": "window"}
    return WandbLogger(**init)


def _configure(cli: Any, cell: Cell, experiment: str) -> None:
    trainer = cli.trainer
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint):
            cb.dirpath, cb.save_last = str(cell.path / "checkpoints"), True
        if isinstance(cb, FactorWriter):
            cb.dirpath, cb.filename = str(cell.path), "factor.parquet"
    logger = _cell_logger(cli, cell, experiment)
    if logger is not None:
        trainer.loggers = [logger]
        logger.log_hyperparams({"cell": asdict(cell), "experiment": experiment})


def run_cell(cell: Cell, fit_args: list[str]) -> dict:
    """Run (or skip, or resume) one cell; returns its ``result.json`` content."""
    from main import cli_main

    done = cell.path / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    cell.path.mkdir(parents=True, exist_ok=True)
    start = time.time()
    cli = cli_main([*fit_args, *cell.fit_args()], run=False)
    experiment = cell.path.parent.parent.name
    _configure(cli, cell, experiment)
    fitted = cell.path / "fit_done.json"
    if not fitted.exists():
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=_resume_from(cell))
        if cli.trainer.interrupted:
            raise KeyboardInterrupt(f"cell {cell.directory} interrupted")
        _atomic_json(fitted, {"best": cli.trainer.checkpoint_callback.best_model_path})
    else:
        cli.datamodule.setup("fit")
    best = json.loads(fitted.read_text())["best"]
    cli.trainer.checkpoint_callback.best_model_path = best
    info = after_fit_summary(cli.trainer, cli.model, cli.datamodule)
    state = torch.load(best, map_location="cpu", weights_only=False)
    es = [cb for cb in cli.trainer.callbacks if type(cb).__name__ == "EarlyStopping"]
    result = {**asdict(cell), **info, "best_epoch": int(state["epoch"]),
              "best_val_rank_ic": _best_score(state),
              "stopped_epoch": es[0].stopped_epoch if es else None,
              "seconds": round(time.time() - start, 1)}
    for logger in cli.trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update({"best_epoch": result["best_epoch"],
                                              "best_val_rank_ic": result["best_val_rank_ic"]})
            logger.experiment.finish()
    _atomic_json(done, result)
    return result


def _resume_from(cell: Cell) -> str | None:
    """``last.ckpt`` if it exists and loads (a kill during its write leaves it unreadable)."""
    last = cell.path / "checkpoints" / "last.ckpt"
    if not last.exists():
        return None
    try:
        torch.load(last, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated file: restart the cell from scratch, say so
        print(f"unreadable {last} ({exc}); restarting the cell from scratch")
        last.unlink()
        return None
    return str(last)


def _best_score(state: dict) -> float | None:
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and value.get("best_model_score") is not None:
            return float(value["best_model_score"])
    return None
