"""Synthetic multi-focus and multi-exposure pairs made from one sharp, well-exposed image.

The image itself is the ground truth. Everything is vectorised torch code: a batch of
crops is processed at once (per-sample random parameters), fast enough to build 64x64
training crops on the fly.

Accepted images (values in ``[0, 1]``, gray or RGB):

* numpy ``(H, W)`` or ``(H, W, C)`` (channels last), returned as float32 numpy in the
  same layout;
* torch ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` (channels first), returned as torch
  tensors of the same shape, dtype and device.

Randomness comes only from ``rng``: a ``numpy.random.Generator`` or a ``torch.Generator``
(CPU); the same generator state gives the same pair. ``None`` uses a fresh
``numpy.random.default_rng()``.

Convention (as TITA/TC-MoA): **A** = far-focused / over-exposed, **B** = near-focused /
under-exposed. Functions return ``(a, b, ground_truth)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MFFConfig",
    "MEFConfig",
    "make_mff_pair",
    "make_mef_pair",
    "gaussian_blur",
    "random_focus_mask",
    "compose_focus_pair",
    "simulate_exposure",
]

Generator = Union[np.random.Generator, torch.Generator, None]


@dataclass(frozen=True)
class MFFConfig:
    """Ranges of the random multi-focus degradation.

    Attributes:
        sigma_range: Gaussian defocus blur sigma (pixels) of the out-of-focus region, drawn
            independently for A and B.
        fraction_range: share of the image that is in focus in A (the rest is sharp in B).
        grid_range: the mask is a thresholded, bilinearly upsampled ``g x g`` noise field with
            ``g`` drawn in this inclusive range (small g = large blobs).
        edge_sigma: blur of the binary mask (soft focus transition), pixels.
    """

    sigma_range: tuple[float, float] = (1.0, 4.0)
    fraction_range: tuple[float, float] = (0.25, 0.75)
    grid_range: tuple[int, int] = (2, 5)
    edge_sigma: float = 1.0


@dataclass(frozen=True)
class MEFConfig:
    """Ranges of the random multi-exposure degradation.

    Attributes:
        stops_range: exposure change in stops (powers of 2); A is brightened and B darkened
            by independent amounts in this range.
        gamma_range: display gamma of the camera-like tone curve (image = linear^(1/gamma)).
        bits: quantisation of the simulated captures (``None``: no quantisation).
    """

    stops_range: tuple[float, float] = (1.0, 3.0)
    gamma_range: tuple[float, float] = (2.0, 2.4)
    bits: int | None = 8


# ----------------------------------------------------------------------------- helpers


def _uniform(rng: Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform [0, 1) float32 CPU tensor of ``shape`` from a numpy or torch generator."""
    if isinstance(rng, torch.Generator):
        return torch.rand(shape, generator=rng, dtype=torch.float32)
    if isinstance(rng, np.random.Generator):
        return torch.from_numpy(rng.random(shape, dtype=np.float32))
    raise TypeError(f"rng must be a numpy.random.Generator or torch.Generator, got {type(rng).__name__}")


def _in_range(u: torch.Tensor, lo_hi: tuple[float, float]) -> torch.Tensor:
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return lo + (hi - lo) * u


def _to_batch(img: Any) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """Image -> float32 ``(N, C, H, W)`` tensor and a function restoring the input's type/layout."""
    if isinstance(img, torch.Tensor):
        shape, dtype = img.shape, img.dtype
        if img.dim() == 2:
            x = img[None, None]
        elif img.dim() == 3:
            x = img[None]
        elif img.dim() == 4:
            x = img
        else:
            raise ValueError(f"expected a (H, W), (C, H, W) or (N, C, H, W) tensor, got shape {tuple(shape)}")
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()  # float64 stays float64
        return work, lambda t: t.reshape(shape).to(dtype)
    arr = np.asarray(img)
    if arr.ndim == 2:
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None]
        return x, lambda t: t[0, 0].cpu().numpy()
    if arr.ndim == 3:
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)[None]
        return x, lambda t: np.ascontiguousarray(t[0].permute(1, 2, 0).cpu().numpy())
    raise ValueError(f"expected a (H, W) or (H, W, C) array, got shape {arr.shape}")


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with one sigma per sample (``(N,)`` or scalar).

    The kernel radius is ``ceil(3 * max(sigma))``; borders are reflected (replicated for
    images too small to reflect). ``sigma`` 0 leaves a sample unchanged.
    """
    n, c, h, w = x.shape
    sig = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1).expand(n).to(x.device)
    radius = int(math.ceil(3.0 * float(sig.max()))) if n else 0
    if radius == 0:
        return x.clone()
    kdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=kdtype)
    s = sig.to(kdtype).clamp_min(1e-6)[:, None]
    k = torch.exp(-0.5 * (t[None, :] / s) ** 2)
    k = (k / k.sum(dim=1, keepdim=True)).to(x.dtype)  # (N, K)
    k = k.repeat_interleave(c, dim=0)  # (N*C, K): one kernel per channel of each sample
    y = x.reshape(1, n * c, h, w)
    mode_h = "reflect" if radius < h else "replicate"
    mode_w = "reflect" if radius < w else "replicate"
    y = F.pad(y, (0, 0, radius, radius), mode=mode_h)
    y = F.conv2d(y, k[:, None, :, None], groups=n * c)
    y = F.pad(y, (radius, radius, 0, 0), mode=mode_w)
    y = F.conv2d(y, k[:, None, None, :], groups=n * c)
    return y.reshape(n, c, h, w)


def random_focus_mask(
    n: int, height: int, width: int, rng: Generator, config: MFFConfig = MFFConfig()
) -> torch.Tensor:
    """Random soft focus masks ``(N, 1, H, W)`` in ``[0, 1]`` (1 = sharp in A).

    A ``g x g`` uniform noise field is upsampled bilinearly and thresholded at the
    per-sample quantile that leaves a random share (``fraction_range``) in focus for A; the
    binary mask is then blurred by ``edge_sigma``.
    """
    g_lo, g_hi = config.grid_range
    g = int(g_lo + min(int(_uniform(rng, (1,)).item() * (g_hi - g_lo + 1)), g_hi - g_lo))
    field = _uniform(rng, (n, 1, g, g))
    fraction = _in_range(_uniform(rng, (n,)), config.fraction_range)
    field = F.interpolate(field, size=(height, width), mode="bilinear", align_corners=False)
    flat = field.reshape(n, -1)
    ordered = flat.sort(dim=1).values
    idx = ((1.0 - fraction) * (flat.shape[1] - 1)).round().long().clamp(0, flat.shape[1] - 1)
    thr = ordered.gather(1, idx[:, None])  # (N, 1): top `fraction` of the field is in focus
    mask = (flat >= thr).float().reshape(n, 1, height, width)
    if config.edge_sigma > 0:
        mask = gaussian_blur(mask, config.edge_sigma)
    return mask.clamp(0.0, 1.0)


def compose_focus_pair(
    img: torch.Tensor, mask: torch.Tensor, sigma_a: torch.Tensor | float, sigma_b: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Complementary defocus: ``a = m*img + (1-m)*blur(img, sigma_a)``, ``b = (1-m)*img + m*blur(img, sigma_b)``.

    ``img`` ``(N, C, H, W)``, ``mask`` ``(N, 1, H, W)`` (1 = in focus in A), sigmas per sample.
    """
    blur_a = gaussian_blur(img, sigma_a)
    blur_b = gaussian_blur(img, sigma_b)
    a = mask * img + (1.0 - mask) * blur_a
    b = (1.0 - mask) * img + mask * blur_b
    return a, b


