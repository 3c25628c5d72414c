"""Pixel-wise maximum of the two sources."""

from __future__ import annotations

import torch

from .. import register_model
from .base import BaselineFusion, NoOptions, build_config


class MaxFusion(BaselineFusion):
    """``F = max(A, B)`` per pixel, on luma (``(N, 1, H, W)``; any C works)."""

    input_mode = "luma"

    def fuse(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(a, b)

    def _fuse_frames(self, frames) -> torch.Tensor:
        """Maximum of K frames, accumulated one frame at a time."""
        acc = frames[0].float().clone()
        for k in range(1, len(frames)):
            torch.maximum(acc, frames[k].float(), out=acc)
        return acc


@register_model("max", description="training-free baseline: pixel-wise maximum of the two sources",
                family="baseline", input_mode="luma", trainable=False)
def max_fusion(**config) -> MaxFusion:
    """Pixel-wise maximum (no options)."""
    build_config(NoOptions, "max", config)
    return MaxFusion()
