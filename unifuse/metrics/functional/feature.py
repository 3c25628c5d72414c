"""Image-feature and pixel-difference fusion metrics: SD, SF, AG, EI, PSNR, RMSE.

Cores take float64 tensors ``a, b, f`` of shape ``(N, H, W)`` holding 0..255 values in the
MATLAB call order (src1, src2, fused) and return ``(N,)`` float64. Metrics of the fused image
alone ignore ``a`` and ``b`` (they may be ``None``). Definitions follow VIFB/MEFB (MATLAB);
the ``convention`` options select the documented alternatives.
"""

from __future__ import annotations

from typing import Optional

import torch

from . import matlab as ml

Tensor = torch.Tensor


def standard_deviation(a: Optional[Tensor], b: Optional[Tensor], f: Tensor) -> Tensor:
    """SD (VIFB ``Variance``, MEFB ``SD``, CDDFuse ``SD``): population std of F,
    ``sqrt(sum (F - mean)^2 / MN)``. Higher is better."""
    mu = f.mean(dim=(-2, -1), keepdim=True)
    return torch.sqrt(((f - mu) ** 2).mean(dim=(-2, -1)))


def spatial_frequency(a: Optional[Tensor], b: Optional[Tensor], f: Tensor, convention: str = "benchmark") -> Tensor:
    """SF: ``sqrt(RF + CF)`` with squared row/column first differences.

    ``convention='benchmark'`` (VIFB/MEFB): both sums divided by ``M*N``.
    ``convention='cddfuse'``: means over the ``M(N-1)`` and ``(M-1)N`` differences.
    (VIFB's side-by-side RGB quirk is applied by the channel wrapper, not here.)
    Higher is better.
    """
    dr = (f[..., :, 1:] - f[..., :, :-1]) ** 2
    dc = (f[..., 1:, :] - f[..., :-1, :]) ** 2
    if convention == "cddfuse":
        return torch.sqrt(dr.mean(dim=(-2, -1)) + dc.mean(dim=(-2, -1)))
    if convention != "benchmark":
        raise ValueError(f"unknown SF convention {convention!r}")
    mn = float(f.shape[-1] * f.shape[-2])
    return torch.sqrt(dr.sum(dim=(-2, -1)) / mn + dc.sum(dim=(-2, -1)) / mn)


def average_gradient(a: Optional[Tensor], b: Optional[Tensor], f: Tensor, convention: str = "benchmark") -> Tensor:
    """AG: ``s = sqrt((gx^2 + gy^2)/2)`` with MATLAB ``gradient``.

    ``convention='benchmark'`` (VIFB/MEFB): ``sum(s) / ((M-1)(N-1))`` over all ``M*N`` pixels.
    ``convention='cddfuse'``: ``mean(s)`` over ``M*N``. Higher is better.
    """
    gx, gy = ml.gradient(f)
    s = torch.sqrt((gx * gx + gy * gy) / 2.0)
    if convention == "cddfuse":
        return s.mean(dim=(-2, -1))
    if convention != "benchmark":
        raise ValueError(f"unknown AG convention {convention!r}")
    M, N = f.shape[-2:]
    return s.sum(dim=(-2, -1)) / float((M - 1) * (N - 1))


def edge_intensity(a: Optional[Tensor], b: Optional[Tensor], f: Tensor) -> Tensor:
    """EI (VIFB/MEFB ``Edge_intensity``): ``mean(sqrt(gx^2 + gy^2))`` with the unscaled Sobel
    pair applied by ``imfilter(F, S, 'replicate')``. Higher is better."""
    s = ml.fspecial_sobel(f.dtype, f.device)
    gx = ml.imfilter(f, s, padding="replicate")
    gy = ml.imfilter(f, s.T, padding="replicate")
    return torch.sqrt(gx * gx + gy * gy).mean(dim=(-2, -1))


def _d_benchmark(x: Tensor, f: Tensor) -> Tensor:
    """VIFB's ``mse`` helper: ``sqrt(sum (X-F)^2) / (M N)`` (not an MSE)."""
    mn = float(f.shape[-1] * f.shape[-2])
    return torch.sqrt(((x - f) ** 2).sum(dim=(-2, -1))) / mn


def _mse(x: Tensor, f: Tensor) -> Tensor:
    return ((x - f) ** 2).mean(dim=(-2, -1))


def mse(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """MSE (CDDFuse): ``(mean((A-F)^2) + mean((B-F)^2)) / 2``. Lower is better."""
    return 0.5 * (_mse(a, f) + _mse(b, f))


def rmse(a: Tensor, b: Tensor, f: Tensor, convention: str = "benchmark") -> Tensor:
    """RMSE. ``convention='benchmark'`` (VIFB ``Rmse``): ``(d(A,F) + d(B,F))/2`` with
    ``d = sqrt(sum (X-F)^2)/(MN)`` (**not** a true RMSE; ``true = d * sqrt(MN)``).
    ``convention='standard'``: mean over the sources of the true RMSE. Lower is better."""
    if convention == "benchmark":
        return 0.5 * (_d_benchmark(a, f) + _d_benchmark(b, f))
    if convention == "standard":
        return 0.5 * (torch.sqrt(_mse(a, f)) + torch.sqrt(_mse(b, f)))
    raise ValueError(f"unknown RMSE convention {convention!r}")


def psnr(a: Tensor, b: Tensor, f: Tensor, convention: str = "benchmark") -> Tensor:
    """PSNR in dB.

    * ``'benchmark'`` (VIFB/MEFB ``Psnr``): ``20 log10(255 / sqrt(MES))`` with
      ``MES = (d(A,F) + d(B,F))/2`` and VIFB's ``d`` (see :func:`rmse`); ~55-62 dB.
    * ``'standard'``: ``10 log10(255^2 / MSE)`` with ``MSE = (MSE(A,F) + MSE(B,F))/2``.
    * ``'cddfuse'``: ``10 log10(max(F)^2 / MSE)`` (CDDFuse's peak is ``max(F)``).

    Higher is better.
    """
    if convention == "benchmark":
        mes = rmse(a, b, f, "benchmark")
        return 20.0 * torch.log10(255.0 / torch.sqrt(mes))
    m = mse(a, b, f)
    if convention == "standard":
        return 10.0 * torch.log10(255.0**2 / m)
    if convention == "cddfuse":
        peak = f.amax(dim=(-2, -1))
        return 10.0 * torch.log10(peak * peak / m)
    raise ValueError(f"unknown PSNR convention {convention!r}")


__all__ = [
    "standard_deviation",
    "spatial_frequency",
    "average_gradient",
    "edge_intensity",
    "mse",
    "rmse",
    "psnr",
]
