"""Independent float64 numpy references for the loss tests (no torch convolutions)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def correlate_zero(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """2-D cross-correlation of (H, W) with an odd (k, k) kernel, zero padding, same size."""
    r = k.shape[0] // 2
    p = np.pad(img.astype(np.float64), r)
    win = sliding_window_view(p, k.shape)
    return np.einsum("ijkl,kl->ij", win, k.astype(np.float64))


def gauss2d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def ssim_map_ref(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = gauss2d()
    mx, my = correlate_zero(x, w), correlate_zero(y, w)
    sxx = correlate_zero(x * x, w) - mx * mx
    syy = correlate_zero(y * y, w) - my * my
    sxy = correlate_zero(x * y, w) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))


def ssim_ref(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM over a (N, 1, H, W) batch (official: batch, channel and pixels together)."""
    return float(np.mean([ssim_map_ref(x[n, 0], y[n, 0]) for n in range(x.shape[0])]))


SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
SOBEL_Y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float64)


def sobel_ref(x: np.ndarray) -> np.ndarray:
    """|Gx| + |Gy| of a (N, 1, H, W) batch."""
    out = np.empty(x.shape, dtype=np.float64)
    for n in range(x.shape[0]):
        out[n, 0] = np.abs(correlate_zero(x[n, 0], SOBEL_X)) + np.abs(correlate_zero(x[n, 0], SOBEL_Y))
    return out
