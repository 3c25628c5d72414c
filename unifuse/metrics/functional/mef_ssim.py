"""MEF-SSIM (Ma, Zeng and Wang 2015), the multi-scale version MEFB reports as ``MEF_SSIM``.

Core: ``mef_ssim(a, b, f)`` with float64 ``(N, H, W)`` **gray** images holding 0..255 values
(MEFB converts A, B and F with MATLAB's uint8 ``rgb2gray`` first; the framework does that),
returns ``(N,)`` in [0, 1], higher is better. Behaviour (``shared/spec/metrics.md`` 2.3):

* 3 levels with weights ``[0.0448, 0.2856, 0.3001] / sum``; between levels every image is
  filtered with ``imfilter(ones(2)/4, 'symmetric')`` and decimated ``(1:2:end, 1:2:end)``;
  the score is ``prod(Q_l ^ w_l)``.
* At one level, for every 11x11 ``'valid'`` position and exposure k: box mean ``mu_k``,
  ``ed_k = sqrt(max(121 sigma_k^2, 0)) + 0.001``; consistency
  ``R = (||sum_k x_k - mean|| + eps) / (sum_k ||x_k - mu_k|| + eps)`` clamped into (0, 1);
  ``p = min(tan(pi R / 2), 10)``; weights ``w_k ~ (ed_k / 11)^p + eps``; desired patch
  ``r = sum_k w_k (x_k - mu_k) / ed_k`` rescaled to norm ``max_k ed_k``;
  ``q = (2 s_rf + C) / (s_r^2 + s_f^2 + C)`` with Gaussian (11x11, sigma 1.5) weighted
  moments and ``C = (0.03 * 255)^2``; ``Q_l = mean(q)``.

The reference loops over every patch. Here every per-patch quantity is expanded into
windowed moments of the inputs (the patch ``r`` is linear in the exposures, so its norm and
its Gaussian moments follow from box/Gaussian covariances), which vectorises the whole
computation. The norms of exactly flat patches are set to exactly 0 (the reference gets
them exactly, or nearly, 0 too).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .matlab import EPS, imfilter, separable_filter2
from .structural import flat_window_mask, gaussian_1d

Tensor = torch.Tensor

__all__ = ["mef_ssim", "mef_ssim_level", "MEF_SSIM_WEIGHTS"]

MEF_SSIM_WEIGHTS = tuple(w / (0.0448 + 0.2856 + 0.3001) for w in (0.0448, 0.2856, 0.3001))


def _cov(e_xy: Tensor, mx: Tensor, my: Tensor) -> Tensor:
    return e_xy - mx * my


def mef_ssim_level(x1: Tensor, x2: Tensor, f: Tensor, k: float = 0.03, win: int = 11, sigma: float = 1.5) -> Tensor:
    """Ma's single-scale ``mef_ssim`` for two exposures: ``(N, H, W)`` each -> ``(N,)``."""
    n = x1.shape[0]
    # centring by a global constant changes nothing mathematically and improves rounding
    shift = torch.cat([x1, x2, f]).mean(dim=(-2, -1), keepdim=True).split(n)
    x1, x2, f = x1 - shift[0].round(), x2 - shift[1].round(), f - shift[2].round()
    box = torch.full((win,), 1.0 / win, dtype=x1.dtype, device=x1.device)
    gau = gaussian_1d(win, sigma, device=x1.device)
    npx = float(win * win)

    # ---- box statistics: ed_k, R, norm of the desired patch
    bstack = torch.cat([x1, x2, x1 * x1, x2 * x2, x1 * x2])
    bm = separable_filter2(bstack, box, box, shape="valid")
    m1, m2, e11, e22, e12 = bm.split(n)
    v1 = e11 - m1 * m1
    v2 = e22 - m2 * m2
    c12 = e12 - m1 * m2
    flat1 = flat_window_mask(x1, win)
    flat2 = flat_window_mask(x2, win)
    zero = torch.zeros((), dtype=x1.dtype, device=x1.device)
    v1 = torch.where(flat1, zero, v1.clamp_min(0))
    v2 = torch.where(flat2, zero, v2.clamp_min(0))
    c12 = torch.where(flat1 | flat2, zero, c12)
    ed1 = torch.sqrt(npx * v1) + 0.001
    ed2 = torch.sqrt(npx * v2) + 0.001
    # ||x_k - mu_k|| and ||sum_k x_k - mean||
    den = torch.sqrt(npx * v1) + torch.sqrt(npx * v2)
    num = torch.sqrt((npx * (v1 + v2 + 2.0 * c12)).clamp_min(0))
    r = (num + EPS) / (den + EPS)
    r = torch.where(r > 1, torch.full_like(r, 1 - EPS), r)
    r = torch.where(r < 0, torch.full_like(r, EPS), r)
    p = torch.tan(math.pi / 2 * r)
    p = torch.where(p > 10, torch.full_like(p, 10.0), p)
    w1 = (ed1 / win) ** p + EPS
    w2 = (ed2 / win) ** p + EPS
    wsum = w1 + w2
    w1, w2 = w1 / wsum, w2 / wsum
    max_ed = torch.maximum(ed1, ed2)
    # desired patch r = a1 (x1 - mu1) + a2 (x2 - mu2), a_k = w_k / ed_k
    a1, a2 = w1 / ed1, w2 / ed2
    norm_sq = npx * (a1 * a1 * v1 + a2 * a2 * v2 + 2.0 * a1 * a2 * c12)
    norm = torch.sqrt(norm_sq.clamp_min(0))
    scale = torch.where(norm > 0, max_ed / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.ones_like(norm))

    # ---- Gaussian-weighted moments of r and f
    gstack = torch.cat([x1, x2, f, x1 * x1, x2 * x2, x1 * x2, f * f, x1 * f, x2 * f])
    gm = separable_filter2(gstack, gau, gau, shape="valid")
    g1, g2, gf, g11, g22, g12, gff, g1f, g2f = gm.split(n)
    s11 = _cov(g11, g1, g1)
    s22 = _cov(g22, g2, g2)
    s12 = _cov(g12, g1, g2)
    s1f = _cov(g1f, g1, gf)
    s2f = _cov(g2f, g2, gf)
    sff = _cov(gff, gf, gf)
    s11 = torch.where(flat1, zero, s11)
    s22 = torch.where(flat2, zero, s22)
    s12 = torch.where(flat1 | flat2, zero, s12)
    s1f = torch.where(flat1, zero, s1f)
    s2f = torch.where(flat2, zero, s2f)
    sff = torch.where(flat_window_mask(f, win), zero, sff)
    sig_r = scale * scale * (a1 * a1 * s11 + a2 * a2 * s22 + 2.0 * a1 * a2 * s12)
    sig_rf = scale * (a1 * s1f + a2 * s2f)
    c = (k * 255.0) ** 2
    q = (2.0 * sig_rf + c) / (sig_r + sff + c)
    return q.mean(dim=(-2, -1))


