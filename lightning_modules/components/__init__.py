"""Factor nets as plain ``nn.Module``s sharing one contract.

``forward(x: Tensor [N, T, F], size_group: LongTensor [N] | None = None) -> Tensor [N]``:
one trading day's cross-section in, one score per stock out. Shared blocks live in
:mod:`lightning_modules.components.layers`.
"""

from lightning_modules.components.decompgru import DecompGRU
from lightning_modules.components.gru import GRU

__all__ = ["DecompGRU", "GRU"]
