"""FactorModule: the one generic LightningModule (net + loss + optimizer factory)."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from lightning_modules.components.fused_gru import use_fused_gru
from lightning_modules.losses import ICLoss
from lightning_modules.metrics import DailyIC, DailyRankIC, summarize_daily


# net and loss are rebuilt from the CLI's recorded config on load_from_checkpoint, so
# keeping them in hparams is intended
warnings.filterwarnings("ignore", message=r".*is an instance of `nn.Module` and is already saved")


def _adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


class FactorModule(L.LightningModule):
    """Trains any net of the contract ``net(x [N, T, F], size_group [N]) -> scores [N]``.

    One batch is one trading day. Logged per epoch (keys identical across models so
    runs compare directly): ``train/loss``, ``val/loss``, ``val/ic``, ``val/rank_ic``,
    ``val/rank_icir`` and the same under ``test/``. IC metrics are means of per-day
    cross-sectional correlations; ICIR = mean / std (ddof=1) of the daily Rank IC.

    Args:
        net: the architecture (a plain ``nn.Module``), e.g. DecompGRU.
        loss: a loss module ``loss(pred, target, mask) -> scalar``; None = IC loss.
        optimizer: optimizer factory taking the parameters (default Adam, lr 1e-3).
        lr_scheduler: optional scheduler factory taking the optimizer.
        gru_kernel: ``fused`` (default) runs the net's one-layer, one-direction ``nn.GRU``
            layers with the compiled cache-blocked CPU recurrence
            (:class:`~lightning_modules.components.fused_gru.FusedGRU`: same parameters and
            equations, 3.1-4.4x faster train steps on a CPU, docs/speed.md); on CUDA, and where
            the kernel cannot be built, they run ``nn.GRU`` as before. ``torch`` keeps plain
            ``nn.GRU``. (The compiled group de-mean and decomposition of ``layers.py`` do not
            depend on this option; ``DEEPFACTOR_FUSED_GRU=0`` switches every compiled kernel
            off.)
    """

    def __init__(self, net: nn.Module, loss: nn.Module | None = None,
                 optimizer: OptimizerCallable = _adam,
                 lr_scheduler: LRSchedulerCallable | None = None,
                 gru_kernel: Literal["fused", "torch"] = "fused") -> None:
        super().__init__()
        self.save_hyperparameters()
        if gru_kernel not in ("fused", "torch"):
            raise ValueError(f"gru_kernel must be 'fused' or 'torch', got {gru_kernel!r}")
        if gru_kernel == "fused":
            use_fused_gru(net)
        self.gru_kernel = gru_kernel
        self.net = net
        self.loss = loss if loss is not None else ICLoss()
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        self.metrics = nn.ModuleDict({f"{stage}_{name}": cls() for stage in ("val", "test")
                                      for name, cls in (("ic", DailyIC),
                                                        ("rank_ic", DailyRankIC))})

    def net_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
        """``batch["x"]``; for a net that declares ``granularities``, the dict granularity ->
        window ``[N, T_g, F]`` (``daily`` is ``x``, any other ``g`` is ``x_<g>``)."""
        granularities = getattr(self.net, "granularities", None)
        if not granularities:
            return batch["x"]
        keys = {g: "x" if g == "daily" else f"x_{g}" for g in granularities}
        missing = [k for k in keys.values() if k not in batch]
        if missing:
            raise ValueError(f"{type(self.net).__name__} needs batch keys {missing}: use "
                             "datamodules.multigranularity.MultiGranularityDataModule with "
                             f"granularities {[g for g in granularities if g != 'daily']}")
        return {g: batch[k] for g, k in keys.items()}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(self.net_input(batch), batch["size_group"])  # [N]

    def compute_loss(self, pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training objective; subclasses with auxiliary losses extend this."""
        return self.loss(pred, batch["y"], batch["mask"])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(self(batch), batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=1)
        return loss

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        pred = self(batch)
        mask = batch["mask"]
        if mask.sum() < 2:
            return pred  # a day without labels (end of the test period) is scored, not evaluated
        self.log(f"{stage}/loss", self.compute_loss(pred, batch), on_step=False,
                 on_epoch=True, batch_size=1)
        for name in ("ic", "rank_ic"):
            self.metrics[f"{stage}_{name}"].update(pred.float(), batch["y"], mask)
        return pred

    def _eval_epoch_end(self, stage: str) -> None:
        for name in ("ic", "rank_ic"):
            metric = self.metrics[f"{stage}_{name}"]
            if not metric.update_called:
                continue
            self.log(f"{stage}/{name}", metric.compute())
            if name == "rank_ic":
                self.log(f"{stage}/rank_icir", summarize_daily(metric.daily_values(), "icir"))
            metric.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Test metrics, and the day's scores (``FactorWriter`` exports them: one pass)."""
        return self._scores(batch, self._eval_step(batch, "test"))

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._scores(batch, self(batch))

    @staticmethod
    def _scores(batch: dict[str, torch.Tensor], pred: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"day": batch["day"].expand_as(batch["stock"]), "stock": batch["stock"],
                "score": pred.detach().float()}

    def configure_optimizers(self) -> Any:
        opt = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": self.scheduler_factory(opt)}
