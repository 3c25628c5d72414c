"""MAE's fixed 2-D sin-cos position table and its per-forward bilinear resize (spec §2.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """``(M,)`` positions -> ``(M, dim)``: sin then cos of ``pos·ω_i``, ``ω_i = 10000^(-i/(dim/2))``.

    Computed in float64 like MAE's numpy code, returned as float32.
    """
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    out = pos.double().reshape(-1)[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_2d_table(dim: int, grid: int, cls_token: bool = True) -> torch.Tensor:
    """MAE's ``get_2d_sincos_pos_embed``: ``(1 + grid², dim)`` (row 0 = zeros for the cls token).

    Rows are row-major over a ``grid × grid`` map; the first ``dim/2`` channels encode the
    column (w) coordinate, the last ``dim/2`` the row (h) coordinate.
    """
    if dim % 4:
        raise ValueError(f"sin-cos table needs dim divisible by 4, got {dim}")
    h, w = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    emb = torch.cat([sincos_1d(dim // 2, w), sincos_1d(dim // 2, h)], dim=1)
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()


def resized_pos_embed(table: torch.Tensor, grid: int, size: tuple[int, int], transpose: bool = False) -> torch.Tensor:
    """Stored table ``(1, 1 + grid², C)`` -> ``(1, pH·pW, C)`` for a ``pH × pW`` token grid.

    The ``grid × grid`` map (cls row dropped) is bilinearly resized (``align_corners=False``)
    to ``(pH, pW)`` and flattened row-major. ``transpose=True`` reproduces the official code,
    which resizes to ``(pW, pH)`` and flattens that map as if it were ``pH × pW``
    (identical on square grids).
    """
    pH, pW = size
    C = table.shape[-1]
    img = table[:, 1:, :].reshape(1, grid, grid, C).permute(0, 3, 1, 2)
    out = F.interpolate(img, size=(pW, pH) if transpose else (pH, pW), mode="bilinear")
    return out.reshape(1, C, pH * pW).transpose(1, 2)
