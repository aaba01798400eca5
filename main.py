"""Command line: ``python main.py fit --config configs/decompgru_ic.yaml``.

``python main.py rolling --config configs/decompgru_ic.yaml [--rolling.*]`` runs the
yearly rolling experiment (cli/rolling.py) on top of the same ``fit`` command.

LightningCLI (jsonargparse) is the only configuration layer. ``configs/trainer.yaml``
is read first for every subcommand (shared trainer, logger and callbacks); the model
config given with ``--config`` overrides it. After ``fit`` the CLI evaluates the test
period with the best checkpoint, exports the factor through the FactorWriter callback
and prints where the checkpoint, the W&B run and the factor file are.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from cli.summary import after_fit_summary

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class FactorCLI(LightningCLI):
    """LightningCLI with the shared trainer config and the post-fit test + export."""

    def after_fit(self) -> None:
        after_fit_summary(self.trainer, self.model, self.datamodule)


def cli_main(args: list[str] | None = None, run: bool = True) -> FactorCLI:
    """Build (and by default run) the CLI; ``args`` replaces ``sys.argv[1:]``."""
    os.environ.setdefault("WANDB_SILENT", "true")
    warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within")
    defaults = {"default_config_files": [str(CONFIG_DIR / "trainer.yaml")]}
    return FactorCLI(
        subclass_mode_model=True, subclass_mode_data=True, seed_everything_default=0,
        parser_kwargs=defaults if not run else
        {cmd: defaults for cmd in ("fit", "validate", "test", "predict")},
        save_config_kwargs={"overwrite": True}, args=args, run=run)


def main() -> None:
    from cli.runtime import tune_malloc

    tune_malloc()  # keep freed tensors' memory in the heap (cli/runtime.py, docs/speed.md)
    if sys.argv[1:2] == ["rolling"]:
        from cli.rolling import rolling_main

        rolling_main(sys.argv[2:])
    else:
        cli_main()


if __name__ == "__main__":
    main()