def _downsample(x: Tensor) -> Tensor:
    """``imfilter(x, ones(2)/4, 'symmetric', 'same')`` then ``x(1:2:end, 1:2:end)``."""
    y = imfilter(x, torch.full((2, 2), 0.25, dtype=x.dtype, device=x.device), padding="symmetric")
    return y[..., ::2, ::2]


def mef_ssim(
    a: Tensor, b: Tensor, f: Tensor, k: float = 0.03, weights: Sequence[float] = MEF_SSIM_WEIGHTS
) -> Tensor:
    """MEFB ``MEF_SSIM`` core (``mef_ms_ssim`` with its defaults).

    ``a, b``: the two exposures, ``f``: the fused image, all ``(N, H, W)`` float64 gray
    0..255. Returns ``(N,)``. The smallest side must be at least ``11 * 2^(levels-1)``
    (44 px for the default 3 levels), as in the reference (which returns -Inf otherwise:
    here a ``ValueError``).
    """
    if not (a.shape == b.shape == f.shape) or a.ndim != 3:
        raise ValueError(f"expected three (N, H, W) tensors of equal shape, got {a.shape}, {b.shape}, {f.shape}")
    levels = len(weights)
    if min(a.shape[-2:]) / 2 ** (levels - 1) < 11:
        raise ValueError(f"MEF-SSIM needs images of at least {11 * 2 ** (levels - 1)} px per side, got {tuple(a.shape[-2:])}")
    n = a.shape[0]
    x = torch.cat([a, b, f]).double()
    out = torch.ones(n, dtype=torch.float64, device=a.device)
    for lvl, w in enumerate(weights):
        if lvl > 0:
            x = _downsample(x)
        xa, xb, xf = x.split(n)
        out = out * mef_ssim_level(xa, xb, xf, k=k) ** w
    return out

