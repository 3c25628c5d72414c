"""Differentiable single-scale colour MEF-SSIM, the form TC-MoA trains with (``tcmoa.md`` §5.1).

This is **not** the MEFB metric (:mod:`unifuse.metrics.functional.mef_ssim`: gray 0..255
images, 3 scales, box-filter patch consistency weights, 'valid' windows). The training loss is
the simpler PyTorch form of Ma et al. (2015) the official TC-MoA code uses:

* window: 11×11 Gaussian with σ = 11/6, applied to all C channels at once and divided by C
  (Gaussian filtering followed by a channel average), zero padding 5 (same-size maps);
* structure: per pixel the source with the largest local variance σ_k² is selected and
  ``cs = (2σ_Xk + C2)/(σ_X² + σ_k² + C2)`` is taken at that source;
* luminance (``is_lum``): ``L_k = exp(−(mean(μ_k) − ½)²/d_g)·exp(−(μ_k − ½)²/d_l)``,
  ``μ_Y = Σ L_k μ_k / Σ L_k``, ``l = (2μ_Xμ_Y + C1)/(μ_X² + μ_Y² + C1)``;
* score = ``mean(l)·mean(cs)`` (a product of two means); C1 = 0.01², C2 = 0.03²,
  d_g = d_l = 2·0.2².

A batch of N samples is scored as ONE tall image: every tensor is stacked vertically into
(C, N·H, W) first, as the official loss does (so windows straddle the sample seams).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputMismatchError
from .ssim import gaussian_window


def _stack_vertically(t: Tensor) -> Tensor:
    """(N, C, H, W) -> (1, C, N·H, W): samples one above the other."""
    n, c, h, w = t.shape
    return t.permute(1, 0, 2, 3).reshape(1, c, n * h, w)


def mef_ssim_color(
    fused: Tensor,
    sources: Tensor,
    *,
    window_size: int = 11,
    is_lum: bool = True,
    sigma_g: float = 0.2,
    sigma_l: float = 0.2,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Single-scale MEF-SSIM of ``fused`` against K exposures.

    Args:
        fused: (N, C, H, W) fused image in [0, 1].
        sources: (K, N, C, H, W) exposures in [0, 1] (K >= 2).
    Returns:
        0-dim score, 1 when ``fused`` equals every source (up to float error); differentiable
        w.r.t. ``fused``.
    """
    if sources.dim() != 5 or sources.shape[1:] != fused.shape or fused.dim() != 4:
        raise InputMismatchError(
            f"mef_ssim_color: expected fused (N,C,H,W) and sources (K,N,C,H,W) of the same image shape, "
            f"got {tuple(fused.shape)} and {tuple(sources.shape)}"
        )
    c = fused.shape[1]
    x = _stack_vertically(fused)  # (1, C, NH, W)
    ys = torch.cat([_stack_vertically(s) for s in sources])  # (K, C, NH, W)
    win = gaussian_window(window_size, window_size / 6.0, dtype=x.dtype, device=x.device) / c
    win = win.expand(1, c, window_size, window_size)
    pad = window_size // 2

    def filt(t: Tensor) -> Tensor:  # (M, C, h, w) -> (M, h, w): Gaussian filter, channel average
        return F.conv2d(t, win, padding=pad)[:, 0]

    mu_y = filt(ys)  # (K, h, w)
    sig_y = filt(ys * ys) - mu_y * mu_y
    _, sel = torch.max(sig_y, dim=0)  # source with the largest local variance
    mu_x = filt(x)[0]
    sig_x = filt(x * x)[0] - mu_x * mu_x
    sig_xy = filt(x * ys) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    cs_seq = (2 * sig_xy + c2) / (sig_x + sig_y + c2)
    cs = torch.gather(cs_seq.flatten(1), 0, sel.reshape(1, -1))
    if not is_lum:
        return cs.mean()
    l_global = torch.exp(-((mu_y.flatten(1).mean(1) - 0.5) ** 2) / (2 * sigma_g**2))  # (K,)
    l_local = torch.exp(-((mu_y - 0.5) ** 2) / (2 * sigma_l**2))
    lw = l_global[:, None, None] * l_local
    mu_target = (lw * mu_y).sum(0) / lw.sum(0)
    lum = (2 * mu_x * mu_target + c1) / (mu_x * mu_x + mu_target * mu_target + c1)
    return lum.mean() * cs.mean()


__all__ = ["mef_ssim_color"]
