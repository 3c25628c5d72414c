"""Stochastic depth (per-sample drop-path)."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero whole samples of a residual branch with probability ``p`` in training mode.

    Kept samples are rescaled by ``1 / (1 - p)``; identity in eval mode or when ``p == 0``.
    Input: any shape ``(B, ...)``.
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"
