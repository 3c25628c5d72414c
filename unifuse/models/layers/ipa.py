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

from .ipa_grad import ipa_train, param_key
from .linear import linear
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


class _PixelAttentionBase(nn.Module):
    def __init__(self, dim: int, num_heads: int = 6):
        super().__init__()
        # Sequential so that the official key ``relation_judger.0.fc1`` is kept
        self.relation_judger = nn.Sequential(Mlp(2 * dim, dim, dim), nn.Softmax(dim=-1))
        self.k_noise = nn.Embedding(2, dim)
        self.v_noise = nn.Embedding(2, dim)
        self.cross_attn_0_to_1 = PackedMultiheadProjections(dim, num_heads)
        self.cross_attn_1_to_0 = PackedMultiheadProjections(dim, num_heads)

    def _input_projections(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The bias-free linear maps of ``x`` and of ``y`` that do not depend on ``r``.

        ``x``: ``[[W_1; W_2], W_q^A, W_v^A, W_v^B]``, ``y``: ``[[W_1; W_2], W_q^B, W_v^A, W_v^B]``
        (``W_1, W_2``: the judger's first layer split by input block, so ``fc1([x;y]) =
        W_1 x + W_2 y + b`` and ``fc1([y;x])`` reuse the same two products; ``A`` =
        ``cross_attn_0_to_1``, ``B`` = ``cross_attn_1_to_0``). Biases are added later
        (:meth:`forward`, :meth:`_stream`).
        """
        wj = torch.cat(self.relation_judger[0].fc1.weight.chunk(2, dim=1))
        wqa, _, wva = self.cross_attn_0_to_1.in_proj_weight.chunk(3)
        wqb, _, wvb = self.cross_attn_1_to_0.in_proj_weight.chunk(3)
        return [wj, wqa, wva, wvb], [wj, wqb, wva, wvb]

    def _weights(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], bool]:
        """:meth:`_input_projections` and the two key weights ``W_k`` (A, B), and whether they
        are kept: without autograd they are composed once (contiguous) and cached while the
        parameters are unchanged, so :func:`~.linear.linear` can cache their oneDNN layout."""
        C = self.cross_attn_0_to_1.in_proj_weight.shape[1]
        keep = not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()))
        if keep:
            key = param_key(self.parameters())
            hit = getattr(self, "_weight_cache", None)
            if hit is not None and hit[0] == key:
                return hit[1]
        w_x, w_y = self._input_projections()
        wk = [m.in_proj_weight[C:2 * C] for m in (self.cross_attn_0_to_1, self.cross_attn_1_to_0)]
        if not keep:
            return w_x, w_y, wk, False
        # one tensor object per distinct weight (W_1;W_2, W_v^A and W_v^B are shared by x and y)
        dedup: dict[tuple, torch.Tensor] = {}
        fix = lambda ws: [dedup.setdefault((w.data_ptr(), w.shape, w.stride()), w.detach().contiguous()) for w in ws]  # noqa: E731
        out = (fix(w_x), fix(w_y), fix(wk), True)
        self._weight_cache = (key, out)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x, y``: ``(B, L, C)`` window-attention outputs -> updated ``(x, y)``, same shape.

        Per pixel (``N = B·L`` rows, all batched): the products of each input
        (:meth:`_input_projections`), the judger's hidden layer and softmax, then per
        stream the key difference ``k1 - k2`` (one product), ``α = sigmoid((q·Δk)_head / √d)``
        and ``V = lerp(V_2, V_1, α)``; the value bias, common to both values, is moved into
        ``out_proj``'s bias (``W_o b_v + b_o``).
        """
        shape, C = x.shape, x.shape[-1]
        x2, y2 = x.reshape(-1, C), y.reshape(-1, C)
        w_x, w_y, w_k, keep = self._weights()
        lin = lambda t, w: linear(t, w, persistent=keep)  # noqa: E731
        # [W_1 x, W_2 x] in one product; separate narrow products measured faster than one 5C-wide one
        px = (*lin(x2, w_x[0]).split(C, dim=-1), *(lin(x2, w) for w in w_x[1:]))
        py = (*lin(y2, w_y[0]).split(C, dim=-1), *(lin(y2, w) for w in w_y[1:]))
        mlp = self.relation_judger[0]
        r_xy = torch.softmax(mlp.fc2(mlp.act(torch.add(px[0], py[1]).add_(mlp.fc1.bias))), dim=-1)
        r_yx = torch.softmax(mlp.fc2(mlp.act(torch.add(py[0], px[1]).add_(mlp.fc1.bias))), dim=-1)
        # stream A: query x (px[2]), values [x, y] -> (px[3], py[3]); stream B: query y, values [y, x]
        new_x = self._stream(0, self.cross_attn_0_to_1, x2, r_xy, px[2], px[3], py[3], w_k[0], keep)
        new_y = self._stream(1, self.cross_attn_1_to_0, y2, r_yx, py[2], py[4], px[4], w_k[1], keep)
        return new_x.view(shape), new_y.view(shape)

    def _key_difference_input(self, i: int, q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """``k1_in - k2_in`` (before ``W_k``; the key bias cancels), ``(N, C)``."""
        raise NotImplementedError

    def _value_offset(self, i: int, mha: PackedMultiheadProjections) -> torch.Tensor | None:
        """Extra ``W_v`` term of the first value (``W_v v_noise[i]`` for PA), or None."""
        return None

    def _stream(self, i, mha, q_in, r, q, v1, v2, w_k, keep) -> torch.Tensor:
        """``q_in + out_proj(Σ_j α_j V_j)`` for one stream.

        ``q = W_q q_in``, ``v1 = W_v v_1``, ``v2 = W_v v_2`` (bias-free products, ``(N, C)``);
        ``w_k``: the stream's key weight, ``keep``: whether it is a kept (cached) weight
        (:meth:`_weights`).
        """
        N, C = q_in.shape
        h = mha.num_heads
        d = C // h
        b_q, _, b_v = mha.in_proj_bias.chunk(3)
        kd = linear(self._key_difference_input(i, q_in, r), w_k, persistent=keep)
        logit = ((q + b_q) * kd).view(N, h, d).sum(-1, keepdim=True)
        # weight of key 1, expanded over each head's channels (a contiguous weight keeps lerp vectorised)
        alpha = torch.sigmoid(logit * (1.0 / math.sqrt(d))).to(v2.dtype).expand(N, h, d).reshape(N, C)
        off = self._value_offset(i, mha)
        if off is not None:
            v1 = v1 + off.to(v1.dtype)
        v = torch.lerp(v2, v1, alpha)
        bias = torch.addmv(mha.out_proj.bias, mha.out_proj.weight, b_v)  # out_proj(v + b_v)
        return linear(v, mha.out_proj.weight, bias).add_(q_in)


class InteractionPixelAttention(_PixelAttentionBase):
    """IPA (TITA): self key ``n1 + x - x⊙r``, cross key ``n2 + x + x⊙r``, values ``[x, y]``.

    With autograd (training) the forward and backward of :mod:`.ipa_grad` (same values,
    merged products); otherwise the batched forward of the base class."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if (torch.is_grad_enabled() and x.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled(x.device.type)
                and (x.requires_grad or y.requires_grad or any(p.requires_grad for p in self.parameters()))):
            return ipa_train(self, x, y)
        return super().forward(x, y)

    def _key_difference_input(self, i, x, r):
        return torch.addcmul(self.k_noise.weight[i] - self.v_noise.weight[i], x, r, value=-2.0)


class PixelAttention(_PixelAttentionBase):
    """PA (GeminiFusion): keys ``[k_noise[i] + x, x⊙r]``, values ``[v_noise[i] + x, y]``."""

    def _key_difference_input(self, i, x, r):
        return torch.addcmul(self.k_noise.weight[i] + x, x, r, value=-1.0)

    def _value_offset(self, i, mha):
        C = self.v_noise.weight.shape[-1]
        return F.linear(self.v_noise.weight[i], mha.in_proj_weight[2 * C:])
