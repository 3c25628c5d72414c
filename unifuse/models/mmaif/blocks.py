"""MMAIF DiT pieces (spec ``mmaif.md`` §4): value-residual attention with 2-D RoPE and prompt
tokens, the per-block positional embedding, the timestep embedder and the DiT block.

Token tensors are ``(B, N, D)`` on a row-major ``h × w`` grid (N = h·w)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import LoRAAdaLN, MoEGLU, NAFBlock, apply_rope, modulate


class ValueResidualAttention(nn.Module):
    """Multi-head attention: queries from image tokens; keys/values from image tokens, then
    prompt tokens (and optionally extra condition tokens), sharing ``W_K``/``W_V``.

    2-D RoPE (``angles``) rotates the queries and the image keys only. Value residual:
    ``V = (1 − η)·V_proj + η·V_prev`` on the image values (η one scalar, init 0); the mixed
    ``V`` is returned for the next layer. Padded prompt positions are masked out.
    """

    def __init__(self, dim: int, heads: int, value_residual: bool = True):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.value_residual = value_residual
        self.eta = nn.Parameter(torch.zeros(()))

    def _split(self, x: Tensor) -> Tensor:  # (B, N, D) -> (B, heads, N, hd)
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def forward(self, h: Tensor, angles: Tensor, text: Tensor | None = None, text_mask: Tensor | None = None,
                v_prev: Tensor | None = None, extra: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``h`` (B, N, D), ``angles`` (N, hd/2), ``text`` (B, L, D), ``text_mask`` (B, L) bool,
        ``v_prev`` (B, heads, N, hd) -> (output (B, N, D), mixed values (B, heads, N, hd))."""
        B, N, D = h.shape
        q, k, v = (self._split(t) for t in self.qkv(h).chunk(3, dim=-1))
        if self.value_residual and v_prev is not None:
            v = (1 - self.eta) * v + self.eta * v_prev
        v_out = v
        q, k = apply_rope(q, angles), apply_rope(k, angles)
        keys, vals, masks = [k], [v], [torch.ones(B, N, dtype=torch.bool, device=h.device)]
        w_kv, b_kv = self.qkv.weight[D:], self.qkv.bias[D:]
        for ctx, m in ((text, text_mask), (extra, None)):
            if ctx is None:
                continue
            kc, vc = (self._split(t) for t in F.linear(ctx, w_kv, b_kv).chunk(2, dim=-1))
            keys.append(kc)
            vals.append(vc)
            masks.append(m if m is not None else torch.ones(B, ctx.shape[1], dtype=torch.bool, device=h.device))
        mask = torch.cat(masks, dim=1)[:, None, None, :]  # (B, 1, 1, N + L)
        out = F.scaled_dot_product_attention(q, torch.cat(keys, 2), torch.cat(vals, 2), attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(B, N, D)), v_out


class AxisPositionalEmbedding(nn.Module):
    """``pe[i, j] = MLP_h(i/scale) + MLP_w(j/scale)`` (each Linear(1, hidden), SiLU, Linear(hidden, D));
    the last layers are zero-initialised, so ``pe = 0`` at the start. Returns ``(h·w, D)``."""

    def __init__(self, dim: int, hidden: int = 256, scale: float = 64.0):
        super().__init__()
        self.scale = scale
        self.mlp_h = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, dim))
        self.mlp_w = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def zero_init(self) -> None:
        for m in (self.mlp_h[2], self.mlp_w[2]):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, h: int, w: int) -> Tensor:
        dev = self.mlp_h[0].weight.device
        ph = self.mlp_h(torch.arange(h, dtype=torch.float32, device=dev)[:, None] / self.scale)  # (h, D)
        pw = self.mlp_w(torch.arange(w, dtype=torch.float32, device=dev)[:, None] / self.scale)  # (w, D)
        return (ph[:, None] + pw[None]).reshape(h * w, -1)


class TimestepEmbedder(nn.Module):
    """DiT's embedder: sinusoidal features of ``1000·t`` (``freq_dim``) -> Linear, SiLU, Linear."""

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1).to(self.mlp[0].weight.dtype))


class DiTBlock(nn.Module):
    """Spec §4.4: ``+pe`` → NAFBlock → AdaLN → value-residual attention (gated) → AdaLN → MoE (gated)."""

    def __init__(self, dim: int, heads: int, lora_rank: int, expert_hidden: int, *, n_experts: int = 4, top_k: int = 2,
                 n_shared: int = 1, shared_hidden: int | None = None, router_std: float = 0.02, nafblock: bool = True,
                 naf_dw_expand: int = 2, naf_ffn_expand: int = 2, value_residual: bool = True, adaln_form: str = "one_plus"):
        super().__init__()
        self.naf = NAFBlock(dim, naf_dw_expand, naf_ffn_expand) if nafblock else None
        self.ada = LoRAAdaLN(dim, lora_rank, 6)
        self.attn = ValueResidualAttention(dim, heads, value_residual)
        self.moe = MoEGLU(dim, expert_hidden, n_experts, top_k, n_shared, shared_hidden, router_std)
        self.adaln_form = adaln_form

    def forward(self, x: Tensor, c: Tensor, pe: Tensor, grid: tuple[int, int], angles: Tensor, text: Tensor | None,
                text_mask: Tensor | None, v_prev: Tensor | None, extra: Tensor | None = None):
        """Returns ``(x, mixed values, balance loss, expert load)``."""
        B, N, D = x.shape
        x = x + pe
        if self.naf is not None:
            x = self.naf(x.transpose(1, 2).reshape(B, D, *grid)).flatten(2).transpose(1, 2)
        g1, b1, a1, g2, b2, a2 = self.ada(c)
        h = modulate(F.layer_norm(x, (D,), eps=1e-6), b1, g1, self.adaln_form)
        a, v = self.attn(h, angles, text, text_mask, v_prev, extra)
        x = x + a1 * a
        y, bal, load = self.moe(modulate(F.layer_norm(x, (D,), eps=1e-6), b2, g2, self.adaln_form))
        return x + a2 * y, v, bal, load
