"""Human-perception fusion metrics: Chen-Blum ``Qcb`` and Chen-Varshney ``Qcv``.

Cores take float64 ``(N, H, W)`` tensors with 0..255 values in the MATLAB call order
(source 1, source 2, fused) and return ``(N,)``. Both first apply ``normalize1`` (per-image
min-max stretch to ``round(255 * (x - min) / (max - min))``) and filter with a contrast
sensitivity function (CSF) in the frequency domain, ``ifft2(ifftshift(fftshift(fft2(I)) .* S))``
with ``S`` built on MATLAB's ``freqspace`` grid. The CSFs are radially symmetric, so the
result is real: it is computed with ``rfft2``/``irfft2`` (same values up to rounding).
Details: ``shared/spec/metrics.md`` 2.4.
"""

from __future__ import annotations

import math
from functools import lru_cache

import scipy.fft
import torch

from ...backend import cpu_tuned
from .elementwise import sqrt
from .matlab import blocks, filter2, freqspace, normalize1, pad, separable_valid
from .shared import map_unique

Tensor = torch.Tensor

__all__ = ["csf_filter", "chen_blum_csf", "mannos_sakrison_csf", "qcb", "qcv", "QCB_CONVENTIONS"]


def _check(a: Tensor, b: Tensor, f: Tensor):
    if not (a.shape == b.shape == f.shape) or a.ndim != 3:
        raise ValueError(f"expected three (N, H, W) tensors of equal shape, got {a.shape}, {b.shape}, {f.shape}")
    return a.double(), b.double(), f.double()


# --------------------------------------------------------------------------- CSF filtering
@lru_cache(maxsize=16)
def _radius(M: int, N: int, div: float, device: str) -> Tensor:
    """``r = sqrt(u^2 + v^2)`` with ``u = N/div * f1``, ``v = M/div * f2`` (freqspace grid,
    centred layout)."""
    f1, f2 = freqspace(M, N, device=torch.device(device))
    u = (N / div) * f1
    v = (M / div) * f2
    return torch.sqrt(u * u + v * v)


def chen_blum_csf(M: int, N: int, device="cpu") -> Tensor:
    """Chen-Blum DoG CSF on the centred ``(M, N)`` grid (``u *= N/30``, ``v *= M/30``):
    ``exp(-(r/15.3870)^2) - 0.7622 exp(-(r/1.3456)^2)``."""
    r = _radius(M, N, 30.0, str(device))
    return torch.exp(-((r / 15.3870) ** 2)) - 0.7622 * torch.exp(-((r / 1.3456) ** 2))


def mannos_sakrison_csf(M: int, N: int, device="cpu") -> Tensor:
    """Mannos-Sakrison CSF on the centred ``(M, N)`` grid (``u *= N/8``, ``v *= M/8``):
    ``2.6 (0.0192 + 0.144 r) exp(-(0.144 r)^1.1)``."""
    r = _radius(M, N, 8.0, str(device))
    return 2.6 * (0.0192 + 0.144 * r) * torch.exp(-((0.144 * r) ** 1.1))


