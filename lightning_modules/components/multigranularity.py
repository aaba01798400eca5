"""Multi-granularity factor nets (Haitong Securities, report 2): daily, 60-min, 30-min windows.

Every net keeps the common contract ``forward(x, size_group=None) -> scores [N]`` where
``x`` is a Tensor ``[N, T, F]`` (one granularity) or a dict granularity -> ``[N, T_g, F]``,
and declares ``granularities`` so that ``FactorModule`` passes it those windows (``daily``
is the batch's ``x``, ``60min`` / ``30min`` are ``x_60min`` / ``x_30min``).
``factor_name`` names the exported factor file.

Each granularity is first patched by a :class:`PatchConv` (kernel = stride = ``patch``
steps; defaults: 3 days for daily as in the DecompGRU report, one day = 4 / 8 bars for
60 / 30 minutes), then encoded:

- ``gru``: GRU (1 layer) -> LayerNorm on the last step -> ``[N, H]``;
- ``bi_agru`` (bidirectional attention GRU): bidirectional GRU -> LayerNorm on every step
  -> :class:`AttentionPooling` (a learned score per step, softmax over time, weighted sum
  of the hidden states) -> ``[N, 2H]``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from lightning_modules.components.layers import AttentionPooling, PatchConv

Granularity = Literal["daily", "60min", "30min"]
Encoder = Literal["gru", "bi_agru"]
BARS_PER_DAY = {"daily": 1, "60min": 4, "30min": 8}
DEFAULT_PATCH = {"daily": 3, "60min": 4, "30min": 8}


def _check_granularities(granularities: list[str]) -> list[str]:
    unknown = [g for g in granularities if g not in BARS_PER_DAY]
    if unknown or not granularities or len(set(granularities)) != len(granularities):
        raise ValueError(f"granularities must be distinct, non-empty, among "
                         f"{list(BARS_PER_DAY)}; got {granularities}")
    return list(granularities)


def _patches(granularities: list[str], patches: dict[str, int] | None) -> dict[str, int]:
    out = {g: (patches or {}).get(g, DEFAULT_PATCH[g]) for g in granularities}
    if any(p < 1 for p in out.values()):
        raise ValueError(f"patches must be >= 1, got {out}")
    return out


def pick(x: Tensor | dict[str, Tensor], granularity: str) -> Tensor:
    """The ``[N, T, F]`` window of ``granularity`` from a tensor or a dict of tensors."""
    if isinstance(x, Tensor):
        return x
    if granularity not in x:
        raise ValueError(f"input has no {granularity!r} window; got {sorted(x)}")
    return x[granularity]


class SequenceEncoder(nn.Module):
    """PatchConv -> GRU -> one vector per stock: x [N, T, F] -> [N, out_dim].

    ``gru``: last step of a 1-layer GRU after LayerNorm (``out_dim = hidden``).
    ``bi_agru``: bidirectional GRU, LayerNorm per step, attention pooling over the
    steps (``out_dim = 2 * hidden``).
    """

    def __init__(self, n_features: int = 6, hidden: int = 64, patch: int = 3,
                 kind: Encoder = "gru") -> None:
        """
        Args:
            n_features: Input features per step (F).
            hidden: Patch channels and GRU hidden size per direction (H).
            patch: Steps per patch (kernel = stride of the patching conv).
            kind: ``gru`` (last state) or ``bi_agru`` (bidirectional + attention).
        """
        super().__init__()
        if kind not in ("gru", "bi_agru"):
            raise ValueError(f"encoder must be 'gru' or 'bi_agru', got {kind!r}")
        self.kind = kind
        bi = kind == "bi_agru"
        self.patch = PatchConv(n_features, hidden, patch)
        self.gru = nn.GRU(hidden, hidden, num_layers=1, batch_first=True, bidirectional=bi)
        self.out_dim = 2 * hidden if bi else hidden
        self.norm = nn.LayerNorm(self.out_dim)
        self.pool = AttentionPooling(self.out_dim) if bi else None

    def forward(self, x: Tensor, return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x [N, T, F] -> [N, out_dim] (and attention weights [N, P] for ``bi_agru``)."""
        h, _ = self.gru(self.patch(x))  # [N, P, out_dim]
        if self.pool is None:
            out = self.norm(h[:, -1, :])  # [N, H]
            if return_weights:
                raise ValueError("a 'gru' encoder has no attention weights")
            return out
        return self.pool(self.norm(h), return_weights=return_weights)  # [N, 2H] (, [N, P])