def simulate_exposure(
    img: torch.Tensor, factor: torch.Tensor | float, gamma: torch.Tensor | float = 2.2, bits: int | None = 8
) -> torch.Tensor:
    """Re-expose an image: linearise, scale, clip, re-encode, quantise.

    ``linear = img ** gamma``; ``out = quantise(clip(linear * factor, 0, 1) ** (1 / gamma))``.
    ``factor`` / ``gamma`` are scalars or per-sample ``(N,)`` tensors for ``img`` ``(N, C, H, W)``.
    ``factor`` 1 returns the (quantised) input.
    """
    n = img.shape[0]
    fac = torch.as_tensor(factor, dtype=img.dtype, device=img.device).reshape(-1).expand(n).reshape(n, 1, 1, 1)
    gam = torch.as_tensor(gamma, dtype=img.dtype, device=img.device).reshape(-1).expand(n).reshape(n, 1, 1, 1)
    linear = img.clamp(0.0, 1.0) ** gam
    out = (linear * fac).clamp(0.0, 1.0) ** (1.0 / gam)
    if bits is not None:
        levels = float(2**bits - 1)
        out = torch.round(out * levels) / levels
    return out


# ----------------------------------------------------------------------------- public generators


def make_mff_pair(img: Any, rng: Generator = None, config: MFFConfig = MFFConfig()) -> tuple[Any, Any, Any]:
    """Random multi-focus pair from a sharp image.

    Args:
        img: sharp image(s) in ``[0, 1]`` (see module doc for layouts).
        rng: numpy or torch generator (reproducible), ``None`` for fresh randomness.
        config: :class:`MFFConfig`.

    Returns:
        ``(a, b, ground_truth)`` like ``img``: A is sharp where the random mask is 1 and
        defocused elsewhere, B the complement; the ground truth is ``img``.
    """
    rng = np.random.default_rng() if rng is None else rng
    x, back = _to_batch(img)
    n, _, h, w = x.shape
    mask = random_focus_mask(n, h, w, rng, config).to(x.device)
    sigmas = _in_range(_uniform(rng, (2, n)), config.sigma_range).to(x.device)
    a, b = compose_focus_pair(x, mask, sigmas[0], sigmas[1])
    return back(a.clamp(0.0, 1.0)), back(b.clamp(0.0, 1.0)), back(x.clone())


def make_mef_pair(img: Any, rng: Generator = None, config: MEFConfig = MEFConfig()) -> tuple[Any, Any, Any]:
    """Random multi-exposure pair from a well-exposed image.

    Args:
        img: well-exposed image(s) in ``[0, 1]`` (see module doc for layouts).
        rng: numpy or torch generator (reproducible), ``None`` for fresh randomness.
        config: :class:`MEFConfig`.

    Returns:
        ``(a, b, ground_truth)`` like ``img``: A over-exposed (``+stops``), B under-exposed
        (``-stops``), both through the same camera-like tone curve with clipping and
        quantisation; the ground truth is ``img``.
    """
    rng = np.random.default_rng() if rng is None else rng
    x, back = _to_batch(img)
    n = x.shape[0]
    u = _uniform(rng, (3, n)).to(x.device)
    stops_over = _in_range(u[0], config.stops_range)
    stops_under = _in_range(u[1], config.stops_range)
    gamma = _in_range(u[2], config.gamma_range)
    a = simulate_exposure(x, 2.0**stops_over, gamma, config.bits)
    b = simulate_exposure(x, 2.0 ** (-stops_under), gamma, config.bits)
    return back(a), back(b), back(x.clone())
