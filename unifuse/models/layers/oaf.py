"""Operation-based Adaptive Fusion (OAF, TITA spec §5) and the plain conv fusion head.

Per source, a branch block turns the feature map ``X`` into up to three candidates

* HPF: ``X - lowpass(X)`` with a per-pixel 3×3 kernel (CARAFE-style): ``softmax`` over 9
  predicted logits, times a 3×3 Hamming window, renormalised;
* ADD: ``X + conv(Xc)``;
* MUL: ``X ⊙ conv(Xc)``;

with ``Xc = conv1x1(X)``. A weight generator maps the pooled features of both sources to
one softmax over all ``2·n_branches`` candidates (per sample), and the fused map is their
weighted sum.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .mlp import Mlp

BRANCHES = ("hpf", "add", "mul")


def _xavier(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def adaptive_lowpass(x: torch.Tensor, kernels: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """Apply a per-pixel 3×3 kernel shared by all channels.

    Args:
        x: ``(B, C, H, W)``.
        kernels: ``(B, 9, H, W)``, tap ``k`` at offset ``(k//3 - 1, k%3 - 1)``.
        padding: ``"reflect"`` (the official pure-PyTorch path) or ``"zeros"`` (mmcv CARAFE).
    Returns:
        ``(B, C, H, W)``: ``Σ_k kernels[:, k] · x[shifted by offset k]``. Loops over the 9
        taps only, so memory stays at a few copies of ``x``.
    """
    H, W = x.shape[-2:]
    if padding == "reflect" and min(H, W) > 1:
        xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    elif padding == "reflect":  # a 1-pixel side cannot be reflected: repeat the edge
        xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    else:
        xp = F.pad(x, (1, 1, 1, 1))
    out = kernels[:, 0:1] * xp[:, :, 0:H, 0:W]
    for k in range(1, 9):  # one fused multiply-add pass per tap
        dy, dx = divmod(k, 3)
        out.addcmul_(kernels[:, k : k + 1], xp[:, :, dy : dy + H, dx : dx + W])
    return out


class OAFBranches(nn.Module):
    """Per-source branch block (``fafb_A`` / ``fafb_B``). ``(B, C, H, W)`` -> list of candidates."""

    def __init__(self, dim: int, branches: Sequence[str] = BRANCHES, carafe_padding: str = "reflect"):
        super().__init__()
        self.branches = tuple(branches)
        self.carafe_padding = carafe_padding
        self.channel_compressor = _xavier(nn.Conv2d(dim, dim, 1))
        if "hpf" in self.branches:
            self.ahpf_generator = nn.Sequential(_xavier(nn.Conv2d(dim, 9, 3, padding=1)))
            ham = np.hamming(3)
            self.register_buffer("hamming_highpass", torch.tensor(np.outer(ham, ham), dtype=torch.float32).view(1, 1, 3, 3), persistent=False)
        if "add" in self.branches:
            self.residual_generator = nn.Sequential(_xavier(nn.Conv2d(dim, dim, 3, padding=1)))
        if "mul" in self.branches:
            self.weight_generator = nn.Sequential(_xavier(nn.Conv2d(dim, dim, 3, padding=1)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        xc = self.channel_compressor(x)
        out = []
        for name in self.branches:
            if name == "hpf":
                w = torch.softmax(self.ahpf_generator(xc), dim=1) * self.hamming_highpass.reshape(1, 9, 1, 1).to(x.dtype)
                w = w / w.sum(dim=1, keepdim=True)
                out.append(x - adaptive_lowpass(x, w, self.carafe_padding))
            elif name == "add":
                out.append(x + self.residual_generator(xc))
            else:
                out.append(x * self.weight_generator(xc))
        return out


class OAF(nn.Module):
    """OAF fusion head: ``(B, C, H, W)`` × 2 -> fused ``(B, C, H, W)``.

    Args:
        dim: channels. branches: subset of ``("hpf", "add", "mul")`` (in that order).
        dynamic_weights: if False (ablation "w/o DW") the weight generator is removed and
            every candidate gets the uniform weight ``1 / (2·n_branches)``.
        carafe_padding: border handling of the HPF low-pass (``"reflect"`` or ``"zeros"``).
    """

    def __init__(self, dim: int, branches: Sequence[str] = BRANCHES, dynamic_weights: bool = True,
                 carafe_padding: str = "reflect"):
        super().__init__()
        unknown = set(branches) - set(BRANCHES)
        branches = tuple(b for b in BRANCHES if b in set(branches))
        if not branches or unknown:
            raise ConfigError(f"oaf_branches must be a non-empty subset of {BRANCHES}, got {sorted(set(branches) | unknown)}")
        if carafe_padding not in ("reflect", "zeros"):
            raise ConfigError(f"carafe_padding must be 'reflect' or 'zeros', got {carafe_padding!r}")
        self.n = len(branches)
        self.fafb_A = OAFBranches(dim, branches, carafe_padding)
        self.fafb_B = OAFBranches(dim, branches, carafe_padding)
        if dynamic_weights:
            self.weight_gen = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), Mlp(2 * dim, dim, 2 * self.n))
        else:
            self.weight_gen = None

    def weights(self, x: torch.Tensor, y: torch.Tensor, pooled: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample candidate weights ``(B, 2·n)``: A's branches first, then B's; sum to 1.

        ``pooled`` (``(B, 2C)``) replaces the global average pool of ``concat(x, y)`` when
        given (tiled inference passes the whole image's mean).
        """
        if self.weight_gen is None:
            return x.new_full((x.shape[0], 2 * self.n), 1.0 / (2 * self.n))
        if pooled is None:
            logits = self.weight_gen(torch.cat([x, y], dim=1))
        else:
            logits = self.weight_gen[2](pooled.to(x.dtype))
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor, pooled: torch.Tensor | None = None) -> torch.Tensor:
        w = self.weights(x, y, pooled)
        cands = self.fafb_A(x) + self.fafb_B(y)
        w = w.to(cands[0].dtype)
        out = w[:, 0, None, None, None] * cands[0]
        for i, c in enumerate(cands[1:], start=1):
            out.addcmul_(w[:, i, None, None, None], c)
        return out


class ConvFusionHead(nn.Module):
    """SwinFusion's "1conv" head: ``concat(x, y)`` -> Conv3×3(2C→C) -> LeakyReLU(0.2)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * dim, dim, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(torch.cat([x, y], dim=1)))
