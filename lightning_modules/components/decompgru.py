"""DecompGRU (Huachuang Securities): trend/residual decomposition, two branches, one GRU head."""

from typing import Literal

from torch import Tensor, nn

from lightning_modules.components.fused_gru import patch_gru
from lightning_modules.components.layers import (
    DepthwiseSeparablePatchConv,
    PatchConv,
    SeriesDecomposition,
    group_demean,
)

GroupDemean = Literal["size_groups", "cross_section", "none"]


class DecompGRU(nn.Module):
    """Decomposition GRU with a cross-sectional de-mean on the trend branch.

    1. Decomposition: ``trend = causal ma_kernel-day moving average of x`` (padding only
       at the oldest end, no look-ahead), ``residual = x - trend``; both [N, T, F].
    2. Trend branch: PatchConv -> GRU keeping every step [N, P, H] -> at every step,
       subtract the mean representation of the stock's size group (``size_groups``;
       quintiles of log market cap computed by the data layer), of the whole day's
       cross-section (``cross_section``, the report's ablation), or nothing (``none``).
       This de-mean is the only interaction between stocks.
    3. Residual branch: depthwise-separable patch conv -> [N, P, H] (per stock only).
    4. Sum of both branches -> second GRU (own parameters) -> LayerNorm on the last
       (most recent) step [N, H] -> Linear(H, 1) -> scores [N].

    ``P = T // patch``; if ``T % patch != 0`` the oldest days are dropped by the patch
    convs (the moving average still uses them as history for the first kept days).
    """

    def __init__(
        self,
        n_features: int = 6,
        hidden: int = 64,
        patch: int = 3,
        ma_kernel: int = 5,
        n_size_groups: int = 5,
        group_demean: GroupDemean = "size_groups",
    ) -> None:
        """
        Args:
            n_features: Input features per day (open, high, low, close, VWAP, volume = 6).
            hidden: Channels of both patch convs and hidden size of both 1-layer GRUs.
            patch: Days per patch; kernel size = stride of both patching convs.
            ma_kernel: Length in days of the trailing moving average giving the trend.
            n_size_groups: Number of size groups; size_group ids must be below it.
            group_demean: Cross-sectional de-mean of the trend representation: within
                size groups, over the whole cross-section, or none.
        """
        super().__init__()
        if group_demean not in ("size_groups", "cross_section", "none"):
            raise ValueError(
                "group_demean must be 'size_groups', 'cross_section' or 'none', "
                f"got {group_demean!r}"
            )
        self.n_size_groups = n_size_groups
        self.group_demean = group_demean
        self.decomposition = SeriesDecomposition(ma_kernel)
        self.trend_patch = PatchConv(n_features, hidden, patch)
        self.trend_gru = nn.GRU(hidden, hidden, num_layers=1, batch_first=True)
        self.residual_patch = DepthwiseSeparablePatchConv(n_features, hidden, patch)
        self.gru = nn.GRU(hidden, hidden, num_layers=1, batch_first=True)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, 1)

    def trend_representation(self, trend: Tensor, size_group: Tensor | None = None) -> Tensor:
        """Trend branch: trend [N, T, F] -> de-meaned representation [N, P, H]."""
        h, _ = patch_gru(self.trend_patch, self.trend_gru, trend)  # GRU(PatchConv): [N, P, H]
        if self.group_demean == "none":
            return h
        if self.group_demean == "cross_section":
            return group_demean(h, inplace=True)  # [N, P, H] (h is our temporary)
        if size_group is None:
            raise ValueError(
                "DecompGRU(group_demean='size_groups') needs size_group: a LongTensor [N] of "
                "size-group ids 0..n_size_groups-1 (quintiles of log market cap per day)"
            )
        return group_demean(h, size_group, n_groups=self.n_size_groups, inplace=True)

    def forward(self, x: Tensor, size_group: Tensor | None = None) -> Tensor:
        """Score one day's cross-section.

        Args:
            x: Float [N, T, F], each stock's feature window, most recent day last.
            size_group: LongTensor [N] of size-group ids (0 = smallest caps); required
                when ``group_demean='size_groups'``, ignored otherwise.

        Returns:
            Float [N], one score per stock.
        """
        trend, residual = self.decomposition(x)  # [N, T, F] each
        h = self.trend_representation(trend, size_group)  # [N, P, H]
        # GRU(h + conv(residual)); only its last state [1, N, H] is used
        _, h = patch_gru(self.residual_patch, self.gru, residual, h, states=False)
        h = self.norm(h[0])  # last (most recent) state [N, H]
        return self.head(h).squeeze(-1)  # [N]


__all__ = ["DecompGRU"]
