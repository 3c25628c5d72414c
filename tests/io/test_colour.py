"""Tests for unifuse.io.colour: PIL-exact luma, OpenCV-exact YCrCb, chroma restoration rules."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from unifuse.errors import ConfigError, InputMismatchError
from unifuse.io import (
    restore_colour,
    rgb_to_luma,
    rgb_to_ycrcb,
    rgb_to_ycrcb_u8,
    ycrcb_to_rgb,
    ycrcb_to_rgb_u8,
)

RNG = np.random.default_rng(7)


def _u8(shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


# every 8-bit RGB triple whose components are multiples of 5 plus the extremes: 53^3 colours
_V = np.unique(np.r_[np.arange(0, 256, 5), 1, 254, 255]).astype(np.uint8)
GRID = np.stack(np.meshgrid(_V, _V, _V, indexing="ij"), -1).reshape(-1, 1, 3)


def test_luma_matches_pillow_bit_exact():
    for rgb in (_u8((97, 131, 3)), GRID.reshape(-1, _V.size, 3)):
        ref = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("L"))
        got = rgb_to_luma(rgb / np.float32(255))
        assert got.dtype == np.float32
        np.testing.assert_array_equal(np.rint(got * 255).astype(np.uint8), ref)


def test_luma_16bit_float_weights_and_gray_passthrough():
    rgb = RNG.random((4, 5, 3))
    np.testing.assert_allclose(rgb_to_luma(rgb, 16), rgb @ np.array([0.299, 0.587, 0.114]), atol=1e-6)
    g = RNG.random((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(rgb_to_luma(g), g)


def test_ycrcb_u8_hand_computed():
    # pure red: Y = 0.299*255 = 76.2 -> 76, Cr = 128 + 0.713*(255-76) = 255.6 -> saturates 255,
    # Cb = 128 + 0.564*(0-76) = 85.1 -> 85 ; white/black/gray have neutral chroma 128
    rgb = np.array([[255, 0, 0], [255, 255, 255], [0, 0, 0], [77, 77, 77]], np.uint8)
    np.testing.assert_array_equal(rgb_to_ycrcb_u8(rgb), [[76, 255, 85], [255, 128, 128], [0, 128, 128], [77, 128, 128]])


def test_ycrcb_u8_close_to_float_bt601():
    rgb = GRID[:, 0].astype(np.float64)
    y = rgb @ [0.299, 0.587, 0.114]
    ref = np.stack([y, 128 + 0.713 * (rgb[:, 0] - y), 128 + 0.564 * (rgb[:, 2] - y)], -1)
    got = rgb_to_ycrcb_u8(GRID[:, 0]).astype(np.float64)
    assert np.abs(got - np.clip(ref, 0, 255)).max() <= 1.0


def test_ycrcb_matches_opencv_bit_exact():
    cv2 = pytest.importorskip("cv2")
    rgb = np.ascontiguousarray(GRID.reshape(-1, _V.size, 3))
    ref = cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2YCrCb)
    np.testing.assert_array_equal(rgb_to_ycrcb_u8(rgb), ref)
    # every (Y, Cr, Cb) on the grid, including out-of-gamut combinations
    ref_back = cv2.cvtColor(rgb, cv2.COLOR_YCrCb2BGR)[..., ::-1]
    np.testing.assert_array_equal(ycrcb_to_rgb_u8(rgb), ref_back)


def test_ycrcb_float_roundtrips():
    rgb = _u8((20, 30, 3)) / np.float32(255)
    back8 = ycrcb_to_rgb(rgb_to_ycrcb(rgb))
    assert np.abs(back8 - rgb).max() <= 3 / 255  # OpenCV 8-bit round trip is within a few levels
    x = RNG.random((20, 30, 3))
    ycc = rgb_to_ycrcb(x, bit_depth=16)
    np.testing.assert_allclose(ycc[..., 0], x @ [0.299, 0.587, 0.114], atol=1e-6)
    np.testing.assert_allclose(ycrcb_to_rgb(ycc, bit_depth=16), x, atol=2e-6)
    g = RNG.random((3, 4))
    np.testing.assert_allclose(rgb_to_ycrcb(g, 16)[..., 1:], 0.5, atol=1e-7)
    np.testing.assert_array_equal(rgb_to_ycrcb(g)[..., 1:], np.float32(128 / 255))


def _official_y2rgb_cv2(cv2, fused_y_u8, a_u8, b_u8):
    """Spec section 10 step 5, written with OpenCV and numpy float32 as in the official script."""
    ya = cv2.cvtColor(np.ascontiguousarray(a_u8[..., ::-1]), cv2.COLOR_BGR2YCrCb).astype(np.float32)
    yb = cv2.cvtColor(np.ascontiguousarray(b_u8[..., ::-1]), cv2.COLOR_BGR2YCrCb).astype(np.float32)
    out = []
    for ch in (1, 2):
        ca, cb = ya[..., ch], yb[..., ch]
        wa, wb = np.abs(ca - 128), np.abs(cb - 128)
        den = wa + wb
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(den == 0, np.float32(128), (ca * wa + cb * wb) / den)
        out.append(c.astype(np.uint8))
    ycc = np.stack([fused_y_u8, out[0], out[1]], -1)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)[..., ::-1]


def test_weighted_rule_matches_official_y2rgb():
    cv2 = pytest.importorskip("cv2")
    a, b = _u8((33, 47, 3)), _u8((33, 47, 3))
    b[:5] = b[:5, :, :1]  # gray rows in B: chroma-neutral
    b[5:8] = a[5:8]  # identical rows
    a[8:10] = 128  # both neutral somewhere: chroma 128
    b[8:10] = 60
    fy = RNG.random((33, 47)).astype(np.float32)
    fy_u8 = np.rint(fy * 255).astype(np.uint8)
    ref = _official_y2rgb_cv2(cv2, fy_u8, a, b)
    got = restore_colour(fy, a / np.float32(255), b / np.float32(255))
    np.testing.assert_array_equal(np.rint(got * 255).astype(np.uint8), ref)


def test_weighted_rule_hand_computed_chroma():
    # A: Cr/Cb from pure red (255, 85); B: white (128, 128) -> B has weight 0, chroma = A's.
    fy = np.full((1, 1), 100 / 255, np.float32)
    red, white = np.array([[[1.0, 0, 0]]]), np.ones((1, 1, 3))
    out = restore_colour(fy, red, white)
    np.testing.assert_array_equal(np.rint(out * 255), ycrcb_to_rgb_u8(np.array([[[100, 255, 85]]], np.uint8)))
    # cyan (0, 255, 255): Y = 0.587*255 + 0.114*255 = 178.8 -> 179, Cr = 128 + 0.713*(0-179) = 0.4 -> 0,
    # Cb = 128 + 0.564*(255-179) = 170.9 -> 171
    assert tuple(rgb_to_ycrcb_u8(np.array([0, 255, 255], np.uint8))) == (179, 0, 171)
    # red + cyan: Cr = (255*127 + 0*128)/255 = 127 ; Cb = (85*43 + 171*43)/86 = 128
    out = restore_colour(fy, red, np.array([[[0.0, 1.0, 1.0]]]))
    np.testing.assert_array_equal(np.rint(out * 255), ycrcb_to_rgb_u8(np.array([[[100, 127, 128]]], np.uint8)))
    # truncation, not rounding: yellow (255, 255, 0) -> Y 226, Cr 149, Cb 1 (by the same formulas);
    # red + yellow: Cr = (255*127 + 149*21)/148 = 239.96 -> 239 ; Cb = (85*43 + 1*127)/170 = 22.2 -> 22
    assert tuple(rgb_to_ycrcb_u8(np.array([255, 255, 0], np.uint8))) == (226, 149, 1)
    out = restore_colour(fy, red, np.array([[[1.0, 1.0, 0.0]]]))
    np.testing.assert_array_equal(np.rint(out * 255), ycrcb_to_rgb_u8(np.array([[[100, 239, 22]]], np.uint8)))
    assert not np.array_equal(ycrcb_to_rgb_u8(np.array([100, 239, 22], np.uint8)), ycrcb_to_rgb_u8(np.array([100, 240, 22], np.uint8)))


def test_gray_sources_and_rules():
    fy = RNG.random((6, 7)).astype(np.float32)
    colour = _u8((6, 7, 3)) / np.float32(255)
    gray = RNG.random((6, 7)).astype(np.float32)
    # a gray source is chroma-neutral: weighted == chroma of the colour source
    np.testing.assert_array_equal(restore_colour(fy, colour, gray), restore_colour(fy, colour, gray, "from-a"))
    np.testing.assert_array_equal(restore_colour(fy, gray, colour), restore_colour(fy, gray, colour, "from-b"))
    # two gray sources: output is gray with the fused luma
    out = restore_colour(fy, gray, gray)
    np.testing.assert_array_equal(out, np.repeat(np.rint(fy * 255)[..., None] / np.float32(255), 3, -1).astype(np.float32))
    g = restore_colour(fy, colour, colour, "gray")
    assert g.shape == (6, 7)
    # from-a with the source's own luma gives back the source (8-bit, within OpenCV rounding)
    back = restore_colour(rgb_to_luma(colour), colour, gray, "from-a")
    assert np.abs(back - colour).max() <= 4 / 255


def test_16bit_path_is_float_and_exact():
    x = RNG.random((8, 9, 3))
    other = RNG.random((8, 9))
    back = restore_colour(rgb_to_luma(x, 16), x, other, "from-a", bit_depth=16)
    np.testing.assert_allclose(back, x, atol=2e-6)
    assert not np.allclose(back * 255, np.rint(back * 255))  # not quantised to 8 bits
    # weighted with a gray partner equals the colour source's chroma
    np.testing.assert_allclose(
        restore_colour(rgb_to_luma(x, 16), x, other, bit_depth=16),
        back,
        atol=1e-7,
    )
    # two colour sources: chroma between the two, weighted towards the more saturated one
    # (moderate colours so that nothing leaves the RGB gamut and gets clipped)
    x = 0.35 + 0.3 * x
    y = rgb_to_luma(x, 16)
    ca = rgb_to_ycrcb(x, 16)[..., 1:].astype(np.float64)
    cb = np.full_like(ca, 0.53)
    b_rgb = ycrcb_to_rgb(np.concatenate([y[..., None], cb], -1), 16)
    cb = rgb_to_ycrcb(b_rgb, 16)[..., 1:].astype(np.float64)
    wa, wb = np.abs(ca - 0.5), np.abs(cb - 0.5)
    expected_c = (ca * wa + cb * wb) / (wa + wb)
    out = restore_colour(y, x, b_rgb, bit_depth=16)
    np.testing.assert_allclose(rgb_to_ycrcb(out, 16)[..., 1:], expected_c, atol=1e-5)


def test_errors():
    fy = np.zeros((4, 4), np.float32)
    with pytest.raises(ConfigError, match="chroma rule"):
        restore_colour(fy, fy, fy, "nope")
    with pytest.raises(InputMismatchError, match="source B is 5x4"):
        restore_colour(fy, fy, np.zeros((4, 5, 3)))
    with pytest.raises(InputMismatchError):
        rgb_to_ycrcb(np.zeros((4, 4, 2)))
