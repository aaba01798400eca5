"""Side effects of training: factor export (early stopping/checkpoints are Lightning's own)."""

from callbacks.factor_writer import FactorWriter, read_factor_metadata, write_factor

__all__ = ["FactorWriter", "read_factor_metadata", "write_factor"]
