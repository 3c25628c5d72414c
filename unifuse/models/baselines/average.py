"""Pixel-wise average of the two sources."""

from __future__ import annotations

import torch

from .. import register_model
from .base import BaselineFusion, NoOptions, build_config


class AverageFusion(BaselineFusion):
    """``F = (A + B) / 2`` per pixel, on luma (``(N, 1, H, W)``; any C works)."""

    input_mode = "luma"

    def fuse(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 0.5 * (a + b)


@register_model("average", description="training-free baseline: pixel-wise mean of the two sources",
                family="baseline", input_mode="luma", trainable=False)
def average(**config) -> AverageFusion:
    """Pixel-wise average (no options)."""
    build_config(NoOptions, "average", config)
    return AverageFusion()

