"""Torch-free market data layer: canonical schema, validation, dense panels, synthetic market.

Imported by both `datamodules` (training) and `backtest` (evaluation); it must never
import torch or lightning.
"""

from market.panel import Panel
from market.schema import DataValidationError, MarketData, validate_bars

__all__ = ["DataValidationError", "MarketData", "Panel", "validate_bars"]
