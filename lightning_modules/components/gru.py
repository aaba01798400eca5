"""GRU baseline of the DecompGRU report (figure 4): patch conv -> GRU -> LayerNorm -> last step."""

from torch import Tensor, nn

from lightning_modules.components.fused_gru import patch_gru
from lightning_modules.components.layers import PatchConv


class GRU(nn.Module):
    """Baseline factor net: ``Linear(LayerNorm(GRU(PatchConv(x)))[:, -1])``.

    One sample is one stock's window of ``T`` days (oldest first) with ``F`` features; one
    batch is one trading day's cross-section of ``N`` stocks. The net scores each stock
    independently (no cross-sectional interaction):

    x [N, T, F] -> PatchConv [N, T // patch, H] -> GRU [N, T // patch, H] -> LayerNorm
    -> last (most recent) step [N, H] -> Dropout -> Linear(H, 1) -> scores [N].

    If ``T % patch != 0`` the oldest ``T % patch`` days are ignored.
    """

    def __init__(
        self, n_features: int = 6, hidden: int = 64, patch: int = 3, dropout: float = 0.0
    ) -> None:
        """
        Args:
            n_features: Input features per day (open, high, low, close, VWAP, volume = 6).
            hidden: Channels of the patch conv and hidden size of the 1-layer GRU.
            patch: Days per patch; kernel size = stride of the patching Conv1d.
            dropout: Dropout probability on the last hidden state, before the output layer.
        """
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.patch = PatchConv(n_features, hidden, patch)
        self.gru = nn.GRU(hidden, hidden, num_layers=1, batch_first=True)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, size_group: Tensor | None = None) -> Tensor:
        """Score one day's cross-section.

        Args:
            x: Float [N, T, F], each stock's feature window, most recent day last.
            size_group: Ignored (part of the common net contract).

        Returns:
            Float [N], one score per stock.
        """
        # GRU(PatchConv(x)); only its last state [1, N, H] is used
        _, h = patch_gru(self.patch, self.gru, x, states=False)
        h = self.norm(h[0])  # most recent step [N, H]
        return self.head(self.dropout(h)).squeeze(-1)  # [N]


__all__ = ["GRU"]
