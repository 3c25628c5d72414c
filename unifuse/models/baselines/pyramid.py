"""Gaussian and Laplacian pyramids (Burt & Adelson 1983) on ``(N, C, H, W)`` tensors.

* ``reduce``: blur with the separable 5-tap binomial kernel ``[1, 4, 6, 4, 1] / 16``
  (reflect padding), then keep every second row and column: ``(H, W)`` -> ``(ceil(H/2), ceil(W/2))``.
* ``expand``: put the samples on the even rows/columns of a zero ``(H, W)`` grid and blur with
  the same kernel times 2 per axis (so the zero-inserted signal keeps its brightness).
* Laplacian level ``l`` is ``G_l - expand(G_{l+1})``; the last level is the coarsest
  Gaussian level, so :func:`collapse` reconstructs the input exactly (up to float rounding)
  whatever the filters.

Depth adapts to the image: a level is only reduced while its shorter side is at least
``2 * min_size``, so tiny images (down to 1x1) simply get fewer levels (a 1-level pyramid
is the image itself). Levels of 1 or 2 pixels use replicate padding, with ``expand``
normalised by the blurred sampling mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["max_levels", "reduce", "expand", "gaussian_pyramid", "laplacian_pyramid", "collapse", "blur"]

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def max_levels(height: int, width: int, min_size: int = 4) -> int:
    """Number of pyramid levels such that every reduced level has a side of at least ``min_size``."""
    levels, h, w = 1, int(height), int(width)
    while min(h, w) >= 2 * min_size:
        h, w = (h + 1) // 2, (w + 1) // 2
        levels += 1
    return levels


def _pad_mode(h: int, w: int) -> str:
    return "reflect" if min(h, w) > 2 else "replicate"


#: planes with at least this many pixels are blurred one at a time (same result, bounded temporaries)
PLANE_BY_PLANE_PIXELS = 1 << 19


def _blur_planes(y: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
    y = F.pad(y, (2, 2, 2, 2), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 5, 1))
    return F.conv2d(y, k.view(1, 1, 1, 5))


def blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Separable binomial blur of ``(N, C, H, W)``, reflect padding (replicate below 3 px); ``gain`` per axis.

    Planes of :data:`PLANE_BY_PLANE_PIXELS` or more are blurred one at a time: a convolution's
    temporaries (padding, im2col buffers) then scale with one plane, not with N x C of them
    (bit-identical results; this bounds the memory of fusing large stacks).
    """
    n, c, h, w = x.shape
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) * (gain / 16.0)
    y = x.reshape(n * c, 1, h, w)
    mode = _pad_mode(h, w)
    if n * c == 1 or h * w < PLANE_BY_PLANE_PIXELS:
        return _blur_planes(y, k, mode).reshape(n, c, h, w)
    out = torch.empty_like(y)
    for i in range(n * c):
        out[i : i + 1] = _blur_planes(y[i : i + 1], k, mode)
    return out.reshape(n, c, h, w)


def reduce(x: torch.Tensor) -> torch.Tensor:
    """Blur and subsample by 2: ``(N, C, H, W)`` -> ``(N, C, ceil(H/2), ceil(W/2))``."""
    return blur(x)[..., ::2, ::2]


def expand(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample by 2 to ``size`` (H, W) (each at most ``2 * x``'s): zero insertion + blur x 4."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[..., ::2, ::2] = x
    up = up[..., : size[0], : size[1]]
    if min(size) > 2:  # reflect padding keeps the zero pattern: the gain of 2 per axis is exact
        return blur(up, gain=2.0)
    # tiny levels use replicate padding: normalise by the blurred sampling mask instead
    mask = x.new_zeros(1, 1, 2 * h, 2 * w)
    mask[..., ::2, ::2] = 1.0
    return blur(up) / blur(mask[..., : size[0], : size[1]])


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``levels`` Gaussian levels, finest first (``levels`` is not clipped here)."""
    pyr = [x]
    for _ in range(levels - 1):
        pyr.append(reduce(pyr[-1]))
    return pyr


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``levels`` Laplacian levels, finest first; the last one is the coarsest Gaussian level."""
    gauss = gaussian_pyramid(x, levels)
    lap = [g - expand(g_next, g.shape[-2:]) for g, g_next in zip(gauss[:-1], gauss[1:])]
    return lap + [gauss[-1]]


def collapse(pyr: list[torch.Tensor]) -> torch.Tensor:
    """Invert :func:`laplacian_pyramid`."""
    out = pyr[-1]
    for lap in reversed(pyr[:-1]):
        out = lap + expand(out, lap.shape[-2:])
    return out
