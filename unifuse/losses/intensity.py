"""Intensity loss L_int = L1(F, M(A, B)) with an element-wise target rule (TITA spec §7.2).

``rule="max"``: M = max(A, B) (IVF); ``rule="mean"``: M = (A + B) / 2 (MFF and MEF in the official
code). Inputs (N, C, H, W) float; the loss is the mean absolute error over all elements (0-dim).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError

INTENSITY_RULES = ("max", "mean")


def intensity_target(a: Tensor, b: Tensor, rule: str) -> Tensor:
    """Element-wise target M(A, B) of shape (N, C, H, W) for ``rule`` in ``INTENSITY_RULES``."""
    if rule == "max":
        return torch.maximum(a, b)
    if rule == "mean":
        return (a + b) / 2
    raise ConfigError(f"unknown intensity rule {rule!r}; available: {', '.join(INTENSITY_RULES)}")


def intensity_loss(fused: Tensor, a: Tensor, b: Tensor, rule: str = "max") -> Tensor:
    """L1(F, M(A, B)) averaged over every element; 0-dim, zero iff F equals the target."""
    return F.l1_loss(fused, intensity_target(a, b, rule).to(fused.dtype))
