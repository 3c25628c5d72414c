"""Stochastic depth (per-sample drop-path) and the residual addition it feeds."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero whole samples of a residual branch with probability ``p`` in training mode.

    Kept samples are rescaled by ``1 / (1 - p)``; identity in eval mode or when ``p == 0``.
    Input: any shape ``(B, ...)``.

    :meth:`factors` draws the per-sample factors on their own (the same random draw as
    :meth:`forward`), so that a block can draw them once and apply them piece by piece
    (``x + factor · branch`` with :func:`residual_add`).
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def factors(self, x: torch.Tensor) -> torch.Tensor | None:
        """Per-sample factors ``(B, 1, …, 1)`` (0 or ``1 / (1 - p)``, ``x``'s dtype) for a branch
        shaped like ``x``, or ``None`` when the module is inactive (eval mode or ``p == 0``)."""
        if self.p == 0.0 or not self.training:
            return None
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep).div_(keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.factors(x)
        return x if f is None else x * f

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"


def residual_add(x: torch.Tensor, branch: torch.Tensor, factors: torch.Tensor | None) -> torch.Tensor:
    """``x + factors · branch`` in one pass (``x + branch`` when ``factors`` is ``None``).

    ``factors``: from :meth:`DropPath.factors`, broadcastable to ``branch``."""
    return x + branch if factors is None else torch.addcmul(x, branch, factors)
