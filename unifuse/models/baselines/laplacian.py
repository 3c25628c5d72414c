"""Laplacian-pyramid fusion (Burt & Adelson 1983 / Burt & Kolczynski 1993 style)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import ConfigError
from .. import register_model
from .base import BaselineFusion, build_config
from .pyramid import collapse, laplacian_pyramid, max_levels


@dataclass(frozen=True)
class LaplacianConfig:
    """Options of :class:`LaplacianFusion`.

    Attributes:
        levels: pyramid levels (including the base); clipped for small images so that the
            coarsest level keeps a side of at least ``min_size`` pixels.
        min_size: smallest side allowed for a reduced level.
    """

    levels: int = 5
    min_size: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.levels, int) or self.levels < 1:
            raise ConfigError(f"laplacian: levels must be a positive integer, got {self.levels!r}")
        if not isinstance(self.min_size, int) or self.min_size < 1:
            raise ConfigError(f"laplacian: min_size must be a positive integer, got {self.min_size!r}")


class LaplacianFusion(BaselineFusion):
    """Fuse two images on a Laplacian pyramid.

    Detail levels take, per coefficient, the one with the larger magnitude (choose-max-abs;
    A on ties); the base (coarsest Gaussian) level is the average. Works on luma
    ``(N, 1, H, W)`` (any C, each channel independently), any size down to 1x1.
    """

    input_mode = "luma"

    def __init__(self, config: LaplacianConfig | None = None):
        super().__init__()
        self.config = config or LaplacianConfig()

    def levels_for(self, height: int, width: int) -> int:
        """Levels actually used for an image of this size."""
        return min(self.config.levels, max_levels(height, width, self.config.min_size))

    def fuse(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        levels = self.levels_for(a.shape[-2], a.shape[-1])
        # one pyramid for both sources: stack them along the batch dimension
        pyr = laplacian_pyramid(torch.cat([a, b], dim=0), levels)
        n = a.shape[0]
        fused = []
        for lvl in pyr[:-1]:
            la, lb = lvl[:n], lvl[n:]
            fused.append(torch.where(la.abs() >= lb.abs(), la, lb))
        fused.append(0.5 * (pyr[-1][:n] + pyr[-1][n:]))
        return collapse(fused)

    def _fuse_frames(self, frames) -> torch.Tensor:
        """K frames: detail coefficients of the largest magnitude (the earliest frame on ties),
        base = mean of the K coarsest levels; one frame's pyramid is alive at a time."""
        first = frames[0].float()
        levels = self.levels_for(first.shape[-2], first.shape[-1])
        fused = laplacian_pyramid(first, levels)
        del first
        for k in range(1, len(frames)):
            pyr = laplacian_pyramid(frames[k].float(), levels)
            for cur, new in zip(fused[:-1], pyr[:-1]):
                torch.where(new.abs() > cur.abs(), new, cur, out=cur)
            fused[-1] += pyr[-1]
            del pyr
        fused[-1] /= len(frames)
        return collapse(fused)

    def extra_repr(self) -> str:
        return f"levels={self.config.levels}, min_size={self.config.min_size}"


@register_model("laplacian", description="training-free baseline: Laplacian-pyramid fusion (max-abs details, averaged base)",
                family="baseline", input_mode="luma", trainable=False)
def laplacian(**config) -> LaplacianFusion:
    """Laplacian-pyramid fusion; options: ``levels`` (5), ``min_size`` (4)."""
    return LaplacianFusion(build_config(LaplacianConfig, "laplacian", config))
