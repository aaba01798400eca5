"""Panel -> processors fitted on training days -> day windows (views) -> DataModule."""

from datamodules.datamodule import CrossSectionalDataModule

__all__ = ["CrossSectionalDataModule"]
