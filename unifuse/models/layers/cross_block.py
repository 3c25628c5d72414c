"""ISF cross block: inter-domain (cross-source) window attention with an interaction module."""

from __future__ import annotations

import torch
from torch import nn

from .drop_path import DropPath, residual_add
from .mlp import Mlp
from .swin_block import blockwise, blockwise_ok, from_windows, make_grid, to_windows
from .window_attention import CrossWindowAttention, WindowGrid


class CrossSwinBlock(nn.Module):
    """Two-stream block (spec §3). Streams ``x`` (A) and ``y`` (B): tokens ``(B, H·W, C)``.

    1. ``xn, yn = LN1_A(x), LN1_B(y)``; (shift) and window both.
    2. ``a_x = attn_A(q=xn, kv=yn)``, ``a_y = attn_B(q=yn, kv=xn)``; un-window, un-shift.
    3. ``(a_x, a_y) = interaction(a_x, a_y)`` (IPA / PA / TE, or nothing).
    4. Residual + MLP per stream, each stream with its own drop-path module.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 8, shift: int = 0,
                 mlp_ratio: float = 2.0, drop_path: float = 0.0, interaction: nn.Module | None = None):
        super().__init__()
        self.window_size, self.shift = window_size, shift
        hidden = int(dim * mlp_ratio)
        self.norm1_A, self.norm1_B = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn_A = CrossWindowAttention(dim, window_size, num_heads)
        self.attn_B = CrossWindowAttention(dim, window_size, num_heads)
        self.drop_path_A, self.drop_path_B = DropPath(drop_path), DropPath(drop_path)
        self.norm2_A, self.norm2_B = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp_A, self.mlp_B = Mlp(dim, hidden), Mlp(dim, hidden)
        self.interaction = interaction

    def forward(self, x: torch.Tensor, y: torch.Tensor, size: tuple[int, int]):
        H, W = size
        ws, s = self.window_size, self.shift
        # drop-path factors in the order the whole-map path applies them
        fac = (self.drop_path_A.factors(x), self.drop_path_A.factors(x),
               self.drop_path_B.factors(y), self.drop_path_B.factors(y))
        if blockwise_ok(x.shape[0] * x.shape[1], x.device):
            def piece(xy, mask, b):
                return self._window_block(xy, mask, tuple(None if f is None else f[b : b + 1] for f in fac))

            return blockwise(piece, (x, y), H, W, ws, s)
        grid = make_grid(H, W, ws, s, x.device)
        xw = to_windows(self.norm1_A(x), H, W, ws, s)
        yw = to_windows(self.norm1_B(y), H, W, ws, s)
        a_x = from_windows(self.attn_A(xw, yw, grid), H, W, ws, s)
        a_y = from_windows(self.attn_B(yw, xw, grid), H, W, ws, s)
        return self._tail(x, y, a_x, a_y, fac)

    def _window_block(self, xy, mask, fac):
        """The whole block on the tokens of ``n`` whole windows, ``(1, n, ws², C)`` each (no
        autograd); ``fac``: the piece's drop-path factors (see :meth:`_tail`)."""
        x, y = xy
        grid = WindowGrid(0, 0, mask)
        xn, yn = self.norm1_A(x), self.norm1_B(y)
        return self._tail(x, y, self.attn_A(xn, yn, grid), self.attn_B(yn, xn, grid), fac)

    def _tail(self, x, y, a_x, a_y, fac):
        """Steps 3–4 (per token): interaction, residuals and MLPs; ``fac``: drop-path factors
        (attention A, MLP A, attention B, MLP B), each ``None`` or per sample."""
        if self.interaction is not None:
            a_x, a_y = self.interaction(a_x, a_y)
        x = residual_add(x, a_x, fac[0])
        x = residual_add(x, self.mlp_A(self.norm2_A(x)), fac[1])
        y = residual_add(y, a_y, fac[2])
        y = residual_add(y, self.mlp_B(self.norm2_B(y)), fac[3])
        return x, y