class GranularityGRU(nn.Module):
    """Single-granularity net: SequenceEncoder -> Dropout -> Linear -> scores [N]."""

    def __init__(self, granularity: Granularity = "daily", encoder: Encoder = "gru",
                 n_features: int = 6, hidden: int = 64, patch: int | None = None,
                 dropout: float = 0.0) -> None:
        """
        Args:
            granularity: Which window the net reads: daily, 60min or 30min.
            encoder: ``gru`` (GRU baseline) or ``bi_agru`` (bidirectional attention GRU).
            n_features: Input features per step (open, high, low, close, VWAP, volume = 6).
            hidden: Patch channels and GRU hidden size.
            patch: Steps per patch; None = 3 days (daily) or one day of bars (intraday).
            dropout: Dropout probability before the output layer.
        """
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.granularities = _check_granularities([granularity])
        patch = _patches(self.granularities, None if patch is None else {granularity: patch})
        self.encoder = SequenceEncoder(n_features, hidden, patch[granularity], encoder)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.out_dim, 1)
        self.factor_name = f"{'GRU' if encoder == 'gru' else 'BiAGRU'}_{granularity}"

    def forward(self, x: Tensor | dict[str, Tensor], size_group: Tensor | None = None) -> Tensor:
        """x: [N, T, F] or {granularity: [N, T, F]}; size_group ignored -> scores [N]."""
        h = self.encoder(pick(x, self.granularities[0]))  # [N, out_dim]
        return self.head(self.dropout(h)).squeeze(-1)  # [N]

    def attention_weights(self, x: Tensor | dict[str, Tensor]) -> dict[str, Tensor]:
        """{granularity: [N, P]} softmax weights over the patched steps (bi_agru only)."""
        g = self.granularities[0]
        return {g: self.encoder(pick(x, g), return_weights=True)[1]}


class MixedGranularityGRU(nn.Module):
    """"Mixed input": one encoder per granularity, concatenated, MLP -> scores [N]."""

    def __init__(self, granularities: list[Granularity] | None = None, encoder: Encoder = "gru",
                 n_features: int = 6, hidden: int = 64, patches: dict[str, int] | None = None,
                 mlp_hidden: int = 64, dropout: float = 0.0) -> None:
        """
        Args:
            granularities: Windows read, each by its own encoder (default all three).
            encoder: ``gru`` or ``bi_agru`` for every granularity.
            n_features: Input features per step.
            hidden: Patch channels and GRU hidden size of every encoder.
            patches: Steps per patch by granularity; missing ones take the defaults.
            mlp_hidden: Hidden units of the 2-layer MLP on the concatenated states.
            dropout: Dropout probability inside the MLP.
        """
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.granularities = _check_granularities(
            ["daily", "60min", "30min"] if granularities is None else granularities)
        patch = _patches(self.granularities, patches)
        self.encoders = nn.ModuleDict({g: SequenceEncoder(n_features, hidden, patch[g], encoder)
                                       for g in self.granularities})
        width = sum(e.out_dim for e in self.encoders.values())
        self.mlp = nn.Sequential(nn.Linear(width, mlp_hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_hidden, 1))
        self.factor_name = "MixedGRU" if encoder == "gru" else "MixedBiAGRU"

    def forward(self, x: Tensor | dict[str, Tensor], size_group: Tensor | None = None) -> Tensor:
        """x: {granularity: [N, T_g, F]}; size_group ignored -> scores [N]."""
        h = torch.cat([enc(pick(x, g)) for g, enc in self.encoders.items()], dim=-1)  # [N, sum]
        return self.mlp(h).squeeze(-1)  # [N]

    def attention_weights(self, x: Tensor | dict[str, Tensor]) -> dict[str, Tensor]:
        """{granularity: [N, P_g]} attention weights of every encoder (bi_agru only)."""
        return {g: enc(pick(x, g), return_weights=True)[1] for g, enc in self.encoders.items()}


class ResidualOutput(NamedTuple):
    """pred [N]; block_preds [K, N] (coarse to fine); weights [K, N] of the combination
    (sum to one over K); recon_loss: sum over the K-1 finer blocks of the relative
    residual energy ``||a - r||_F^2 / ||a||_F^2`` (a aligned input, r reconstruction)."""

    pred: Tensor
    block_preds: Tensor
    weights: Tensor
    recon_loss: Tensor


