"""Xydeas-Petrovic gradient-preservation metric ``Qabf`` (VIFB and MEFB share the code).

Core signature: ``qabf(a, b, f)`` with float64 tensors ``(N, H, W)`` holding 0..255 values,
MATLAB call order (source 1, source 2, fused); returns ``(N,)``, range [0, 1], higher is
better. Behaviour (``shared/spec/metrics.md`` 2.2):

* inputs multiplied by 255 (``255 * im2double(double(X))``, a no-op ``im2double``);
* ``Sx = conv2(X, [-1 0 1; -2 0 2; -1 0 1], 'same')``, ``Sy = conv2(X, [1 2 1; 0 0 0; -1 -2 -1], 'same')``
  (true convolution, zero padding); ``g = sqrt(Sx^2 + Sy^2)``;
  ``alpha = atan(Sy / Sx)`` (``pi/2`` where ``Sx == 0``);
* relative strength ``G = gF/gA`` if ``gA > gF``, **``gF`` if ``gA == gF``**, else ``gA/gF``;
  orientation agreement ``A = 1 - |alphaA - alphaF| / (pi/2)``;
* ``Q = 0.9994 / (1 + exp(-15 (G - 0.5))) * 0.9879 / (1 + exp(-22 (A - 0.8)))``;
* ``Qabf = sum(Q_AF gA + Q_BF gB) / sum(gA + gB)``.

CDDFuse's ``Evaluator.Qabf`` is the same formula in float32 (agrees to ~2e-7).
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

from .elementwise import sqrt
from .matlab import conv2
from .shared import map_unique

Tensor = torch.Tensor

__all__ = ["sobel_strength_orientation", "qabf"]

_H_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_H_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))

_TG, _KG, _DG = 0.9994, -15.0, 0.5
_TA, _KA, _DA = 0.9879, -22.0, 0.8


def sobel_strength_orientation(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Edge strength ``g`` and orientation ``alpha`` (``atan``, in [-pi/2, pi/2]) of
    ``(N, H, W)`` images as Qabf computes them. Returns two ``(N, H, W)`` tensors."""
    sx = conv2(x, _H_X, "same")
    sy = conv2(x, _H_Y, "same")
    g = sqrt(torch.mul(sx, sx).addcmul_(sy, sy))
    alpha = torch.where(sx == 0, torch.full_like(sx, math.pi / 2), torch.atan(sy / sx))
    return g, alpha


def _edge_preservation(ga: Tensor, aa: Tensor, gf: Tensor, af: Tensor) -> Tensor:
    """``Q_XF`` map from source and fused strength/orientation maps."""
    gr = torch.where(ga > gf, gf / ga, torch.where(ga == gf, gf, ga / gf))
    ar = 1.0 - (aa - af).abs() / (math.pi / 2)
    qg = _TG / (1.0 + torch.exp(_KG * (gr - _DG)))
    qa = _TA / (1.0 + torch.exp(_KA * (ar - _DA)))
    return qg * qa


def qabf(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """Qabf core. ``a, b, f``: ``(N, H, W)`` float64, 0..255. Returns ``(N,)`` in [0, 1]."""
    if not (a.shape == b.shape == f.shape) or a.ndim != 3:
        raise ValueError(f"expected three (N, H, W) tensors of equal shape, got {a.shape}, {b.shape}, {f.shape}")
    n = a.shape[0]
    x = torch.cat([a, b, f]).double() * 255.0
    g, al = map_unique(sobel_strength_orientation, x)  # a replicated gray source once
    ga, gb, gf = g.split(n)
    aa, ab, af = al.split(n)
    qa = _edge_preservation(ga, aa, gf, af)
    qb = _edge_preservation(gb, ab, gf, af)
    num = (qa * ga + qb * gb).sum(dim=(-2, -1))
    den = (ga + gb).sum(dim=(-2, -1))
    return num / den
