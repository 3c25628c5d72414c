"""SSIM as a differentiable building block (TITA spec §7.1).

The official training loss uses the classic ``pytorch-ssim`` formulation:

* Gaussian window of 11×11 taps, σ = 1.5, built as the outer product of a normalised 1-D kernel;
* depth-wise 2-D convolution with **zero padding** of ``window_size // 2`` (the border is kept);
* C1 = (0.01·L)², C2 = (0.03·L)² with data range L = 1;
* the SSIM map is averaged over batch, channels and pixels together (one scalar per batch).

Inputs are float tensors of shape (N, C, H, W), nominally in [0, 1]; nothing is clamped, so the
raw network output can be passed directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputMismatchError


@dataclass(frozen=True)
class SSIMConfig:
    """Parameters of :func:`ssim`; the defaults are those of the official loss."""

    window_size: int = 11
    sigma: float = 1.5
    data_range: float = 1.0
    k1: float = 0.01
    k2: float = 0.03


def gaussian_kernel1d(window_size: int, sigma: float, *, dtype=torch.float32, device=None) -> Tensor:
    """Normalised 1-D Gaussian of ``window_size`` taps centred on the middle tap; shape (window_size,)."""
    x = torch.arange(window_size, dtype=torch.float64, device=device) - window_size // 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype)


def gaussian_window(window_size: int = 11, sigma: float = 1.5, *, dtype=torch.float32, device=None) -> Tensor:
    """2-D window (outer product of :func:`gaussian_kernel1d`); shape (window_size, window_size), sums to 1."""
    g = gaussian_kernel1d(window_size, sigma, dtype=torch.float64, device=device)
    return torch.outer(g, g).to(dtype)


def ssim_map(x: Tensor, y: Tensor, cfg: SSIMConfig = SSIMConfig()) -> Tensor:
    """Per-pixel SSIM map of two (N, C, H, W) tensors; returns (N, C, H, W).

    Local statistics use a depth-wise Gaussian convolution with zero padding, so the map has the
    input's size and border pixels see zeros outside the image (as in the official loss).
    """
    if x.shape != y.shape or x.dim() != 4:
        raise InputMismatchError(f"ssim: expected two (N,C,H,W) tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    c = x.shape[1]
    win = gaussian_window(cfg.window_size, cfg.sigma, dtype=dtype, device=x.device)
    win = win.expand(c, 1, cfg.window_size, cfg.window_size).contiguous()
    pad = cfg.window_size // 2
    # One grouped conv over the five statistics' inputs: [x, y, x², y², xy] stacked on channels.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    stats = F.conv2d(stack, win.repeat(5, 1, 1, 1), padding=pad, groups=5 * c)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(c, dim=1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    sigma_x = e_xx - mu_xx
    sigma_y = e_yy - mu_yy
    sigma_xy = e_xy - mu_xy
    c1 = (cfg.k1 * cfg.data_range) ** 2
    c2 = (cfg.k2 * cfg.data_range) ** 2
    return ((2 * mu_xy + c1) * (2 * sigma_xy + c2)) / ((mu_xx + mu_yy + c1) * (sigma_x + sigma_y + c2))


def ssim(x: Tensor, y: Tensor, cfg: SSIMConfig = SSIMConfig(), reduction: str = "mean") -> Tensor:
    """SSIM of two (N, C, H, W) tensors.

    ``reduction="mean"`` (official): 0-dim mean over batch, channels and pixels.
    ``reduction="none"``: per-sample means, shape (N,).
    SSIM(x, x) = 1 exactly for any x (C1, C2 > 0).
    """
    m = ssim_map(x, y, cfg)
    if reduction == "mean":
        return m.mean()
    if reduction == "none":
        return m.flatten(1).mean(1)
    raise ValueError(f"ssim: unknown reduction {reduction!r}")
