"""Depth maps for the haze operator (spec ``mmaif.md`` §1.7 "Depth for haze").

A depth estimator maps an RGB or grey image ``(C, H, W)`` float in ``[0, 1]`` to a normalised depth
``(H, W)`` float32 in ``[0, 1]`` with **1 = far**. Three kinds:

* :class:`PseudoDepth` (default): ``d = normalise01(0.6·(1 − row/(H−1)) + 0.4·Gσ(Y))``, ``Y`` the
  BT.601 luma and ``Gσ`` a Gaussian of ``σ = 0.1·min(H, W)`` — the top of the frame and bright sky are
  far. It is deliberately **not** a centre-distance map (the paper rejects those).
* :class:`FileDepth`: a user-supplied depth map (an array/tensor, or an image file), resized to the
  image if needed and normalised; ``inverse=True`` for disparity maps (``d = 1 − normalise01(disp)``,
  as the spec converts Depth Anything outputs).
* :class:`ModelDepth`: a TorchScript / ``torch.export`` depth network from a local file only (never downloaded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ConfigError, InputMismatchError
from .filters import fft_conv, gaussian_kernel1d


def normalise01(x: torch.Tensor) -> torch.Tensor:
    """Min-max normalise to [0, 1]; a constant map becomes all zeros."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if float(hi - lo) > 1e-12 else torch.zeros_like(x)


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma (H, W) of a (3,H,W) image; the single channel of a (1,H,W) image."""
    if x.shape[0] == 1:
        return x[0]
    return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]


def _large_gaussian(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (kernel ``2⌈3σ⌉+1``, reflect padding) of a (H, W) map by FFT; the radius is capped
    below the image side so reflect padding stays valid."""
    k = gaussian_kernel1d(sigma)
    c = k.numel() // 2
    r = min(c, y.shape[0] - 1, y.shape[1] - 1)
    if r <= 0:
        return y.clone()
    k = k[c - r:c + r + 1]
    k = k / k.sum()
    return fft_conv(y[None], torch.outer(k, k))[0]


class DepthEstimator:
    """Interface: ``__call__(image (C,H,W) in [0,1]) -> depth (H,W) float32 in [0,1], 1 = far``."""

    name = "depth"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class PseudoDepth(DepthEstimator):
    """Row prior + blurred luma (spec default; weights 0.6 / 0.4, ``σ = 0.1·min(H, W)``)."""

    name = "pseudo"

    def __init__(self, row_weight: float = 0.6, luma_weight: float = 0.4, sigma_frac: float = 0.1):
        self.row_weight, self.luma_weight, self.sigma_frac = float(row_weight), float(luma_weight), float(sigma_frac)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        row = torch.arange(h, dtype=torch.float32) / max(h - 1, 1)
        prior = (1 - row).view(h, 1).expand(h, w)
        y = _large_gaussian(luma(image.float()), self.sigma_frac * min(h, w))
        return normalise01(self.row_weight * prior + self.luma_weight * y).float()


class FileDepth(DepthEstimator):
    """A given depth map (array, tensor (H,W)/(1,H,W), or image file path), normalised to [0,1].

    ``inverse=True`` treats it as disparity / inverse depth (near = large): ``d = 1 − normalise01``.
    A map of another size is bilinearly resized to the image.
    """

    name = "file"

    def __init__(self, depth: Union[str, os.PathLike, np.ndarray, torch.Tensor], inverse: bool = False):
        if isinstance(depth, (str, os.PathLike)):
            from ...io import read_image

            img = read_image(depth).data
            depth = img if img.ndim == 2 else img.mean(-1)
        t = torch.as_tensor(np.asarray(depth) if not isinstance(depth, torch.Tensor) else depth).float()
        if t.dim() == 3 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 2:
            raise InputMismatchError(f"depth map must be (H, W) or (1, H, W), got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise InputMismatchError("depth map contains NaN or infinite values")
        self.inverse = bool(inverse)
        self.depth = t

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        d = self.depth
        if tuple(d.shape) != (h, w):
            d = F.interpolate(d[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        d = normalise01(d)
        return (1 - d if self.inverse else d).float()


class ModelDepth(DepthEstimator):
    """A monocular depth network from a local file — TorchScript (``.pt``) or ``torch.export`` (``.pt2``) —
    that outputs disparity, as Depth Anything does.

    The network gets ``(1, 3, H, W)`` in [0, 1] and must return disparity ``(1, [1,] H', W')``; the
    result is resized to ``(H, W)`` and converted with ``d = 1 − normalise01(disparity)``.
    """

    name = "model"

    def __init__(self, path: Union[str, os.PathLike], disparity: bool = True):
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: depth model weights not found (ModelDepth only loads local files)")
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                if p.suffix == ".pt2":  # torch.export archive
                    self.net = torch.export.load(str(p)).module()
                else:
                    self.net = torch.jit.load(str(p), map_location="cpu").eval()
        except Exception as e:  # noqa: BLE001
            raise ConfigError(f"{p}: cannot load a depth model (TorchScript .pt or torch.export .pt2): {e.__class__.__name__}") from None
        self.disparity = bool(disparity)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        x = image.float()
        x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
        out = self.net(x[None]).float()
        out = out.reshape(1, 1, *out.shape[-2:])
        out = F.interpolate(out, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
        d = normalise01(out)
        return (1 - d if self.disparity else d).float()


def as_depth_estimator(depth: Any) -> DepthEstimator:
    """``None`` -> :class:`PseudoDepth`; an estimator is returned as is; a map/path -> :class:`FileDepth`."""
    if depth is None:
        return PseudoDepth()
    if isinstance(depth, DepthEstimator):
        return depth
    if callable(depth) and not isinstance(depth, (torch.Tensor, np.ndarray)):
        class _Fn(DepthEstimator):
            name = "callable"

            def __call__(self, image):  # noqa: D401
                return depth(image)
        return _Fn()
    return FileDepth(depth)
