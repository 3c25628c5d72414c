"""Luma and chroma conversions used to fuse colour images with single-channel networks.

All functions take and return float arrays in ``[0, 1]`` (numpy, channels last,
``(..., 3)`` in RGB order; gray ``(H, W)`` inputs are accepted where noted).

**8-bit data** (``bit_depth=8``) is processed exactly like the official TITA test script:

* :func:`rgb_to_luma` equals Pillow's ``Image.convert('L')`` (ITU-R 601-2,
  ``L = (19595 R + 38470 G + 7471 B + 2**15) >> 16``), bit for bit;
* :func:`rgb_to_ycrcb` / :func:`ycrcb_to_rgb` equal OpenCV's 8-bit ``COLOR_BGR2YCrCb`` /
  ``COLOR_YCrCb2BGR`` (BT.601 full range, chroma offset 128, 14-bit fixed point with
  OpenCV's rounding and saturation), bit for bit;
* :func:`restore_colour` with rule ``'weighted'`` is the official ``y2rgb``: each chroma
  channel is the ``|c - 128|``-weighted mean of the two sources' chroma, 128 where both
  weights are 0, **truncated** to an integer.

**16-bit data** (``bit_depth=16``; any value other than 8 selects this path) is processed in
float without quantisation, with the same rules and the chroma offset 0.5. The YCbCr
definition there is BT.601 full range (JPEG/JFIF)::

    Y  = 0.299 R + 0.587 G + 0.114 B
    Cb = 0.5 + (B - Y) / 1.772        (= 0.5 - 0.168736 R - 0.331264 G + 0.5 B)
    Cr = 0.5 + (R - Y) / 1.402        (= 0.5 + 0.5 R - 0.418688 G - 0.081312 B)

whose exact inverse is ``R = Y + 1.402 (Cr - 0.5)``, ``B = Y + 1.772 (Cb - 0.5)``,
``G = (Y - 0.299 R - 0.114 B) / 0.587``. (OpenCV's 8-bit path uses the rounded factors
0.713 and 0.564; the two agree to better than 0.1 %.)

Channel order of the YCrCb arrays is ``[Y, Cr, Cb]`` as in OpenCV.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import ConfigError, InputMismatchError

__all__ = [
    "CHROMA_RULES",
    "rgb_to_luma",
    "rgb_to_ycrcb",
    "ycrcb_to_rgb",
    "rgb_to_ycrcb_u8",
    "ycrcb_to_rgb_u8",
    "restore_colour",
]

ChromaRule = Literal["weighted", "from-a", "from-b", "gray"]
#: chroma rules accepted by :func:`restore_colour`
CHROMA_RULES: tuple[str, ...] = ("weighted", "from-a", "from-b", "gray")

# ITU-R 601-2 luma weights
_KR, _KG, _KB = 0.299, 0.587, 0.114

# OpenCV fixed-point coefficients (yuv_shift = 14)
_SHIFT = 14
_ROUND = 1 << (_SHIFT - 1)
_DELTA = 128 << _SHIFT
_Y_R, _Y_G, _Y_B = 4899, 9617, 1868  # 0.299, 0.587, 0.114
_CR, _CB = 11682, 9241  # 0.713, 0.564
_R_CR, _G_CR, _G_CB, _B_CB = 22987, -11698, -5636, 29049  # 1.403, -0.714, -0.344, 1.773


def _to_u8(x: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8 (clamp, x255, round half to even)."""
    return np.rint(np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def _check_rgb(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise InputMismatchError(f"{what}: expected an RGB array (..., 3), got shape {x.shape}")
    return x


def rgb_to_luma(rgb: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """ITU-R 601-2 luma, as Pillow's ``convert('L')``.

    Args:
        rgb: float ``(..., 3)`` RGB in ``[0, 1]``; a gray ``(H, W)`` array is returned as
            float32 unchanged.
        bit_depth: 8: the input is quantised to 8 bits and the result equals Pillow's
            integer conversion exactly (``k / 255`` values); otherwise float weights
            0.299 / 0.587 / 0.114 without quantisation.

    Returns:
        float32 ``(...)`` in ``[0, 1]``.
    """
    x = np.asarray(rgb)
    if x.ndim == 2:
        return x.astype(np.float32)
    x = _check_rgb(x, "rgb_to_luma")
    if bit_depth == 8:
        q = _to_u8(x).astype(np.int32)
        lum = (q[..., 0] * 19595 + q[..., 1] * 38470 + q[..., 2] * 7471 + 0x8000) >> 16
        return (lum.astype(np.float32) / np.float32(255.0)).astype(np.float32)
    xf = x.astype(np.float64)
    lum = _KR * xf[..., 0] + _KG * xf[..., 1] + _KB * xf[..., 2]
    return np.clip(lum, 0.0, 1.0).astype(np.float32)


def rgb_to_ycrcb_u8(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(..., 3)`` -> uint8 ``[Y, Cr, Cb]``, identical to OpenCV ``COLOR_BGR2YCrCb`` on BGR."""
    q = _check_rgb(rgb, "rgb_to_ycrcb_u8").astype(np.int32)
    r, g, b = q[..., 0], q[..., 1], q[..., 2]
    y = (r * _Y_R + g * _Y_G + b * _Y_B + _ROUND) >> _SHIFT
    cr = ((r - y) * _CR + _DELTA + _ROUND) >> _SHIFT
    cb = ((b - y) * _CB + _DELTA + _ROUND) >> _SHIFT
    return np.clip(np.stack([y, cr, cb], axis=-1), 0, 255).astype(np.uint8)


def ycrcb_to_rgb_u8(ycrcb: np.ndarray) -> np.ndarray:
    """uint8 ``[Y, Cr, Cb]`` -> uint8 RGB, identical to OpenCV ``COLOR_YCrCb2BGR`` (then BGR->RGB)."""
    q = _check_rgb(ycrcb, "ycrcb_to_rgb_u8").astype(np.int32)
    y, cr, cb = q[..., 0], q[..., 1] - 128, q[..., 2] - 128
    r = y + ((cr * _R_CR + _ROUND) >> _SHIFT)
    g = y + ((cb * _G_CB + cr * _G_CR + _ROUND) >> _SHIFT)
    b = y + ((cb * _B_CB + _ROUND) >> _SHIFT)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def _ycrcb_float(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = _KR * r + _KG * g + _KB * b
    return np.stack([y, 0.5 + (r - y) / 1.402, 0.5 + (b - y) / 1.772], axis=-1)


def _rgb_float(ycc: np.ndarray) -> np.ndarray:
    y, cr, cb = ycc[..., 0], ycc[..., 1] - 0.5, ycc[..., 2] - 0.5
    r = y + 1.402 * cr
    b = y + 1.772 * cb
    g = (y - _KR * r - _KB * b) / _KG
    return np.stack([r, g, b], axis=-1)


def rgb_to_ycrcb(rgb: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """RGB -> ``[Y, Cr, Cb]``.

    Args:
        rgb: float ``(..., 3)`` in ``[0, 1]``, or gray ``(H, W)`` (chroma-neutral).
        bit_depth: 8 (OpenCV 8-bit arithmetic; values ``k / 255``, neutral chroma
            ``128 / 255``) or 16 (float BT.601 full range, neutral chroma 0.5; see module doc).

    Returns:
        float32 ``(..., 3)`` in ``[0, 1]``.
    """
    x = np.asarray(rgb)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    x = _check_rgb(x, "rgb_to_ycrcb")
    if bit_depth == 8:
        return (rgb_to_ycrcb_u8(_to_u8(x)).astype(np.float32) / np.float32(255.0)).astype(np.float32)
    return np.clip(_ycrcb_float(np.clip(x.astype(np.float64), 0.0, 1.0)), 0.0, 1.0).astype(np.float32)


def ycrcb_to_rgb(ycrcb: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """``[Y, Cr, Cb]`` -> RGB, the inverse of :func:`rgb_to_ycrcb` (same ``bit_depth`` rules).

    Returns:
        float32 ``(..., 3)`` RGB in ``[0, 1]`` (out-of-gamut values are clipped).
    """
    x = _check_rgb(ycrcb, "ycrcb_to_rgb")
    if bit_depth == 8:
        return (ycrcb_to_rgb_u8(_to_u8(x)).astype(np.float32) / np.float32(255.0)).astype(np.float32)
    return np.clip(_rgb_float(x.astype(np.float64)), 0.0, 1.0).astype(np.float32)


def _as_rgb(x: np.ndarray, what: str, shape: tuple[int, int]) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputMismatchError(f"restore_colour: {what} must be (H, W) or (H, W, 3), got shape {x.shape}")
    if x.shape[:2] != shape:
        raise InputMismatchError(
            f"restore_colour: {what} is {x.shape[1]}x{x.shape[0]} but the fused image is {shape[1]}x{shape[0]}"
        )
    return x


def restore_colour(
    fused_y: np.ndarray,
    a_rgb: np.ndarray,
    b_rgb: np.ndarray,
    rule: ChromaRule = "weighted",
    bit_depth: int = 8,
) -> np.ndarray:
    """Put colour back on a fused luma image using the sources' chroma.

    Args:
        fused_y: float ``(H, W)`` fused luma in ``[0, 1]`` (values outside are clamped).
        a_rgb, b_rgb: the two sources, float ``(H, W, 3)`` RGB or ``(H, W)`` gray in
            ``[0, 1]``; gray sources are chroma-neutral.
        rule:
            * ``'weighted'`` (default, the official TITA ``y2rgb``): per chroma channel
              ``c_F = (c_A |c_A - m| + c_B |c_B - m|) / (|c_A - m| + |c_B - m|)``, and
              ``c_F = m`` where both weights are 0, with ``m`` = 128 (8-bit, result truncated
              to an integer) or 0.5 (16-bit). A gray source gets weight 0 everywhere, so a
              visible+infrared pair takes the visible image's chroma.
            * ``'from-a'`` / ``'from-b'``: the chroma of source A / B (e.g. the colour source
              of a PET/SPECT+MRI pair).
            * ``'gray'``: no colour; the fused luma is returned as ``(H, W)``.
        bit_depth: 8 (exact official 8-bit arithmetic: fused Y, sources and output are
            quantised to 8 bits) or 16 (float, no quantisation).

    Returns:
        float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (``(H, W)`` for rule ``'gray'``).
    """
    if rule not in CHROMA_RULES:
        raise ConfigError(f"unknown chroma rule {rule!r}; choose one of {', '.join(CHROMA_RULES)}")
    y = np.asarray(fused_y)
    if y.ndim == 3 and y.shape[2] == 1:
        y = y[..., 0]
    if y.ndim != 2:
        raise InputMismatchError(f"restore_colour: fused luma must be (H, W), got shape {y.shape}")
    if rule == "gray":
        if bit_depth == 8:
            return (_to_u8(y).astype(np.float32) / np.float32(255.0)).astype(np.float32)
        return np.clip(y, 0.0, 1.0).astype(np.float32)
    shape = (int(y.shape[0]), int(y.shape[1]))
    a = _as_rgb(a_rgb, "source A", shape)
    b = _as_rgb(b_rgb, "source B", shape)

    if bit_depth == 8:
        ca = rgb_to_ycrcb_u8(_to_u8(a))[..., 1:].astype(np.int32)
        cb = rgb_to_ycrcb_u8(_to_u8(b))[..., 1:].astype(np.int32)
        if rule == "from-a":
            chroma = ca
        elif rule == "from-b":
            chroma = cb
        else:
            wa, wb = np.abs(ca - 128), np.abs(cb - 128)
            num, den = ca * wa + cb * wb, wa + wb
            # exact integer floor == numpy float->uint8 truncation of the float quotient
            chroma = np.where(den > 0, num // np.maximum(den, 1), 128)
        ycc = np.concatenate([_to_u8(y)[..., None].astype(np.int32), chroma], axis=-1)
        return (ycrcb_to_rgb_u8(ycc.astype(np.uint8)).astype(np.float32) / np.float32(255.0)).astype(np.float32)

    ca = _ycrcb_float(np.clip(a.astype(np.float64), 0.0, 1.0))[..., 1:]
    cb = _ycrcb_float(np.clip(b.astype(np.float64), 0.0, 1.0))[..., 1:]
    if rule == "from-a":
        chroma = ca
    elif rule == "from-b":
        chroma = cb
    else:
        wa, wb = np.abs(ca - 0.5), np.abs(cb - 0.5)
        wa, wb = np.where(wa < 1e-9, 0.0, wa), np.where(wb < 1e-9, 0.0, wb)  # gray: exactly neutral
        den = wa + wb
        chroma = np.where(den > 0, (ca * wa + cb * wb) / np.where(den > 0, den, 1.0), 0.5)
    ycc = np.concatenate([np.clip(y.astype(np.float64), 0.0, 1.0)[..., None], chroma], axis=-1)
    return np.clip(_rgb_float(ycc), 0.0, 1.0).astype(np.float32)
