"""MGRLModule: FactorModule for the multi-granularity residual network (auxiliary losses)."""

from __future__ import annotations

from typing import Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from lightning_modules.components.multigranularity import (MultiGranularityResidualNet,
                                                           ResidualOutput)
from lightning_modules.factor_module import FactorModule, _adam


class MGRLModule(FactorModule):
    """Trains a :class:`MultiGranularityResidualNet` with the report's objective:

    ``L = final_weight * loss(pred) + sum_k loss(pred_k) + recon_weight * L_rec
    + weight_decay / 2 * ||Theta||^2``

    where ``pred_k`` are the blocks' predictions, ``L_rec`` the sum of the finer blocks'
    relative residual energies ``||a - r||_F^2 / ||a||_F^2`` and ``Theta`` every parameter
    of the net. The final-prediction term (not in the paper's formula) is what trains the
    confidence weights. ``loss`` is the per-day loss (MSE in the report). The parts are
    logged as ``train/block_loss`` and ``train/recon_loss``.

    Args:
        net: a MultiGranularityResidualNet.
        loss: per-day loss module; None = IC loss (FactorModule's default).
        optimizer: optimizer factory (default Adam, lr 1e-3).
        lr_scheduler: optional scheduler factory.
        recon_weight: lambda_1, weight of the reconstruction (residual energy) loss.
        weight_decay: lambda_theta, L2 penalty on the net's parameters.
        final_weight: weight of the loss of the combined prediction.
        gru_kernel: as in FactorModule.
    """

    def __init__(self, net: nn.Module, loss: nn.Module | None = None,
                 optimizer: OptimizerCallable = _adam,
                 lr_scheduler: LRSchedulerCallable | None = None, recon_weight: float = 0.1,
                 weight_decay: float = 1e-5, final_weight: float = 1.0,
                 gru_kernel: Literal["fused", "torch"] = "fused") -> None:
        if not isinstance(net, MultiGranularityResidualNet):
            raise ValueError(f"MGRLModule needs a MultiGranularityResidualNet, got "
                             f"{type(net).__name__}")
        if min(recon_weight, weight_decay, final_weight) < 0:
            raise ValueError("recon_weight, weight_decay and final_weight must be >= 0")
        super().__init__(net, loss, optimizer, lr_scheduler, gru_kernel)
        self.recon_weight, self.weight_decay = recon_weight, weight_decay
        self.final_weight = final_weight
        self._last: ResidualOutput | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self._last = self.net.forward_with_aux(self.net_input(batch), batch["size_group"])
        return self._last.pred  # [N]

    def compute_loss(self, pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The objective above; ``pred`` must come from this module's last ``forward``."""
        out = self._last
        if out is None or out.pred is not pred:
            out = self.net.forward_with_aux(self.net_input(batch), batch["size_group"])
            pred = out.pred
        y, mask = batch["y"], batch["mask"]
        block = sum(self.loss(p, y, mask) for p in out.block_preds)
        l2 = sum(p.pow(2).sum() for p in self.net.parameters())
        total = (self.final_weight * self.loss(pred, y, mask) + block
                 + self.recon_weight * out.recon_loss + 0.5 * self.weight_decay * l2)
        if self._trainer is not None and self.training:
            self.log("train/block_loss", block, on_step=False, on_epoch=True, batch_size=1)
            self.log("train/recon_loss", out.recon_loss, on_step=False, on_epoch=True,
                     batch_size=1)
        self._last = None  # do not keep the graph alive
        return total
