"""Models: plain nn.Module architectures (components/), losses, metrics, and FactorModule."""

from lightning_modules.factor_module import FactorModule

__all__ = ["FactorModule"]
