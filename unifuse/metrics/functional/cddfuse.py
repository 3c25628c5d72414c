"""Metrics that exist only in CDDFuse's ``utils/Evaluator.py``: CC, SCD, VIFF, SSIM (skimage).

Cores take float64 tensors ``a, b, f`` of shape ``(N, H, W)`` holding 0..255 values in the
source/source/fused order used everywhere in :mod:`unifuse.metrics` (CDDFuse itself calls
``metric(F, ir, vi)``; all of these are symmetric in the sources) and return ``(N,)``.
EN, SD, SF, AG, MI, MSE and PSNR of CDDFuse are the ``cddfuse`` conventions of the cores in
:mod:`.information` and :mod:`.feature`; SSIM is :func:`.structural.ssim_cddfuse`.
"""

from __future__ import annotations

import torch

from . import matlab as ml
from . import structural as _structural

Tensor = torch.Tensor


def _pearson(x: Tensor, y: Tensor) -> Tensor:
    """Per-image Pearson correlation of ``(N,H,W)`` tensors (``corr2``)."""
    xc = x - x.mean(dim=(-2, -1), keepdim=True)
    yc = y - y.mean(dim=(-2, -1), keepdim=True)
    return (xc * yc).sum(dim=(-2, -1)) / torch.sqrt((xc * xc).sum(dim=(-2, -1)) * (yc * yc).sum(dim=(-2, -1)))


def correlation_coefficient(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """CC (CDDFuse): ``(r(A,F) + r(B,F)) / 2`` with Pearson's ``r``. Range [-1, 1], higher is better."""
    return 0.5 * (_pearson(a, f) + _pearson(b, f))


def scd(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """SCD (CDDFuse; Aslantas & Bendes): ``r(A, F - B) + r(B, F - A)``. Range [-2, 2], higher is better."""
    return _pearson(a, f - b) + _pearson(b, f - a)


def _vifp(ref: Tensor, dist: Tensor, sigma_nsq: float = 2.0) -> Tensor:
    """Sheikh's multi-scale pixel VIF (``vifp_mscale``) of ``dist`` w.r.t. ``ref``: ``(N,)``.

    4 scales with Gaussian windows ``N_s = 2^(5-s)+1``, ``sigma = N_s/5`` ('valid' filtering,
    decimation by 2 for s > 1); ``sum_s num / sum_s den``; NaN -> 1 (as CDDFuse).
    """
    num = torch.zeros(ref.shape[0], dtype=torch.float64, device=ref.device)
    den = torch.zeros_like(num)
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = ml.fspecial_gaussian(n, n / 5.0, dtype=ref.dtype, device=ref.device)
        g1 = win[:, n // 2] / win[:, n // 2].sum()  # 1-D factor of the separable Gaussian
        filt = lambda x: ml.separable_filter2(x, g1, g1, shape="valid")  # noqa: E731
        if scale > 1:
            ref, dist = filt(torch.cat([ref, dist]))[..., ::2, ::2].split(ref.shape[0])
        n_img = ref.shape[0]
        mu1, mu2, e11, e22, e12 = filt(torch.cat([ref, dist, ref * ref, dist * dist, ref * dist])).split(n_img)
        mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
        s1 = e11 - mu1_sq
        s2 = e22 - mu2_sq
        s12 = e12 - mu1_mu2
        s1 = s1.clamp(min=0.0)
        s2 = s2.clamp(min=0.0)
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        low1 = s1 < 1e-10
        g = torch.where(low1, torch.zeros_like(g), g)
        sv = torch.where(low1, s2, sv)
        s1 = torch.where(low1, torch.zeros_like(s1), s1)
        low2 = s2 < 1e-10
        g = torch.where(low2, torch.zeros_like(g), g)
        sv = torch.where(low2, torch.zeros_like(sv), sv)
        neg = g < 0
        sv = torch.where(neg, s2, sv)
        g = torch.where(neg, torch.zeros_like(g), g)
        sv = sv.clamp(min=1e-10)
        num = num + torch.log10(1.0 + g * g * s1 / (sv + sigma_nsq)).sum(dim=(-2, -1))
        den = den + torch.log10(1.0 + s1 / sigma_nsq).sum(dim=(-2, -1))
    v = num / den
    return torch.where(torch.isnan(v), torch.ones_like(v), v)


def viff(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """VIFF as reported by CDDFuse: ``VIFp(A,F) + VIFp(B,F)`` (Sheikh's pixel VIF, ``sigma_n^2 = 2``,
    a **sum** over the sources). Not MEFB's VIF (Han et al.). Higher is better."""
    return _vifp(a, f) + _vifp(b, f)


def ssim_cddfuse(a: Tensor, b: Tensor, f: Tensor, data_range: float = 2.0) -> Tensor:
    """SSIM as reported by CDDFuse: ``SSIM(F,A) + SSIM(F,B)`` with skimage's defaults,
    ``data_range = 2`` and CDDFuse's float32 arithmetic. One implementation for both the
    ``ssim_cddfuse`` metric and ``ssim`` with ``convention='cddfuse'``:
    :func:`unifuse.metrics.functional.structural.ssim_cddfuse` (``float32=True``)."""
    return _structural.ssim_cddfuse(a, b, f, data_range=data_range, float32=True)


__all__ = ["correlation_coefficient", "scd", "viff", "ssim_cddfuse"]
