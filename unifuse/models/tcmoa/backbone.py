"""The frozen MAE ViT pieces of TC-MoA: patch embedding, relative-position tables, windowed blocks.

Every block runs on windows (spec §2.3): odd blocks roll the token map by ``-shift``
before partitioning and roll back after the attention; no Swin mask by default (the
official code attends across the wrapped border). The relative-position tables live
outside the blocks, one table per *pair* of blocks, under the official names
``en_relative_position.{i}`` / ``de_relative_position.{i}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.linear import linear as fast_linear
from ..layers import Mlp, shift_mask_windows, window_partition, window_reverse
from ..layers.window_attention import WindowGrid, windowed_attention


def linear(lin: nn.Linear, x: torch.Tensor, packed: bool = False) -> torch.Tensor:
    """``lin(x)``; with ``packed`` (CPU, fp32, no autocast) through oneDNN with the weight
    reordered once into its blocked layout (:func:`unifuse.models.layers.linear.linear`).
    Same result up to float rounding (≈1e-7 relative); about 1.15-1.5× faster per matmul on
    AVX-512 CPUs, at the cost of a second copy of the weights.
    """
    return fast_linear(x, lin.weight, lin.bias) if packed else F.linear(x, lin.weight, lin.bias)


class PatchEmbed(nn.Module):
    """``Conv2d(3, D, P, stride P)``: ``(B, 3, H, W)`` -> tokens ``(B, (H/P)·(W/P), D)`` row-major."""

    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), (x.shape[-2], x.shape[-1])


class RelativePositionTable(nn.Module):
    """Learnable Swin table ``((2ws-1)², heads)`` (trunc-normal 0.02) with the official index buffer."""

    def __init__(self, window_size: int, num_heads: int):
        super().__init__()
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # kept as a (persistent) buffer so official state dicts load key for key; built on the CPU
        # explicitly (not with the cached layers.relative_position_index) so that building on the
        # meta device neither fails nor leaves a meta tensor in a shared cache
        c = torch.arange(window_size, device="cpu")
        coords = torch.stack(torch.meshgrid(c, c, indexing="ij")).flatten(1)
        rel = coords[:, :, None] - coords[:, None, :] + (window_size - 1)
        self.register_buffer("relative_position_index", rel[0] * (2 * window_size - 1) + rel[1])
        if not self.relative_position_bias_table.is_meta:  # (init on meta would import torch._dynamo)
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self) -> torch.Tensor:
        """``(heads, ws², ws²)`` logit bias."""
        L = self.window_size**2
        t = self.relative_position_bias_table
        return t[self.relative_position_index.view(-1)].view(L, L, -1).permute(2, 0, 1).contiguous()


class Attention(nn.Module):
    """Multi-head self-attention on windows with an external bias: ``qkv`` (with bias) and ``proj``."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, grid: WindowGrid, packed: bool = False) -> torch.Tensor:
        """``x``: ``(B, nW, L, C)`` windows; ``bias``: ``(heads, L, L)`` -> ``(B, nW, L, C)``."""
        B, nW, L, C = x.shape
        h = self.num_heads
        qkv = linear(self.qkv, x, packed).view(B, nW, L, 3, h, C // h).permute(3, 0, 1, 4, 2, 5)  # (3, B, nW, h, L, d)
        out = windowed_attention(qkv[0], qkv[1], qkv[2], bias, grid)
        return linear(self.proj, out.transpose(2, 3).reshape(B, nW, L, C), packed)


class Block(nn.Module):
    """Pre-norm ViT block with windowed attention (names as MAE: ``norm1, attn, norm2, mlp``).

    ``x = x + Attn(LN1(x))`` on (shifted) windows, then ``x = x + MLP(LN2(x))`` on the map.
    Input/output: tokens ``(B, H·W, C)``, row-major over the ``H × W`` token grid.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int], bias: torch.Tensor, ws: int, shift: int,
                swin_mask: bool = False, packed: bool = False) -> torch.Tensor:
        B, N, C = x.shape
        H, W = size
        m = x.view(B, H, W, C)
        if shift:
            m = torch.roll(m, shifts=(-shift, -shift), dims=(1, 2))
        win = window_partition(m, ws)  # (B, nW, L, C)
        mask = shift_mask_windows(H, W, ws, shift, x.device) if (shift and swin_mask) else None
        win = win + self.attn(self.norm1(win), bias, WindowGrid(H // ws, W // ws, mask), packed)
        m = window_reverse(win, ws, H, W)
        if shift:
            m = torch.roll(m, shifts=(shift, shift), dims=(1, 2))
        x = m.reshape(B, N, C)
        mlp = self.mlp
        return x + linear(mlp.fc2, mlp.act(linear(mlp.fc1, self.norm2(x), packed)), packed)
