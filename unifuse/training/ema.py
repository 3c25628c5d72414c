"""Exponential moving average of model parameters (TITA spec §8.5).

``θ_E ← decay·θ_E + (1 − decay)·θ_G`` after every optimiser step. Only parameters are
averaged; buffers are deterministic and copied once. ``θ_E`` starts as an exact copy of
``θ_G`` (no warm-up, no bias correction).
"""

from __future__ import annotations

import copy
from typing import Dict

import torch
from torch import nn


class ModelEMA:
    """Holds a frozen copy of a model whose parameters track the live model.

    Args:
        model: the live (trained) model; not modified.
        decay: averaging factor in ``[0, 1)``; 0.999 in the paper recipe.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model)
        self.module.eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step from the live ``model`` (same architecture)."""
        ema_p = [p for p in self.module.parameters()]
        live_p = [p.detach() for p in model.parameters()]
        if len(ema_p) != len(live_p):
            raise ValueError("EMA and live model have different parameter lists")
        # θ_E ← θ_E + (1 − d)(θ_G − θ_E)  ==  d·θ_E + (1 − d)·θ_G
        torch._foreach_lerp_(ema_p, live_p, 1.0 - self.decay)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Full state dict of the averaged model (parameters and buffers)."""
        return self.module.state_dict()

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state, strict=True)
