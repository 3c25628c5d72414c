"""Warp a source frame into the reference frame.

Border rule: reference pixels that map outside the source frame (no data) take the
**reference frame's own value** there; along the edge of the valid region the two are blended
with the bilinearly warped coverage mask, so no seam of black or replicated pixels enters the
fusion. The output has the reference's size and the source's dtype (uint8/uint16 data is
interpolated bicubically in OpenCV and rounded back, float stays float).
"""

from __future__ import annotations

import numpy as np

from .register import require_cv2

__all__ = ["warp_to_reference"]


def _as_channels(x: np.ndarray, channels: int) -> np.ndarray:
    if x.ndim == 2 and channels == 3:
        return np.repeat(x[..., None], 3, axis=-1)
    if x.ndim == 3 and channels == 1:
        return x.mean(axis=-1)
    return x


def warp_to_reference(src: np.ndarray, matrix: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Resample ``src`` ``(H', W'[, 3])`` at ``matrix @ (x, y, 1)`` for every pixel of ``ref`` ``(H, W[, C])``.

    ``src`` and ``ref`` share a value scale (same dtype and bit depth, or both float in
    [0, 1]). Pixels without data are filled from ``ref`` (see module doc). Returns an array of
    ``src``'s dtype, ``(H, W)`` or ``(H, W, 3)`` like ``src``.
    """
    cv2 = require_cv2()
    h, w = ref.shape[:2]
    m = np.asarray(matrix, np.float64)
    m = m / m[2, 2]
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    if np.allclose(m, np.eye(3), atol=1e-12) and src.shape[:2] == (h, w):
        return src.copy()
    warped = cv2.warpPerspective(src, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    cover = cv2.warpPerspective(np.ones(src.shape[:2], np.float32), m, (w, h),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # coverage below 1 near the edge: bicubic taps reached outside -> treat as partially missing
    cover = np.clip((cover - 0.5) * 2.0, 0.0, 1.0)
    if cover.min() >= 1.0:
        return warped
    filled = _as_channels(ref, 1 if src.ndim == 2 else 3).astype(np.float32)
    c = cover if warped.ndim == 2 else cover[..., None]
    out = c * warped.astype(np.float32) + (1.0 - c) * filled
    if np.issubdtype(src.dtype, np.integer):
        return np.clip(np.rint(out), 0, np.iinfo(src.dtype).max).astype(src.dtype)
    return out.astype(src.dtype)
