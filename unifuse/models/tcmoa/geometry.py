"""Input geometry for any image size (spec §2.5): the network takes sides that are multiples of ``unit``.

* ``official``: both sides > 4·unit (448 px for the released models): 4·unit tiles without
  resizing, starting at 0, 4·unit, …, the last one aligned to the border; pasted in raster
  order (later tiles overwrite overlaps). Otherwise: bilinear resize (antialiased, as PIL)
  to the next multiples of ``unit``, fuse, resize the result back.
* ``pad``: reflect-pad to multiples of ``unit``, fuse, crop.
* ``tile``: reflect-pad, then overlapping tiles of ≤ 4·unit with Hann-window blending.

All functions take ImageNet-normalised sources ``(B, 3, H, W)`` and a ``fuse`` callable that
maps a pair of allowed size to the fused image in ``[0, 1]``; they return ``(B, 3, H, W)``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..tita.network import pad_to_multiple

FuseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)


def tile_starts(n: int, tile: int, step: int) -> list[int]:
    """Tile starts covering ``[0, n)``: ``0, step, 2·step, …`` with the last at ``n - tile``."""
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def official(fuse: FuseFn, x: torch.Tensor, y: torch.Tensor, unit: int) -> torch.Tensor:
    H, W = x.shape[-2:]
    tile = 4 * unit
    if H > tile and W > tile:
        out = x.new_zeros(x.shape[0], 3, H, W)
        for r in tile_starts(H, tile, tile):
            for c in tile_starts(W, tile, tile):
                sl = (..., slice(r, r + tile), slice(c, c + tile))
                out[sl] = fuse(x[sl], y[sl])
        return out
    size = (-(-H // unit) * unit, -(-W // unit) * unit)
    fused = fuse(_resize(x, size), _resize(y, size))
    return _resize(fused, (H, W)).clamp(0, 1)


def pad(fuse: FuseFn, x: torch.Tensor, y: torch.Tensor, unit: int) -> torch.Tensor:
    H, W = x.shape[-2:]
    return fuse(pad_to_multiple(x, unit), pad_to_multiple(y, unit))[..., :H, :W]


def hann_tiles(fuse: FuseFn, x: torch.Tensor, y: torch.Tensor, unit: int, overlap: int) -> torch.Tensor:
    H, W = x.shape[-2:]
    xp, yp = pad_to_multiple(x, unit), pad_to_multiple(y, unit)
    Hp, Wp = xp.shape[-2:]
    th, tw = min(4 * unit, Hp), min(4 * unit, Wp)
    ov = -(-overlap // unit) * unit
    win = lambda n: torch.hann_window(n + 2, periodic=False, dtype=x.dtype, device=x.device)[1:-1]  # noqa: E731  (> 0)
    w2 = win(th)[:, None] * win(tw)[None, :]
    out = torch.zeros(x.shape[0], 3, Hp, Wp, dtype=x.dtype, device=x.device)
    acc = torch.zeros(1, 1, Hp, Wp, dtype=x.dtype, device=x.device)
    for r in tile_starts(Hp, th, max(th - ov, unit)):
        for c in tile_starts(Wp, tw, max(tw - ov, unit)):
            sl = (..., slice(r, r + th), slice(c, c + tw))
            out[sl] += fuse(xp[sl], yp[sl]) * w2
            acc[sl] += w2
    return (out / acc)[..., :H, :W]


def run_with_geometry(fuse: FuseFn, x: torch.Tensor, y: torch.Tensor, unit: int, mode: str = "official",
                      overlap: int = 112) -> torch.Tensor:
    """Fuse normalised ``x, y`` ``(B, 3, H, W)`` of any size with the ``mode`` policy."""
    H, W = x.shape[-2:]
    if mode == "official":
        return official(fuse, x, y, unit)
    if H % unit == 0 and W % unit == 0 and (mode == "pad" or (H <= 4 * unit and W <= 4 * unit)):
        return fuse(x, y)
    if mode == "pad":
        return pad(fuse, x, y, unit)
    return hann_tiles(fuse, x, y, unit, overlap)
