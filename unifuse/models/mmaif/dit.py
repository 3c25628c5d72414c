"""The modernised latent DiT of MMAIF (spec ``mmaif.md`` §4).

``MMAIFDiT(cfg, z_ch, d_text, variant)`` maps latents on an ``h × w`` grid (multiples of the
patch size) to a latent of the same shape:

* ``variant="reg"``: ``forward(None, z_a, z_b, text)`` → the fused latent (no timestep);
* ``variant="flow"``: ``forward(z_t, z_a, z_b, text, t)`` → the velocity.

Wiring (§4.2): main stream = Linear(patchify(concat_ch(z_t?, z_a, z_b))); per-token condition
``c`` = Linear(patchify(concat_ch(z_a, z_b))) + TimeEmb(t) (flow) + Linear(pooled prompt);
prompt tokens ``T = LN(Linear(tokens))`` enter every attention as extra keys/values.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import LoRAAdaLN, modulate, rope_2d_angles
from .blocks import AxisPositionalEmbedding, DiTBlock, TimestepEmbedder
from .config import MMAIFConfig
from .text import TextBatch


class DiTOutput(NamedTuple):
    out: Tensor  # (B, z, h, w)
    balance: Tensor  # 0-dim mean load-balancing term over layers
    load: Tensor  # (depth, n_experts) expert-load histograms


def patchify(x: Tensor, p: int) -> Tensor:
    """``(B, C, h, w)`` -> ``(B, (h/p)(w/p), p·p·C)`` (row-major tokens; features ordered (py, px, C))."""
    B, C, h, w = x.shape
    return x.reshape(B, C, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(B, (h // p) * (w // p), p * p * C)


def unpatchify(x: Tensor, p: int, C: int, grid: tuple[int, int]) -> Tensor:
    """Inverse of :func:`patchify`: ``(B, gh·gw, p·p·C)`` -> ``(B, C, gh·p, gw·p)``."""
    B = x.shape[0]
    gh, gw = grid
    return x.reshape(B, gh, gw, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, gh * p, gw * p)


class MMAIFDiT(nn.Module):
    def __init__(self, cfg: MMAIFConfig, z_ch: int, d_text: int, variant: str = "reg"):
        super().__init__()
        self.cfg, self.z_ch, self.variant = cfg, z_ch, variant
        D, p = cfg.hidden, cfg.patch
        n_in = 3 if variant == "flow" else 2
        self.x_embed = nn.Linear(p * p * n_in * z_ch, D)
        self.c_embed = nn.Linear(p * p * 2 * z_ch, D)
        self.t_embed = TimestepEmbedder(D, cfg.time_freq_dim) if variant == "flow" else None
        self.pooled_embed = nn.Linear(d_text, D)
        self.text_proj = nn.Linear(d_text, D)
        self.text_norm = nn.LayerNorm(D)
        self.pos = AxisPositionalEmbedding(D, cfg.pe_hidden, cfg.pe_scale)
        self.blocks = nn.ModuleList(
            DiTBlock(D, cfg.heads, cfg.lora_rank, cfg.expert_hidden, n_experts=cfg.n_experts, top_k=cfg.top_k,
                     n_shared=cfg.n_shared, shared_hidden=cfg.shared_hidden, router_std=cfg.router_std, nafblock=cfg.nafblock,
                     naf_dw_expand=cfg.naf_dw_expand, naf_ffn_expand=cfg.naf_ffn_expand, value_residual=cfg.value_residual,
                     adaln_form=cfg.adaln_form)
            for _ in range(cfg.depth))
        self.final_ada = LoRAAdaLN(D, cfg.lora_rank, 2)
        self.final = nn.Linear(D, p * p * z_ch)
        self.initialize()

    def initialize(self) -> None:
        """Spec §4.9: Xavier-uniform weights, zero biases; zero MLP2 outputs, final projection,
        pe last layers, η and NAFBlock β/γ; router N(0, 0.02²)."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, LoRAAdaLN):
                m.zero_init()
        self.pos.zero_init()
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)
        for blk in self.blocks:
            nn.init.zeros_(blk.attn.eta)
            nn.init.normal_(blk.moe.router.weight, std=self.cfg.router_std)
            if blk.naf is not None:
                nn.init.zeros_(blk.naf.beta)
                nn.init.zeros_(blk.naf.gamma)

    def forward(self, z_t: Tensor | None, z_a: Tensor, z_b: Tensor, text: TextBatch, t: Tensor | None = None) -> DiTOutput:
        """Latents ``(B, z, h, w)`` (h, w multiples of ``patch``); ``t`` ``(B,)`` in [0, 1] (flow only)."""
        p, (h, w) = self.cfg.patch, z_a.shape[-2:]
        if h % p or w % p:
            raise ValueError(f"latent grid {h}x{w} is not a multiple of the patch size {p}")
        grid = (h // p, w // p)
        cond = torch.cat([z_a, z_b], dim=1)
        x_in = cond if self.variant == "reg" else torch.cat([z_t, cond], dim=1)
        x = self.x_embed(patchify(x_in, p))
        c = self.c_embed(patchify(cond, p)) + self.pooled_embed(text.pooled.to(x.dtype))[:, None]
        if self.t_embed is not None:
            if t is None:
                raise ValueError("the flow DiT needs a timestep t")
            c = c + self.t_embed(t)[:, None]
        tokens = self.text_norm(self.text_proj(text.tokens.to(x.dtype)))
        pe = self.pos(*grid).to(x.dtype)
        angles = rope_2d_angles(*grid, self.cfg.head_dim, self.cfg.rope_base, device=x.device)
        extra = c if self.cfg.image_cond_in_attention else None
        v, bals, loads = None, [], []
        for blk in self.blocks:
            x, v, bal, load = blk(x, c, pe, grid, angles, tokens, text.mask, v, extra)
            bals.append(bal)
            loads.append(load)
        gf, bf = self.final_ada(c)
        y = self.final(modulate(F.layer_norm(x, (x.shape[-1],), eps=1e-6), bf, gf, self.cfg.adaln_form))
        return DiTOutput(unpatchify(y, p, self.z_ch, grid), torch.stack(bals).mean(), torch.stack(loads))
