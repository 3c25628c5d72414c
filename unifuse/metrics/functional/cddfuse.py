"""Metrics that exist only in CDDFuse's ``utils/Evaluator.py``: CC, SCD, VIFF, SSIM (skimage).

Cores take float64 tensors ``a, b, f`` of shape ``(N, H, W)`` holding 0..255 values in the
source/source/fused order used everywhere in :mod:`unifuse.metrics` (CDDFuse itself calls
``metric(F, ir, vi)``; all of these are symmetric in the sources) and return ``(N,)``.
EN, SD, SF, AG, MI, MSE and PSNR of CDDFuse are the ``cddfuse`` conventions of the cores in
:mod:`.information` and :mod:`.feature`; SSIM is :func:`.structural.ssim_cddfuse`.
"""

from __future__ import annotations

import torch

from . import structural as _structural
from .vif import _vid_vind_g, vif_pyramid

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


def _vifp_from_stats(stats, which: slice, sigma_nsq: float = 2.0) -> Tensor:
    """Sheikh's ``vifp_mscale`` from the pyramid statistics of :func:`.vif.vif_pyramid`
    (``which`` selects the source rows): ``sum_s num / sum_s den``; NaN -> 1 (as CDDFuse)."""
    num = den = None
    for var_s, var_f, cov in stats:
        # Sheikh's clamped per-pixel terms, the same as Han's VIF uses
        vid, vind, _ = _vid_vind_g(var_s[which], var_f, cov[which], sigma_nsq)
        n_s = vid.sum(dim=(-2, -1))
        d_s = vind.sum(dim=(-2, -1))
        num = n_s if num is None else num + n_s
        den = d_s if den is None else den + d_s
    v = num / den
    return torch.where(torch.isnan(v), torch.ones_like(v), v)


def _vifp(ref: Tensor, dist: Tensor, sigma_nsq: float = 2.0) -> Tensor:
    """Sheikh's multi-scale pixel VIF (``vifp_mscale``) of ``dist`` w.r.t. ``ref``: ``(N,)``.

    4 scales with Gaussian windows ``N_s = 2^(5-s)+1``, ``sigma = N_s/5`` ('valid' filtering,
    decimation by 2 for s > 1); ``sum_s num / sum_s den``; NaN -> 1 (as CDDFuse)."""
    return _vifp_from_stats(vif_pyramid(ref, ref, dist), slice(0, ref.shape[0]), sigma_nsq)


def viff(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """VIFF as reported by CDDFuse: ``VIFp(A,F) + VIFp(B,F)`` (Sheikh's pixel VIF, ``sigma_n^2 = 2``,
    a **sum** over the sources). Not MEFB's VIF (Han et al.). Higher is better. The pyramid
    statistics are those of MEFB's VIF (:func:`.vif.vif_pyramid`, shared with it)."""
    n = a.shape[0]
    stats = vif_pyramid(a, b, f)
    return _vifp_from_stats(stats, slice(0, n)) + _vifp_from_stats(stats, slice(n, 2 * n))


def ssim_cddfuse(a: Tensor, b: Tensor, f: Tensor, data_range: float = 2.0) -> Tensor:
    """SSIM as reported by CDDFuse: ``SSIM(F,A) + SSIM(F,B)`` with skimage's defaults,
    ``data_range = 2`` and CDDFuse's float32 arithmetic. One implementation for both the
    ``ssim_cddfuse`` metric and ``ssim`` with ``convention='cddfuse'``:
    :func:`unifuse.metrics.functional.structural.ssim_cddfuse` (``float32=True``)."""
    return _structural.ssim_cddfuse(a, b, f, data_range=data_range, float32=True)


__all__ = ["correlation_coefficient", "scd", "viff", "ssim_cddfuse"]
