"""The TITA network (ICCV 2025), computed exactly as the official implementation (spec §1–§5).

Data flow, tensors ``(B, C, H', W')`` with ``H', W'`` padded to multiples of the window:

shared shallow convs (both sources) -> ``patch_embed.norm`` -> extraction (4 Swin blocks
per source) -> ``patch_embed.norm`` -> fusion (2 layers × 4 ISF cross blocks with IPA)
-> OAF -> ``patch_embed.norm`` -> reconstruction (4 Swin blocks) -> output convs -> crop.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import (OAF, ConvFusionHead, CrossSwinBlock, InteractionPixelAttention, PixelAttention,
                      SwinBlock, TokenExchange)
from .config import TITAConfig


def pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` at the bottom/right to multiples of ``m`` with reflect padding.

    Where one reflection is not enough (a side shorter than the pad + 1, e.g. 1×1 inputs)
    the reflection is repeated, and a 1-pixel side is replicated.
    """
    H, W = x.shape[-2:]
    for dim, need in ((-2, (-H) % m), (-1, (-W) % m)):
        while need:
            n = x.shape[dim]
            step = min(need, n - 1) if n > 1 else need
            pad = (0, 0, 0, step) if dim == -2 else (0, step, 0, 0)
            x = F.pad(x, pad, mode="reflect" if n > 1 else "replicate")
            need -= step
    return x


class TokenNorm(nn.Module):
    """The single LayerNorm (``patch_embed.norm``) applied at every stage entry."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> normalised tokens ``(B, H·W, C)``."""
        return self.norm(x.flatten(2).transpose(1, 2))


