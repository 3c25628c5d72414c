"""Two-layer perceptron with GELU (``fc1`` -> GELU -> ``fc2``)."""

from __future__ import annotations

import torch
from torch import nn

from .linear import Linear


class Mlp(nn.Module):
    """``Linear(in, hidden) -> GELU (erf) -> Linear(hidden, out)``; acts on the last axis."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None):
        super().__init__()
        self.fc1 = Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
