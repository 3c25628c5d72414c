"""Interaction-enhanced Pixel Attention (IPA, TITA) and the original Pixel Attention (PA).

Both act independently on every pixel of two token streams. For stream A (query ``x``) a
6-head attention over exactly **two keys** is computed; with two keys the per-head softmax
equals ``sigmoid(l1 - l2)``, so only the *difference* of the two projected keys is needed:

* IPA (TITA, spec §4): keys ``[n1 + x - x⊙r, n2 + x + x⊙r]``, values ``[x, y]`` with
  ``r = softmax_C(MLP([x; y]))`` (the relation judger) and noise rows ``k_noise[i]``,
  ``v_noise[i]`` (row 0 for stream A, row 1 for stream B).
* PA (GeminiFusion, spec §4.5): keys ``[k_noise[i] + x, x⊙r]``, values ``[v_noise[i] + x, y]``.

Parameters are stored in ``nn.MultiheadAttention``'s layout (``in_proj_weight`` = rows
``[W_q; W_k; W_v]``, ``in_proj_bias``, ``out_proj``) so official checkpoints load as-is.
Everything is batched over all pixels of all images: no Python loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .mlp import Mlp


class PackedMultiheadProjections(nn.Module):
    """The parameters of ``nn.MultiheadAttention(dim, heads)`` without its forward."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def two_key_attention(self, q_in, kdiff_in, v2_in, vdiff_in) -> torch.Tensor:
        """Attention of one query over two keys/values, for N independent pixels.

        Args (all ``(N, C)``): ``q_in`` the query; ``kdiff_in = k1 - k2`` (key inputs);
        ``v2_in`` the second value input; ``vdiff_in = v1 - v2`` (value inputs).
        Returns ``out_proj(Σ_j α_j V_j)``, ``(N, C)``.
        """
        C = q_in.shape[-1]
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, _, b_v = self.in_proj_bias.chunk(3)
        d = C // self.num_heads
        q = F.linear(q_in, w_q, b_q)
        kd = F.linear(kdiff_in, w_k)  # the key bias cancels in k1 - k2
        logit_diff = (q * kd).view(-1, self.num_heads, d).sum(-1) * (1.0 / math.sqrt(d))
        alpha = torch.sigmoid(logit_diff).repeat_interleave(d, dim=-1)  # weight of key 1
        out = F.linear(v2_in, w_v, b_v) + alpha * F.linear(vdiff_in, w_v)
        return self.out_proj(out)


class _PixelAttentionBase(nn.Module):
    def __init__(self, dim: int, num_heads: int = 6):
        super().__init__()
        # Sequential so that the official key ``relation_judger.0.fc1`` is kept
        self.relation_judger = nn.Sequential(Mlp(2 * dim, dim, dim), nn.Softmax(dim=-1))
        self.k_noise = nn.Embedding(2, dim)
        self.v_noise = nn.Embedding(2, dim)
        self.cross_attn_0_to_1 = PackedMultiheadProjections(dim, num_heads)
        self.cross_attn_1_to_0 = PackedMultiheadProjections(dim, num_heads)

    def relations(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``r_xy = softmax_C(MLP([x;y]))`` and ``r_yx``; inputs ``(N, C)``.

        The first layer is split into its ``x`` and ``y`` column blocks, so
        ``fc1([x;y]) = W_1 x + W_2 y + b`` and ``fc1([y;x]) = W_1 y + W_2 x + b`` reuse two
        products of each input and no concatenated copies are made.
        """
        mlp = self.relation_judger[0]
        w = torch.cat(mlp.fc1.weight.chunk(2, dim=1))  # [W_1; W_2]: both blocks in one product per input
        px, py = F.linear(x, w).chunk(2, dim=-1), F.linear(y, w).chunk(2, dim=-1)
        h_xy = mlp.act(px[0] + py[1] + mlp.fc1.bias)
        h_yx = mlp.act(py[0] + px[1] + mlp.fc1.bias)
        return (torch.softmax(mlp.fc2(h_xy), dim=-1), torch.softmax(mlp.fc2(h_yx), dim=-1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x, y``: ``(B, L, C)`` window-attention outputs -> updated ``(x, y)``, same shape."""
        shape = x.shape
        x2, y2 = x.reshape(-1, shape[-1]), y.reshape(-1, shape[-1])
        r_xy, r_yx = self.relations(x2, y2)
        new_x = x2 + self._stream(0, self.cross_attn_0_to_1, x2, y2, r_xy)
        new_y = y2 + self._stream(1, self.cross_attn_1_to_0, y2, x2, r_yx)
        return new_x.view(shape), new_y.view(shape)

    def _stream(self, i, mha, q, other, r) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class InteractionPixelAttention(_PixelAttentionBase):
    """IPA (TITA): self key ``n1 + x - x⊙r``, cross key ``n2 + x + x⊙r``, values ``[x, y]``."""

    def _stream(self, i, mha, x, y, r):
        noise = (self.k_noise.weight[i] - self.v_noise.weight[i])
        return mha.two_key_attention(x, noise - 2.0 * x * r, y, x - y)


class PixelAttention(_PixelAttentionBase):
    """PA (GeminiFusion): keys ``[k_noise[i] + x, x⊙r]``, values ``[v_noise[i] + x, y]``."""

    def _stream(self, i, mha, x, y, r):
        return mha.two_key_attention(x, self.k_noise.weight[i] + x - x * r, y, self.v_noise.weight[i] + x - y)
