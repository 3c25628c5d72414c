"""NAFNet block (Chen et al., ECCV 2022): LayerNorm2d, gated depth-wise conv, simplified
channel attention and a gated FFN, each added through a per-channel scale that starts at 0
(so the block is the identity at initialisation). ``(B, C, H, W) -> (B, C, H, W)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """Per-pixel LayerNorm over channels of ``(B, C, H, W)``, with affine parameters."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def simple_gate(x: Tensor) -> Tensor:
    """Split the channels in half and multiply the halves."""
    a, b = x.chunk(2, dim=1)
    return a * b


class NAFBlock(nn.Module):
    """The standard NAFBlock (DW expansion ``dw_expand``, FFN expansion ``ffn_expand``)."""

    def __init__(self, channels: int, dw_expand: int = 2, ffn_expand: int = 2):
        super().__init__()
        c, dw, ffn = channels, channels * dw_expand, channels * ffn_expand
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.sca = nn.Conv2d(dw // 2, dw // 2, 1)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        y = simple_gate(self.conv2(self.conv1(self.norm1(x))))
        y = y * self.sca(y.mean(dim=(2, 3), keepdim=True))
        x = x + self.beta * self.conv3(y)
        z = self.conv5(simple_gate(self.conv4(self.norm2(x))))
        return x + self.gamma * z