def csf_filter(x: Tensor, s_centred: Tensor) -> Tensor:
    """``real(ifft2(ifftshift(fftshift(fft2(x)) .* S)))`` for ``(N, H, W)`` ``x`` and a
    centred ``(H, W)`` filter ``S`` that is symmetric under frequency negation (true for
    the radially symmetric CSFs). Computed as ``irfft2(rfft2(x) * ifftshift(S)[:, :W//2+1])``."""
    H, W = x.shape[-2:]
    s = torch.fft.ifftshift(s_centred, dim=(-2, -1))[..., : W // 2 + 1]
    if cpu_tuned(x) and not x.requires_grad:
        # scipy's pocketfft: ~1.6x torch's CPU transforms for these sizes (float64)
        xf = scipy.fft.rfft2(x.numpy())
        xf *= s.numpy()
        return torch.from_numpy(scipy.fft.irfft2(xf, s=(H, W), overwrite_x=True))
    return torch.fft.irfft2(torch.fft.rfft2(x) * s, s=(H, W))


# --------------------------------------------------------------------------- Qcb
def _gaussian2d_factor(sigma: float, device) -> Tensor:
    """1-D factor of Chen-Blum's ``gaussian2d``: the 31x31 kernel
    ``exp(-(x^2+y^2)/(2 sigma^2)) / (2 pi sigma^2)`` on ``-15..15`` (not renormalised)
    equals ``outer(g, g)`` with ``g = exp(-x^2/(2 sigma^2)) / sqrt(2 pi sigma^2)``."""
    x = torch.arange(-15, 16, dtype=torch.float64, device=device)
    return torch.exp(-(x * x) / (2.0 * sigma * sigma)) / math.sqrt(2.0 * math.pi * sigma * sigma)


QCB_CONVENTIONS = ("vifb", "mefb")


def qcb(a: Tensor, b: Tensor, f: Tensor, convention: str = "vifb") -> Tensor:
    """VIFB/MEFB ``Qcb`` core (Chen-Blum), higher is better, typically in [0, 1].

    ``convention``: ``'vifb'`` (VIFB's ``metricsQcb``) or ``'mefb'``: MEFB's copy first calls
    ``im2double`` on the uint8 images, so ``normalize1`` sees ``x / 255`` and rounds exact
    ``.5`` ties differently (values differ by up to ~1e-3 relative; otherwise identical).

    ``normalize1`` -> Chen-Blum CSF -> local contrast ``C = G1*I / G2*I - 1`` (31x31
    Gaussians, sigma 2 and 4, ``filter2 'same'``) -> ``C' = |C|^3 / (|C|^2 + 1e-4)`` ->
    ``Q_XF`` = ratio of the smaller to the larger of ``C'_X, C'_F`` (computed as the masked
    sum of both ratios, so a 0 in either gives NaN, as in MATLAB) -> saliency-weighted
    ``mean(l1 Q_aF + l2 Q_bF)``. A NaN anywhere makes the result NaN (MATLAB ``mean2``).
    ``(N, H, W)`` 0..255 -> ``(N,)``.
    """
    if convention not in QCB_CONVENTIONS:
        raise ValueError(f"unknown Qcb convention {convention!r}; use one of {QCB_CONVENTIONS}")
    a, b, f = _check(a, b, f)
    n, H, W = a.shape
    x = torch.cat([a, b, f])
    if convention == "mefb":
        x = x / 255.0  # im2double(uint8)
    g1 = _gaussian2d_factor(2.0, a.device)
    g2 = _gaussian2d_factor(4.0, a.device)

    def contrast(x: Tensor) -> Tensor:  # per image: masked contrast C'
        xf = csf_filter(normalize1(x), chen_blum_csf(H, W, a.device))
        # both 31x31 filter2 'same' passes share one zero-padded copy (15 pixels each side)
        xp = pad(xf, 15, 15, 15, 15)
        num = separable_valid(xp, g1, g1)
        den = separable_valid(xp, g2, g2)
        c = (num / den - 1.0).abs()
        return (c**3) / (c**2 + 1e-4)

    cp = map_unique(contrast, x)  # a gray source replicated over RGB channels once
    c1, c2, cf = cp.split(n)

    def _pres(cx: Tensor) -> Tensor:
        mask = (cx < cf).to(cx.dtype)
        return (cx / cf) * mask + (cf / cx) * (1.0 - mask)

    q1f, q2f = _pres(c1), _pres(c2)
    s = c1 * c1 + c2 * c2
    lam1 = (c1 * c1) / s
    lam2 = (c2 * c2) / s
    return (lam1 * q1f + lam2 * q2f).mean(dim=(-2, -1))


# --------------------------------------------------------------------------- Qcv
_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_SOBEL_Y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))


def qcv(a: Tensor, b: Tensor, f: Tensor, window: int = 16, alpha: float = 5.0) -> Tensor:
    """VIFB/MEFB ``Qcv`` core (Chen-Varshney), **lower is better**, values in the hundreds.

    ``normalize1``; Sobel edge strength ``G`` (``filter2 'same'``); region saliency
    ``lambda = blkproc(G, [16 16], sum(x.^5))``; difference images ``a - F``, ``b - F``
    filtered with the Mannos-Sakrison CSF; ``D = blkproc(D', [16 16], mean2(x.^2))`` (zero
    padded partial blocks count in the 256-pixel mean);
    ``Qcv = sum(l_a D_a + l_b D_b) / sum(l_a + l_b)``. ``(N, H, W)`` 0..255 -> ``(N,)``.
    """
    a, b, f = _check(a, b, f)
    n, H, W = a.shape
    x = normalize1(torch.cat([a, b, f]))
    xa, xb, xf = x.split(n)
    src = torch.cat([xa, xb])

    def saliency(src: Tensor) -> Tensor:  # per image
        gx = filter2(_SOBEL_X, src, "same")
        gy = filter2(_SOBEL_Y, src, "same")
        g = sqrt(gx.mul_(gx).addcmul_(gy, gy))
        return blocks(g, window).pow(alpha).sum(dim=(-2, -1))

    lam = map_unique(saliency, src)  # (2n, nH, nW); a replicated gray source once
    d = csf_filter(src - torch.cat([xf, xf]), mannos_sakrison_csf(H, W, a.device))
    dd = (blocks(d, window) ** 2).mean(dim=(-2, -1))
    la, lb = lam.split(n)
    da, db = dd.split(n)
    return (la * da + lb * db).sum(dim=(-2, -1)) / (la + lb).sum(dim=(-2, -1))
