"""Sobel gradient magnitude S(I) = |Gx * I| + |Gy * I| (TITA spec §7.1).

An L1 sum of the two directional responses (not the Euclidean norm), computed per channel with a
3×3 cross-correlation and **zero padding 1**. Input (N, C, H, W) float, output same shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Horizontal Sobel kernel (cross-correlation, as ``F.conv2d`` applies it).
SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
#: Vertical Sobel kernel.
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


def sobel_xy(x: Tensor) -> tuple[Tensor, Tensor]:
    """Directional Sobel responses (Gx * x, Gy * x) of an (N, C, H, W) tensor, zero-padded; each (N, C, H, W)."""
    c = x.shape[1]
    k = torch.tensor((SOBEL_X, SOBEL_Y), dtype=x.dtype, device=x.device).unsqueeze(1)  # (2,1,3,3)
    out = F.conv2d(x.reshape(-1, 1, *x.shape[-2:]), k, padding=1)  # (N*C, 2, H, W)
    out = out.reshape(x.shape[0], c, 2, *x.shape[-2:])
    return out[:, :, 0], out[:, :, 1]


def sobel_magnitude(x: Tensor) -> Tensor:
    """S(x) = |Gx * x| + |Gy * x|; (N, C, H, W) -> (N, C, H, W), non-negative."""
    gx, gy = sobel_xy(x)
    return gx.abs() + gy.abs()


def gradient_loss(fused: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """L_grad = L1(S(F), max(S(A), S(B))), mean absolute error over all elements; 0-dim."""
    target = torch.maximum(sobel_magnitude(a), sobel_magnitude(b))
    return F.l1_loss(sobel_magnitude(fused), target.to(fused.dtype))


#: TC-MoA's signed gradient kernels (cross-correlation; ``tcmoa.md`` §5.1).
SIGNED_KX = ((-0.2, 0.0, 0.2), (-1.0, 0.0, 1.0), (-0.2, 0.0, 0.2))
SIGNED_KY = ((0.2, 1.0, 0.2), (0.0, 0.0, 0.0), (-0.2, -1.0, -0.2))


def signed_kernels(channels: int = 3, *, dtype=torch.float32, device=None) -> tuple[Tensor, Tensor]:
    """TC-MoA's (Kx, Ky) repeated over ``channels`` input channels; each (1, channels, 3, 3)."""
    kx = torch.tensor(SIGNED_KX, dtype=dtype, device=device).expand(1, channels, 3, 3)
    ky = torch.tensor(SIGNED_KY, dtype=dtype, device=device).expand(1, channels, 3, 3)
    return kx, ky


def signed_gradient(x: Tensor, kernels: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """TC-MoA's signed gradient G(x) = Kx⋆x + Ky⋆x, summed over channels; (N, C, H, W) -> (N, 1, H, W).

    Each kernel is applied to every channel with zero padding 1 and the responses of all channels
    and both directions are added (one signed map; the sign is kept). ``kernels`` replaces
    (Kx, Ky) by two (1, C, 3, 3) tensors (default :func:`signed_kernels`).
    """
    kx, ky = kernels if kernels is not None else signed_kernels(x.shape[1], dtype=x.dtype, device=x.device)
    return F.conv2d(x, kx.to(x.dtype), padding=1) + F.conv2d(x, ky.to(x.dtype), padding=1)
