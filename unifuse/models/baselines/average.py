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

    def _fuse_frames(self, frames) -> torch.Tensor:
        """Mean of K frames, accumulated one frame at a time."""
        acc = frames[0].float().clone()
        for k in range(1, len(frames)):
            acc += frames[k].float()
        return acc / len(frames)


@register_model("average", description="training-free baseline: pixel-wise mean of the two sources",
                family="baseline", input_mode="luma", trainable=False)
def average(**config) -> AverageFusion:
    """Pixel-wise average (no options)."""
    build_config(NoOptions, "average", config)
    return AverageFusion()