class SwinStage(nn.Module):
    """A group of self-attention Swin blocks (no residual around the group)."""

    def __init__(self, dim: int, depth: int, cfg: TITAConfig, dpr: list[float]):
        super().__init__()
        ws = cfg.window_size
        self.blocks = nn.ModuleList(
            SwinBlock(dim, cfg.num_heads, ws, 0 if i % 2 == 0 else ws // 2, cfg.mlp_ratio, dpr[i]) for i in range(depth))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, size)
        return x


def _interaction(kind: str, dim: int, heads: int) -> nn.Module | None:
    return {"IPA": lambda: InteractionPixelAttention(dim, heads), "PA": lambda: PixelAttention(dim, heads),
            "TE": lambda: TokenExchange(dim), "none": lambda: None}[kind]()


class FusionLayer(nn.Module):
    """One fusion layer: ``n_self`` intra-domain blocks per source, then ``n_cross`` cross blocks.

    IeSF (TITA): 0 + 4; SF (SwinFusion): 2 + 2; IrSF: 4 + 0. Shifts alternate 0 / ws/2
    within each sub-group. ``dpr_*`` are the drop-path rates of the sub-group's blocks.
    """

    def __init__(self, dim: int, n_self: int, n_cross: int, cfg: TITAConfig, dpr: list[float]):
        super().__init__()
        ws, h, r = cfg.window_size, cfg.num_heads, cfg.mlp_ratio
        shift = lambda i: 0 if i % 2 == 0 else ws // 2  # noqa: E731
        self.self_A = nn.ModuleList(SwinBlock(dim, h, ws, shift(i), r, dpr[i]) for i in range(n_self))
        self.self_B = nn.ModuleList(SwinBlock(dim, h, ws, shift(i), r, dpr[i]) for i in range(n_self))
        self.cross = nn.ModuleList(
            CrossSwinBlock(dim, h, ws, shift(i), r, dpr[n_self + i], _interaction(cfg.interaction, dim, h))
            for i in range(n_cross))

    def forward(self, x, y, size):
        for ba, bb in zip(self.self_A, self.self_B):
            x, y = ba(x, size), bb(y, size)
        for blk in self.cross:
            x, y = blk(x, y, size)
        return x, y


class TITA(nn.Module):
    """TITA fusion network.

    ``forward(a, b)``: ``a, b`` float ``(N, 1, H, W)`` in ``[0, 1]`` (luma of source A and
    B; any ``H, W >= 1``) -> fused luma ``(N, 1, H, W)``, unclamped (the official network has
    no output activation). Inputs are padded (reflect) to multiples of the window and the
    output is cropped back.

    Attributes: ``input_mode = "luma"``, ``trainable = True``, ``config``.
    """

    input_mode = "luma"
    trainable = True

    def __init__(self, config: TITAConfig | None = None, **overrides: Any):
        super().__init__()
        cfg = config or TITAConfig()
        if overrides:
            cfg = TITAConfig.from_dict({**cfg.to_dict(), **overrides})
        self.config = cfg
        C, mid = cfg.embed_dim, cfg.embed_dim // 2
        self.conv_first1_A = nn.Conv2d(1, mid, 3, 1, 1)
        self.conv_first2_A = nn.Conv2d(mid, C, 3, 1, 1)
        if cfg.keep_unused_convs:  # dead in the official network; kept for key/parameter parity
            self.conv_first1_B = nn.Conv2d(1, mid, 3, 1, 1)
            self.conv_first2_B = nn.Conv2d(mid, mid, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)
        self.patch_embed = TokenNorm(C)

        lin = lambda n: torch.linspace(0, cfg.drop_path_rate, n).tolist()  # noqa: E731
        self.layers_Ex_A = SwinStage(C, cfg.depths_ex, cfg, lin(cfg.depths_ex))
        self.layers_Ex_B = SwinStage(C, cfg.depths_ex, cfg, lin(cfg.depths_ex))
        self.norm_Ex_A, self.norm_Ex_B = nn.LayerNorm(C), nn.LayerNorm(C)

        n_self, n_cross = {"IeSF": (0, 1), "SF": (1, 1), "IrSF": (1, 0)}[cfg.fusion_layout]
        dpr = lin(sum(cfg.depths_fusion))
        layers, start = [], 0
        for d in cfg.depths_fusion:
            ns = d // (n_self + n_cross) * n_self
            layers.append(FusionLayer(C, ns, d - ns, cfg, dpr[start:start + d]))
            start += d
        self.layers_Fusion = nn.ModuleList(layers)
        self.norm_Fusion_A, self.norm_Fusion_B = nn.LayerNorm(C), nn.LayerNorm(C)

        if cfg.fusion_head == "oaf":
            self.fusion_head: nn.Module = OAF(C, cfg.oaf_branches, cfg.oaf_dynamic_weights, cfg.carafe_padding)
        else:
            self.fusion_head = ConvFusionHead(C)

        self.layers_Re = SwinStage(C, cfg.depths_re, cfg, lin(cfg.depths_re))
        self.norm_Re = nn.LayerNorm(C)
        self.conv_last1 = nn.Conv2d(C, mid, 3, 1, 1)
        self.conv_last2 = nn.Conv2d(mid, mid // 2, 3, 1, 1)
        self.conv_last3 = nn.Conv2d(mid // 2, 1, 3, 1, 1)
        self._precision = torch.float32
        self.apply(_init_linear_and_norm)

    # ------------------------------------------------------------------ forward
    def _unflatten(self, t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return t.transpose(1, 2).reshape(t.shape[0], -1, *size)

    def encode(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded inputs ``(N, 1, H', W')`` -> fusion-stage features ``(N, C, H', W')`` × 2."""
        size = a.shape[-2:]
        shallow = lambda t: self.lrelu(self.conv_first2_A(self.lrelu(self.conv_first1_A(t))))  # noqa: E731
        fa = self.layers_Ex_A(self.patch_embed(shallow(a)), size)
        fb = self.layers_Ex_B(self.patch_embed(shallow(b)), size)
        fa = self.patch_embed(self._unflatten(self.norm_Ex_A(fa), size))
        fb = self.patch_embed(self._unflatten(self.norm_Ex_B(fb), size))
        for layer in self.layers_Fusion:
            fa, fb = layer(fa, fb, size)
        return self._unflatten(self.norm_Fusion_A(fa), size), self._unflatten(self.norm_Fusion_B(fb), size)

    def decode(self, fa: torch.Tensor, fb: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Fusion head + reconstruction: features ``(N, C, H', W')`` × 2 -> ``(N, 1, H', W')``.

        ``context``: optional image-wide pooled features ``(N, 2C)`` replacing the head's own
        global average pool (used by tiled inference so every tile gets the same OAF weights).
        """
        size = fa.shape[-2:]
        if isinstance(self.fusion_head, OAF):
            f = self.fusion_head(fa, fb, pooled=context)
        else:
            f = self.fusion_head(fa, fb)
        f = self.layers_Re(self.patch_embed(f), size)
        f = self._unflatten(self.norm_Re(f), size)
        return self.conv_last3(self.lrelu(self.conv_last2(self.lrelu(self.conv_last1(f)))))

    # tiled inference protocol (see unifuse.inference.tiling)
    pad_multiple = property(lambda self: self.config.window_size)
    uses_global_context = property(lambda self: isinstance(self.fusion_head, OAF) and self.fusion_head.weight_gen is not None)

    def context_features(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-pixel features whose image-wide mean is the global context: ``(N, 2C, H', W')``."""
        with self._autocast(a):
            fa, fb = self.encode(a, b)
        return torch.cat([fa, fb], dim=1).to(a.dtype)

    def _autocast(self, a: torch.Tensor):
        import contextlib

        if self._precision == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(a.device.type, dtype=self._precision)

    def forward(self, a: torch.Tensor, b: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if a.ndim != 4 or a.shape != b.shape or a.shape[1] != 1:
            raise ValueError(f"TITA expects two (N, 1, H, W) tensors of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        H, W = a.shape[-2:]
        ws = self.config.window_size
        with self._autocast(a):
            out = self.decode(*self.encode(pad_to_multiple(a, ws), pad_to_multiple(b, ws)), context=context)
        return out.to(a.dtype)[..., :H, :W]  # autocast (bf16/fp16) returns to the input's dtype

    # ------------------------------------------------------------------ utilities
    def set_precision(self, precision: str) -> "TITA":
        """``"fp32"`` (default), ``"bf16"`` or ``"fp16"``: internal compute dtype (autocast)."""
        from .. import PRECISIONS

        self._precision = PRECISIONS[precision]
        return self

    def load_weights(self, weights: Any, strict: bool = True) -> "TITA":
        """Load our safetensors file, an official ``.pth`` or a state dict (see checkpoint.py)."""
        from .checkpoint import load_tita_weights

        load_tita_weights(self, weights, strict=strict)
        return self

    @staticmethod
    def default_weights():
        from .checkpoint import shipped_weights_path

        return shipped_weights_path()


def _init_linear_and_norm(m: nn.Module) -> None:
    """Official final init pass: Linear trunc-normal(0.02)/0, LayerNorm 1/0 (spec §6)."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