class MultiGranularityResidualNet(nn.Module):
    """Multi-granularity residual learning (Hou et al., WWW 2022; MSRA), coarse to fine.

    Per granularity g (ordered coarse -> fine), the input is linearly aligned to
    ``align_dim`` channels by its PatchConv: ``a_g [N, P_g, D]``. Block g is a 2-layer GRU
    over ``u_g`` with a prediction head (and a confidence head) on its LayerNormed last
    state, and — except for the finest — a reconstruction net (MLP per step) mapping its
    states to the next granularity's aligned input. The first block sees ``u = a``; each
    finer block sees ``u_g = a_g - r_g``, the part of its input that the coarser block did
    not reconstruct. To subtract, the coarser states are aligned in time: each coarse step
    is repeated over the finer steps of the same days and the last ``P_g`` are kept (the
    windows of all granularities end at the close of the same day).

    The final score combines the blocks' predictions: their mean, or with ``confidence``
    a per-stock softmax over the blocks' confidence logits (weights sum to one).
    :meth:`forward_with_aux` also returns the block predictions and the reconstruction
    loss that ``MGRLModule`` adds to the objective.
    """

    def __init__(self, granularities: list[Granularity] | None = None, n_features: int = 6,
                 align_dim: int = 64, hidden: int = 64, patches: dict[str, int] | None = None,
                 combine: Literal["mean", "confidence"] = "confidence") -> None:
        """
        Args:
            granularities: Coarse to fine, e.g. ``[daily, 30min]`` (the report's test).
            n_features: Input features per step.
            align_dim: Channels of the aligned inputs (D) that residuals are taken in.
            hidden: Hidden size of each block's 2-layer GRU (H).
            patches: Steps per patch by granularity (defaults: 3 days; one day of bars).
            combine: ``mean`` of the block predictions or ``confidence``-weighted.
        """
        super().__init__()
        grans = _check_granularities(["daily", "30min"] if granularities is None
                                     else granularities)
        if [BARS_PER_DAY[g] for g in grans] != sorted(BARS_PER_DAY[g] for g in grans):
            raise ValueError(f"granularities must go from coarse to fine, got {grans}")
        if combine not in ("mean", "confidence"):
            raise ValueError(f"combine must be 'mean' or 'confidence', got {combine!r}")
        self.granularities, self.combine, self.factor_name = grans, combine, "MGRL"
        patch = _patches(grans, patches)
        # finer steps per coarser step, from (bars per day / patch) = steps per day
        speed = {g: Fraction(BARS_PER_DAY[g], patch[g]) for g in grans}
        self.repeat = [speed[f] / speed[c] for c, f in zip(grans, grans[1:])]
        if any(r.denominator != 1 for r in self.repeat):
            raise ValueError(f"each granularity's steps must split the coarser one's evenly; "
                             f"steps per day {dict((g, str(s)) for g, s in speed.items())}")
        self.align = nn.ModuleDict({g: PatchConv(n_features, align_dim, patch[g]) for g in grans})
        self.gru = nn.ModuleDict({g: nn.GRU(align_dim, hidden, num_layers=2, batch_first=True)
                                  for g in grans})
        self.norm = nn.ModuleDict({g: nn.LayerNorm(hidden) for g in grans})
        self.head = nn.ModuleDict({g: nn.Linear(hidden, 1) for g in grans})
        self.confidence = nn.ModuleDict(
            {g: nn.Linear(hidden, 1) for g in grans} if combine == "confidence" else {})
        self.reconstruct = nn.ModuleDict(
            {g: nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, align_dim))
             for g in grans[:-1]})

    def _reconstruction(self, k: int, states: Tensor, steps: int) -> Tensor:
        """Block k's states [N, P_k, H] -> reconstruction of block k+1's input [N, steps, D]."""
        aligned = states.repeat_interleave(int(self.repeat[k]), dim=1)  # [N, P_k * r, H]
        if aligned.shape[1] < steps:
            raise ValueError(f"the {self.granularities[k + 1]} window ({steps} steps) is longer "
                             f"than the {self.granularities[k]} window covers")
        return self.reconstruct[self.granularities[k]](aligned[:, -steps:, :])  # [N, steps, D]

    def forward_with_aux(self, x: Tensor | dict[str, Tensor],
                         size_group: Tensor | None = None) -> ResidualOutput:
        """x: {granularity: [N, T_g, F]} -> :class:`ResidualOutput`."""
        preds, logits, energies, states = [], [], [], None
        for k, g in enumerate(self.granularities):
            u = self.align[g](pick(x, g))  # [N, P_g, D] aligned input
            if states is not None:
                residual = u - self._reconstruction(k - 1, states, u.shape[1])  # [N, P_g, D]
                energies.append(residual.pow(2).sum() / u.pow(2).sum().clamp_min(1e-12))
                u = residual
            states, _ = self.gru[g](u)  # [N, P_g, H]
            h = self.norm[g](states[:, -1, :])  # [N, H]
            preds.append(self.head[g](h).squeeze(-1))  # [N]
            if self.combine == "confidence":
                logits.append(self.confidence[g](h).squeeze(-1))  # [N]
        block_preds = torch.stack(preds)  # [K, N]
        if self.combine == "confidence":
            weights = torch.softmax(torch.stack(logits), dim=0)  # [K, N]
        else:
            weights = torch.full_like(block_preds, 1.0 / len(preds))  # [K, N]
        recon = torch.stack(energies).sum() if energies else block_preds.new_zeros(())
        return ResidualOutput((weights * block_preds).sum(0), block_preds, weights, recon)

    def forward(self, x: Tensor | dict[str, Tensor], size_group: Tensor | None = None) -> Tensor:
        """x: {granularity: [N, T_g, F]}; size_group ignored -> scores [N]."""
        return self.forward_with_aux(x, size_group).pred


__all__ = ["GranularityGRU", "MixedGranularityGRU", "MultiGranularityResidualNet",
           "ResidualOutput", "SequenceEncoder"]
