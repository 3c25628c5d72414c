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
from torch.autograd.function import once_differentiable

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
        taps only, so memory stays at a few copies of ``x``. Under autograd the backward of
        :class:`_AdaptiveLowpass` accumulates the 9 taps' input gradients in one padded buffer
        (autograd's own made a zero-filled padded copy per tap and summed them: 36 ms against
        2.7 ms for the forward at 2×60×64×64 on the AVX2 CPU measured; BENCHMARKS.md, session 10).
    """
    mode = _pad_mode(x, padding)
    if torch.is_grad_enabled() and (x.requires_grad or kernels.requires_grad):
        return _AdaptiveLowpass.apply(x, kernels, mode)
    return _taps(_pad(x, mode), kernels)


def _pad_mode(x: torch.Tensor, padding: str) -> str:
    if padding == "reflect":
        return "reflect" if min(x.shape[-2:]) > 1 else "replicate"  # a 1-pixel side cannot be reflected
    return "constant"


def _pad(x: torch.Tensor, mode: str) -> torch.Tensor:
    return F.pad(x, (1, 1, 1, 1), mode=mode)


def _shifted(xp: torch.Tensor, k: int, H: int, W: int) -> torch.Tensor:
    """Tap ``k``'s view of the padded map: ``(B, C, H, W)``."""
    dy, dx = divmod(k, 3)
    return xp[:, :, dy : dy + H, dx : dx + W]


def _taps(xp: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    H, W = kernels.shape[-2:]
    out = kernels[:, 0:1] * _shifted(xp, 0, H, W)
    for k in range(1, 9):  # one fused multiply-add pass per tap
        out.addcmul_(kernels[:, k : k + 1], _shifted(xp, k, H, W))
    return out


class _AdaptiveLowpass(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernels, mode: str):
        xp = _pad(x, mode)
        ctx.save_for_backward(x, xp, kernels)
        ctx.mode = mode
        return _taps(xp, kernels)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, xp, kernels = ctx.saved_tensors
        H, W = grad.shape[-2:]
        # every pass below walks grad and xp together: give them one layout (channels-last
        # for TITA's token maps; mixed layouts made the passes several times slower)
        fmt = torch.channels_last if xp.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        grad = grad.contiguous(memory_format=fmt)
        dx = dk = None
        if ctx.needs_input_grad[1]:
            dk = torch.stack([torch.mul(grad, _shifted(xp, k, H, W)).sum(1) for k in range(9)], dim=1)
        if ctx.needs_input_grad[0]:
            dxp = torch.zeros_like(xp)
            for k in range(9):
                _shifted(dxp, k, H, W).addcmul_(kernels[:, k : k + 1], grad)
            if ctx.mode == "constant":
                dx = dxp[:, :, 1:-1, 1:-1]
            elif ctx.mode == "reflect":
                dx = torch.ops.aten.reflection_pad2d_backward(dxp, x, [1, 1, 1, 1])
            else:
                dx = torch.ops.aten.replication_pad2d_backward(dxp, x, [1, 1, 1, 1])
        return dx, dk, None


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
