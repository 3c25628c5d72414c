"""Window multi-head self- and cross-attention with a relative-position bias (Swin).

Both modules work on windowed tokens ``(B, nW, L, C)`` (``L = ws²``). For small head dims on
the CPU (TITA's d = 10) the fused C++ kernel of :mod:`.attention_native` does the forward and
backward when it could be built; otherwise, without autograd, they use
:func:`torch.nn.functional.scaled_dot_product_attention`, or for small head dims on the CPU
batched products head by head (:func:`_heads_bmm`); in training (the bias needs a gradient)
the hand-written backward of :mod:`.attention_grad`. The shift mask of a shifted
block is only non-zero in the last window row and column, so those windows are attended
separately with the mask and every other window shares one ``(heads, L, L)`` bias: the
``(nW, heads, L, L)`` logit bias is never materialised for large images.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ...backend import cpu_tuned
from . import attention_native
from .attention_grad import attend_chunks, window_attention_train
from .linear import Linear
from .window import border_window_index, relative_position_index

#: below this many windows the full (nW, heads, L, L) bias is built instead (cheaper for
#: small inputs such as 64x64 training crops, where most windows touch the border)
_FULL_MASK_MAX_WINDOWS = 64


class WindowGrid(NamedTuple):
    """Geometry of one windowed feature map: ``nh × nw`` windows, optional shift mask."""

    nh: int
    nw: int
    mask: torch.Tensor | None  # (nW, L, L) with 0 / -100, or None when unshifted


#: head dims up to this use :func:`_heads_bmm` without autograd instead of PyTorch's fused
#: SDPA kernel: for TITA's d = 10 on 64-token windows the fused CPU kernel makes four tiny
#: GEMM calls per (window, head) and reached ~7 GFLOP/s (BENCHMARKS.md, session 8)
_SMALL_HEAD_DIM = 16


def _heads_bmm(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
               mask: torch.Tensor | None, scale: float) -> torch.Tensor:
    """Window attention for small head dims, head by head, without autograd.

    ``q, k, v``: ``(B, nW, h, L, d)``; ``bias``: ``(h, L, L)``; ``mask``: ``(nW, L, L)`` or
    None. Returns ``(B, nW, h, L, d)`` (a view of an ``(h, B, nW, d, L)`` buffer).

    :func:`.attention_grad.attend_chunks` (the forward of the training path) with one reused
    logits buffer: per head and chunk of windows (the logits stay in L2), ``S = Q Kᵀ`` reads
    Q and K in place from the projection output, and ``Oᵀ = Vᵀ Sᵀ``: the transposed product
    has 64-wide rows instead of d-wide ones, about 3× faster in MKL's batched GEMM than
    ``S V`` on the AVX2 CPU measured (BENCHMARKS.md, session 8). Equal to the fused kernel up
    to float rounding (≈1e-6 relative).
    """
    return attend_chunks(q, k, v, bias, mask, scale).permute(1, 2, 0, 4, 3)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SDPA on 4-D ``(windows, heads, L, d)`` tensors; 4-D masks keep PyTorch's fused CPU kernel."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype))


def windowed_attention(q, k, v, bias: torch.Tensor, grid: WindowGrid) -> torch.Tensor:
    """Attention inside windows.

    Args:
        q, k, v: ``(B, nW, heads, L, d)``.
        bias: ``(heads, L, L)`` relative-position bias (added to the scaled logits).
        grid: window geometry and shift mask.
    Returns:
        ``(B, nW, heads, L, d)``.
    """
    B, nW, h, L, d = q.shape
    if d <= _SMALL_HEAD_DIM and attention_native.supported(q, bias):
        # the fused C++ kernel (forward and backward), when it could be built here
        return attention_native.native_window_attention(q, k, v, bias, grid.mask, d**-0.5)
    if torch.is_grad_enabled() and bias.requires_grad:
        # training: PyTorch's SDPA leaves its fused CPU kernel for a slow math path when the
        # bias needs a gradient; the hand-written backward of .attention_grad is faster than
        # autograd's of the written-out form (autocast: the written-out form)
        if torch.is_autocast_enabled(q.device.type):
            logits = (q * d**-0.5) @ k.transpose(-2, -1) + bias
            return (logits if grid.mask is None else logits + grid.mask[:, None]).softmax(dim=-1) @ v
        return window_attention_train(q, k, v, bias, grid.mask, d**-0.5)
    if d <= _SMALL_HEAD_DIM and cpu_tuned(q):
        return _heads_bmm(q, k, v, bias.to(q.dtype), None if grid.mask is None else grid.mask.to(q.dtype), d**-0.5)
    flat = lambda t: t.reshape(B * t.shape[1], h, L, d)  # noqa: E731
    if grid.mask is None:
        return _sdpa(flat(q), flat(k), flat(v), bias[None]).view(B, nW, h, L, d)
    if nW <= _FULL_MASK_MAX_WINDOWS:
        full = (bias[None] + grid.mask[:, None]).expand(B, nW, h, L, L).reshape(B * nW, h, L, L)
        return _sdpa(flat(q), flat(k), flat(v), full).view(B, nW, h, L, d)
    # only the last window row/column see the shift mask: attend the rest with the bias alone
    idx = border_window_index(grid.nh, grid.nw).to(q.device)
    nb = idx.numel()
    out = _sdpa(flat(q), flat(k), flat(v), bias[None]).view(B, nW, h, L, d)
    mb = (bias[None] + grid.mask.index_select(0, idx)[:, None]).expand(B, nb, h, L, L).reshape(B * nb, h, L, L)
    sel = lambda t: flat(t.index_select(1, idx))  # noqa: E731
    ob = _sdpa(sel(q), sel(k), sel(v), mb).view(B, nb, h, L, d)
    return out.index_copy(1, idx, ob)


class _RelPosBias(nn.Module):
    """Learnable ``((2ws-1)², heads)`` table, gathered into a ``(heads, L, L)`` bias."""

    def __init__(self, window_size: int, num_heads: int):
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_bias(self) -> torch.Tensor:
        """``(heads, L, L)`` bias; cached while the table is unchanged and no gradient is needed."""
        table = self.relative_position_bias_table
        key = (table._version, table.device, table.dtype)
        grad = torch.is_grad_enabled() and table.requires_grad
        if not grad and getattr(self, "_bias_cache", (None,))[0] == key:
            return self._bias_cache[1]
        L = self.window_size**2
        idx = relative_position_index(self.window_size).to(table.device)
        bias = table[idx.view(-1)].view(L, L, -1).permute(2, 0, 1).contiguous()
        if not grad:
            self._bias_cache = (key, bias)
        return bias

    def _heads(self, t: torch.Tensor) -> torch.Tensor:  # (B,nW,L,C) -> (B,nW,h,L,d)
        B, nW, L, C = t.shape
        return t.view(B, nW, L, self.num_heads, C // self.num_heads).transpose(2, 3)

    @staticmethod
    def _merge(t: torch.Tensor) -> torch.Tensor:  # (B,nW,h,L,d) -> (B,nW,L,C)
        B, nW, h, L, d = t.shape
        return t.transpose(2, 3).reshape(B, nW, L, h * d)


class WindowAttention(_RelPosBias):
    """Window MSA: ``qkv = Linear(C, 3C)``, scale ``d^-0.5``, rel-pos bias, ``proj``.

    Input/output: windowed tokens ``(B, nW, L, C)``.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__(window_size, num_heads)
        self.dim = dim
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor, grid: WindowGrid) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        out = windowed_attention(self._heads(q), self._heads(k), self._heads(v), self.relative_bias(), grid)
        return self.proj(self._merge(out))


class CrossWindowAttention(_RelPosBias):
    """Inter-domain window attention: queries from one stream, keys/values from the other.

    ``q = Linear(C, C)(x)``, ``kv = Linear(C, 2C)(y)``; otherwise as :class:`WindowAttention`.
    Inputs/output: windowed tokens ``(B, nW, L, C)``.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__(window_size, num_heads)
        self.dim = dim
        self.q = Linear(dim, dim)
        self.kv = Linear(dim, 2 * dim)
        self.proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor, grid: WindowGrid) -> torch.Tensor:
        k, v = self.kv(y).chunk(2, dim=-1)
        out = windowed_attention(self._heads(self.q(x)), self._heads(k), self._heads(v), self.relative_bias(), grid)
        return self.proj(self._merge(out))
