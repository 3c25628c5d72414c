"""Weather layers: rain streaks and snow flakes (spec ``mmaif.md`` §1.7 recipes).

A layer is a ``(1, H, W)`` float32 map in ``[0, 1]`` generated **only** from its parameter dict (which
holds its own integer ``seed``), so the two sources of an MEF/MFF pair get bit-identical layers from
the same parameters. Layers are composited with the screen blend ``I = 1 − (1 − J)(1 − R)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .filters import convolve, gaussian_blur, line_kernel


def screen(x: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
    """Screen blend ``1 − (1 − x)(1 − layer)`` (layer broadcast over channels)."""
    return 1 - (1 - x) * (1 - layer)


def _unit_peak(kernel: torch.Tensor, sigma: float) -> float:
    """Peak of one unit seed convolved with ``kernel`` and a Gaussian of ``sigma`` (streak normaliser)."""
    r = int(math.ceil(3 * sigma)) + 1
    k = F.pad(kernel[None], (r, r, r, r))
    return float(gaussian_blur(k, sigma).max())


def rain_layer(h: int, w: int, params: dict) -> torch.Tensor:
    """Rain streak layer (1,H,W) in [0,1] from ``params`` (see :func:`draw_rain` in operators).

    Per sub-layer: seed pixels with probability ``density`` and intensity U(0.5, 1); convolve with a
    line kernel (``length``, common ``angle``); thicken with a Gaussian ``sigma``; normalise so that an
    isolated streak peaks at its seed intensity (overlaps clip at 1). Sub-layers are screen-combined
    and the result scaled by ``params["scale"]``.
    """
    total = torch.zeros(1, h, w)
    for lay in params["layers"]:
        g = np.random.default_rng(int(lay["seed"]))
        mask = g.random((h, w), dtype=np.float32) < lay["density"]
        val = g.uniform(0.5, 1.0, size=(h, w)).astype(np.float32)
        seeds = torch.from_numpy(np.where(mask, val, np.float32(0)))[None]
        k = line_kernel(float(lay["length"]), float(params["angle"]))
        s = gaussian_blur(convolve(seeds, k), float(lay["sigma"]))
        s = (s / _unit_peak(k, float(lay["sigma"]))).clamp_(0, 1)
        total = screen(total, s)
    return (total * float(params["scale"])).clamp_(0, 1)


def snow_layer(h: int, w: int, params: dict) -> torch.Tensor:
    """Snow layer (1,H,W) in [0,1]: 2–3 sub-layers of Gaussian flakes, each motion-blurred, screened.

    Flakes: count ~ Poisson(density·H·W) at uniform sub-pixel positions, radius U(1, 4) px
    (σ = r/2), peak brightness U(0.7, 1.0); rendered vectorised on a 13×13 support.
    """
    total = torch.zeros(1, h, w)
    R = 6  # support radius: 3σ for the largest σ = 2
    off = torch.arange(-R, R + 1, dtype=torch.float32)
    for lay in params["layers"]:
        g = np.random.default_rng(int(lay["seed"]))
        n = int(g.poisson(lay["density"] * h * w))
        ys, xs = g.uniform(0, h, n), g.uniform(0, w, n)
        r = g.uniform(1.0, 4.0, n)
        bright = g.uniform(0.7, 1.0, n)
        canvas = torch.zeros(h + 2 * R, w + 2 * R)
        if n:
            cy, cx = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
            fy = torch.from_numpy(ys - cy - 0.5).float()  # centre offset within the pixel
            fx = torch.from_numpy(xs - cx - 0.5).float()
            sig = torch.from_numpy(r / 2).float()
            dy = off.view(1, -1, 1) - fy.view(-1, 1, 1)
            dx = off.view(1, 1, -1) - fx.view(-1, 1, 1)
            wgt = torch.from_numpy(bright).float().view(-1, 1, 1) * torch.exp(-(dy * dy + dx * dx) / (2 * sig.view(-1, 1, 1) ** 2))
            iy = (torch.from_numpy(cy).view(-1, 1, 1) + R + off.long().view(1, -1, 1)).expand_as(wgt)
            ix = (torch.from_numpy(cx).view(-1, 1, 1) + R + off.long().view(1, 1, -1)).expand_as(wgt)
            canvas.index_put_((iy.reshape(-1), ix.reshape(-1)), wgt.reshape(-1), accumulate=True)
        s = canvas[R:R + h, R:R + w].clamp(0, 1)[None]
        if int(lay["blur_length"]) > 1:
            s = convolve(s, line_kernel(float(lay["blur_length"]), float(lay["blur_angle"])))
        total = screen(total, s.clamp(0, 1))
    return total.clamp_(0, 1)
