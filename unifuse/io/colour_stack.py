"""Colour restoration for more than two sources: the chroma rules of :func:`restore_colour` over N.

* ``weighted``: per chroma channel ``c_F = sum_k c_k |c_k - m| / sum_k |c_k - m|`` (``m`` =
  128 for 8-bit, truncated to an integer like the official two-source ``y2rgb``; 0.5 for
  16-bit, float), ``m`` where every weight is 0; gray sources have weight 0 everywhere.
  With two sources this is exactly :func:`unifuse.io.restore_colour`.
* ``from-a`` / ``from-b``: the chroma of the **first** / **second** source as given (for a
  pair: A / B, as before).
* ``gray``: no colour.

:class:`ChromaAccumulator` takes the sources one at a time, so a stack never needs all of its
frames' chroma at once (two integer planes per output pixel are kept).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, InputMismatchError
from .colour import CHROMA_RULES, _rgb_float, _to_u8, _ycrcb_float, rgb_to_ycrcb_u8, ycrcb_to_rgb_u8

__all__ = ["ChromaAccumulator", "BAND_ROWS"]

#: rows converted at a time (bounds the temporaries of large images)
BAND_ROWS = 256


class ChromaAccumulator:
    """Accumulate the sources' chroma, then put it on a fused luma.

    Args:
        rule: one of :data:`unifuse.io.CHROMA_RULES`.
        bit_depth: 8 (OpenCV 8-bit arithmetic, as :func:`restore_colour`) or 16 (float).
    """

    def __init__(self, rule: str = "weighted", bit_depth: int = 8):
        if rule not in CHROMA_RULES:
            raise ConfigError(f"unknown chroma rule {rule!r}; choose one of {', '.join(CHROMA_RULES)}")
        self.rule, self.bits = rule, bit_depth
        self.count = 0
        self.num = self.den = self.chroma = None

    def _chroma(self, rgb: np.ndarray) -> np.ndarray:
        x = np.asarray(rgb)
        if x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=-1)
        if self.bits == 8:
            q = x if x.dtype == np.uint8 else _to_u8(x)
            return rgb_to_ycrcb_u8(q)[..., 1:].astype(np.int32)
        xf = x.astype(np.float64) / 65535.0 if x.dtype == np.uint16 else np.clip(x.astype(np.float64), 0.0, 1.0)
        return _ycrcb_float(xf)[..., 1:]

    def add(self, rgb: np.ndarray) -> None:
        """Add the next source: float ``(H, W[, 3])`` in [0, 1] (or ``uint8`` for 8-bit, ``uint16`` for 16-bit).

        Processed in bands of :data:`BAND_ROWS` rows, so the integer/float temporaries of the
        conversion stay small whatever the image size.
        """
        k = self.count
        self.count += 1
        if self.rule == "gray" or (self.rule == "from-a" and k != 0) or (self.rule == "from-b" and k != 1):
            return
        h, w = rgb.shape[:2]
        if self.rule in ("from-a", "from-b"):
            self.chroma = np.concatenate([self._chroma(rgb[r:r + BAND_ROWS]) for r in range(0, h, BAND_ROWS)])
            return
        m = 128 if self.bits == 8 else 0.5
        if self.num is None:
            dtype = np.int32 if self.bits == 8 else np.float64
            self.num, self.den = np.zeros((h, w, 2), dtype), np.zeros((h, w, 2), dtype)
        for r in range(0, h, BAND_ROWS):
            c = self._chroma(rgb[r:r + BAND_ROWS])
            wt = np.abs(c - m)
            if self.bits != 8:
                wt = np.where(wt < 1e-9, 0.0, wt)  # gray: exactly neutral
            self.num[r:r + BAND_ROWS] += c * wt
            self.den[r:r + BAND_ROWS] += wt

    def restore(self, fused_y: np.ndarray) -> np.ndarray:
        """Fused luma ``(H, W)`` in [0, 1] -> float32 ``(H, W, 3)`` RGB (``(H, W)`` for ``gray``)."""
        y = np.asarray(fused_y)
        if self.rule == "gray":
            if self.bits == 8:
                return (_to_u8(y).astype(np.float32) / np.float32(255.0)).astype(np.float32)
            return np.clip(y, 0.0, 1.0).astype(np.float32)
        if self.rule == "from-b" and self.count < 2:
            raise InputMismatchError("--color from-b needs at least two sources")
        if self.rule == "weighted" and self.num is None:
            raise InputMismatchError("no sources were added")
        shape = (self.num if self.rule == "weighted" else self.chroma).shape[:2]
        if shape != y.shape:
            raise InputMismatchError(f"fused luma is {y.shape[1]}x{y.shape[0]} but the sources are "
                                     f"{shape[1]}x{shape[0]}")
        out = np.empty((*y.shape, 3), np.float32)
        for r in range(0, y.shape[0], BAND_ROWS):
            band = slice(r, r + BAND_ROWS)
            if self.rule == "weighted":
                num, den = self.num[band], self.den[band]
                if self.bits == 8:
                    chroma = np.where(den > 0, num // np.maximum(den, 1), 128)
                else:
                    chroma = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.5)
            else:
                chroma = self.chroma[band]
            out[band] = self._to_rgb(y[band], chroma)
        return out

    def _to_rgb(self, y: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        if self.bits == 8:
            ycc = np.concatenate([_to_u8(y)[..., None].astype(np.int32), chroma], axis=-1)
            return (ycrcb_to_rgb_u8(ycc.astype(np.uint8)).astype(np.float32) / np.float32(255.0)).astype(np.float32)
        ycc = np.concatenate([np.clip(y.astype(np.float64), 0.0, 1.0)[..., None], chroma], axis=-1)
        return np.clip(_rgb_float(ycc), 0.0, 1.0).astype(np.float32)
