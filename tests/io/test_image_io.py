"""Tests for unifuse.io.image: reading/writing 8/16-bit images as float arrays."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from unifuse.errors import ConfigError, ImageReadError
from unifuse.io import as_loaded_image, read_image, to_float_array, write_image

RNG = np.random.default_rng(1234)


def _u8(shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _u16(shape):
    return RNG.integers(0, 65536, shape, dtype=np.uint16)


# --------------------------------------------------------------------------- a test-only PNG encoder
# Writes 16-bit PNGs with every filter type (None/Sub/Up/Average/Paeth, chosen per row) so
# that reading exercises the full PNG filter set, independently of our own writer.


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _png16_all_filters(arr: np.ndarray, colour_type: int) -> bytes:
    h, w = arr.shape[:2]
    ch = 1 if arr.ndim == 2 else arr.shape[2]
    raw = arr.astype(">u2").reshape(h, w * ch).view(np.uint8).astype(np.int32)
    bpp = 2 * ch
    left = np.zeros_like(raw)
    left[:, bpp:] = raw[:, :-bpp]
    up = np.zeros_like(raw)
    up[1:] = raw[:-1]
    upleft = np.zeros_like(raw)
    upleft[1:, bpp:] = raw[:-1, :-bpp]
    preds = [np.zeros_like(raw), left, up, (left + up) // 2, _paeth(left, up, upleft)]
    types = np.arange(h) % 5
    filtered = np.empty_like(raw)
    for t in range(5):  # 5 filter types, vectorised over the rows using each
        rows = types == t
        filtered[rows] = (raw[rows] - preds[t][rows]) % 256
    data = np.concatenate([types[:, None], filtered], axis=1).astype(np.uint8).tobytes()

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
def test_read_8bit_gray_and_rgb_exact(tmp_path, ext):
    gray, rgb = _u8((17, 23)), _u8((17, 23, 3))
    Image.fromarray(gray).save(tmp_path / f"g{ext}")
    Image.fromarray(rgb).save(tmp_path / f"c{ext}")
    g, c = read_image(tmp_path / f"g{ext}"), read_image(tmp_path / f"c{ext}")
    assert g.data.dtype == np.float32 and g.data.shape == (17, 23) and g.bit_depth == 8 and g.is_gray
    assert c.data.shape == (17, 23, 3) and c.bit_depth == 8 and not c.is_gray
    np.testing.assert_array_equal(np.rint(g.data * 255).astype(np.uint8), gray)
    np.testing.assert_array_equal(np.rint(c.data * 255).astype(np.uint8), rgb)
    assert c.path == str(tmp_path / f"c{ext}")


def test_read_16bit_gray_png_and_tiff(tmp_path):
    gray = _u16((9, 14))
    for ext in (".png", ".tif"):
        Image.fromarray(gray).save(tmp_path / f"g{ext}")
        im = read_image(tmp_path / f"g{ext}")
        assert im.bit_depth == 16 and im.data.shape == (9, 14) and im.is_gray
        np.testing.assert_array_equal(np.rint(im.data.astype(np.float64) * 65535).astype(np.uint16), gray)


@pytest.mark.parametrize("colour_type,channels", [(2, 3), (6, 4), (4, 2)])
def test_read_16bit_colour_png_full_precision(tmp_path, colour_type, channels):
    arr = _u16((21, 13, channels))
    (tmp_path / "x.png").write_bytes(_png16_all_filters(arr, colour_type))
    im = read_image(tmp_path / "x.png")
    assert im.bit_depth == 16
    got = np.rint(im.data.astype(np.float64) * 65535).astype(np.uint16)
    if channels == 2:  # LA: luminance kept, alpha dropped
        np.testing.assert_array_equal(got, arr[..., 0])
    else:  # RGB(A): alpha dropped
        np.testing.assert_array_equal(got, arr[..., :3])


def test_16bit_rgb_png_and_tiff_roundtrip(tmp_path):
    arr = _u16((11, 19, 3))
    data = arr.astype(np.float64) / 65535
    for ext in (".png", ".tiff"):
        write_image(tmp_path / f"x{ext}", data, bit_depth=16)
        im = read_image(tmp_path / f"x{ext}")
        assert im.bit_depth == 16 and im.data.shape == (11, 19, 3)
        np.testing.assert_array_equal(np.rint(im.data.astype(np.float64) * 65535).astype(np.uint16), arr)


def test_16bit_files_readable_by_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    arr = _u16((8, 5, 3))
    for ext in (".png", ".tif"):
        write_image(tmp_path / f"x{ext}", arr / 65535.0, bit_depth=16)
        got = cv2.imread(str(tmp_path / f"x{ext}"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got[..., ::-1], arr)
        # and files written by OpenCV (adaptive PNG filters, LZW TIFF) read back exactly
        cv2.imwrite(str(tmp_path / f"cv{ext}"), np.ascontiguousarray(arr[..., ::-1]))
        im = read_image(tmp_path / f"cv{ext}")
        np.testing.assert_array_equal(np.rint(im.data.astype(np.float64) * 65535).astype(np.uint16), arr)
    # uncompressed TIFF in many strips
    tall = _u16((300, 7, 3))
    cv2.imwrite(str(tmp_path / "strips.tif"), np.ascontiguousarray(tall[..., ::-1]), [cv2.IMWRITE_TIFF_COMPRESSION, 1])
    im = read_image(tmp_path / "strips.tif")
    np.testing.assert_array_equal(np.rint(im.data.astype(np.float64) * 65535).astype(np.uint16), tall)


def test_alpha_palette_la_bilevel(tmp_path):
    rgba = _u8((6, 7, 4))
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    im = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(np.rint(im.data * 255).astype(np.uint8), rgba[..., :3])

    la = _u8((6, 7, 2))
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    im = read_image(tmp_path / "la.png")
    assert im.data.shape == (6, 7)
    np.testing.assert_array_equal(np.rint(im.data * 255).astype(np.uint8), la[..., 0])

    pal = Image.fromarray(_u8((6, 7, 3))).quantize(8)
    pal.save(tmp_path / "p.png")
    im = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(np.rint(im.data * 255).astype(np.uint8), np.asarray(pal.convert("RGB")))

    Image.fromarray(_u8((6, 7)) > 127).save(tmp_path / "b.png")
    im = read_image(tmp_path / "b.png")
    assert set(np.unique(im.data)) <= {0.0, 1.0} and im.data.shape == (6, 7)


def test_rgb_file_with_equal_channels_is_gray(tmp_path):
    g = _u8((10, 12))
    Image.fromarray(np.stack([g] * 3, -1)).save(tmp_path / "x.png")
    im = read_image(tmp_path / "x.png")
    assert im.is_gray and im.data.shape == (10, 12, 3)
    np.testing.assert_array_equal(im.gray(), g / np.float32(255))


def test_tno_infrared_is_gray(data_dir):
    path = data_dir / "ivf" / "tno" / "ir" / "01.png"
    if not path.exists():
        pytest.skip(f"{path} not present")
    im = read_image(path)
    assert im.is_gray and im.data.ndim == 3 and im.bit_depth == 8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    rgb = _u8((5, 9, 3))
    src = Image.fromarray(rgb)
    exif = src.getexif()
    exif[0x0112] = orientation
    src.save(tmp_path / "o.png", exif=exif)
    with Image.open(tmp_path / "o.png") as ref_im:
        ref = np.asarray(ImageOps.exif_transpose(ref_im).convert("RGB"))
    im = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(np.rint(im.data * 255).astype(np.uint8), ref)


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="missing.png: file not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    with pytest.raises(ImageReadError, match="junk.png: not a recognised image"):
        read_image(tmp_path / "junk.png")
    Image.fromarray(_u8((64, 64, 3))).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png: cannot decode"):
        read_image(tmp_path / "cut.png")
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(ImageReadError, match="float.tif: .*not supported"):
        read_image(tmp_path / "float.tif")
    for exc in ImageReadError, :
        try:
            read_image(tmp_path / "cut.png")
        except exc as e:
            assert "\n" not in str(e)


# --------------------------------------------------------------------------- writing


def test_write_quantises_by_rounding_and_clamps(tmp_path):
    data = np.array([[-0.5, 0.0, 0.1, 0.498], [0.502, 0.999, 1.0, 7.0]], np.float32)
    write_image(tmp_path / "q.png", data)
    got = np.asarray(Image.open(tmp_path / "q.png"))
    # by hand: 0.1*255 = 25.5 -> 26 (round half to even), 0.498*255 = 126.99 -> 127, 0.502*255 = 128.01 -> 128
    np.testing.assert_array_equal(got, [[0, 0, 26, 127], [128, 255, 255, 255]])
    u8 = np.array([[0, 7], [200, 255]], np.uint8)
    write_image(tmp_path / "u8.png", u8)  # integer arrays are scaled from their own range
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "u8.png")), u8)
    write_image(tmp_path / "q16.png", data, bit_depth=16)
    got = np.asarray(Image.open(tmp_path / "q16.png"))
    np.testing.assert_array_equal(got, [[0, 0, 6554, 32636], [32899, 65469, 65535, 65535]])


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".jpg"])
def test_write_read_roundtrip(tmp_path, ext):
    smooth = np.linspace(0, 1, 24 * 32 * 3, dtype=np.float32).reshape(24, 32, 3)
    out = write_image(tmp_path / f"sub/dir/x{ext}", smooth)
    assert out.exists()
    back = read_image(out).data
    tol = 0.04 if ext == ".jpg" else 0.5 / 255 + 1e-7
    assert np.abs(back - smooth).max() <= tol
    assert [p.name for p in out.parent.iterdir()] == [f"x{ext}"]  # no temporary left behind


def test_write_is_atomic_replace(tmp_path):
    target = tmp_path / "x.png"
    write_image(target, np.zeros((4, 4), np.float32))
    write_image(target, np.ones((4, 4), np.float32))
    assert read_image(target).data.min() == 1.0
    assert sorted(os.listdir(tmp_path)) == ["x.png"]


def test_write_errors(tmp_path):
    with pytest.raises(ConfigError, match="8-bit only"):
        write_image(tmp_path / "x.jpg", np.zeros((4, 4)), bit_depth=16)
    with pytest.raises(ConfigError, match="unsupported output extension"):
        write_image(tmp_path / "x.xyz", np.zeros((4, 4)))
    with pytest.raises(ConfigError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2)))
    with pytest.raises(ConfigError):
        write_image(tmp_path / "x.png", np.zeros((4, 4)), bit_depth=12)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- in-memory conversion


def test_to_float_array_accepts_all_kinds(tmp_path):
    rgb = _u8((5, 6, 3))
    ref = rgb.astype(np.float32) / 255
    np.testing.assert_array_equal(to_float_array(rgb), ref)
    np.testing.assert_array_equal(to_float_array(Image.fromarray(rgb)), ref)
    np.testing.assert_array_equal(to_float_array(torch.from_numpy(rgb).permute(2, 0, 1)), ref)
    np.testing.assert_array_equal(to_float_array(torch.from_numpy(ref).permute(2, 0, 1)[None]), ref)
    np.testing.assert_array_equal(to_float_array(ref.astype(np.float64)), ref)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    np.testing.assert_array_equal(to_float_array(tmp_path / "x.png"), ref)
    np.testing.assert_array_equal(to_float_array(str(tmp_path / "x.png")), ref)
    u16 = _u16((3, 4))
    li = as_loaded_image(u16)
    assert li.bit_depth == 16 and li.is_gray and li.path is None
    np.testing.assert_array_equal(li.data, u16.astype(np.float32) / 65535)
    assert to_float_array(np.zeros((3, 4, 1), np.uint8)).shape == (3, 4)
    assert to_float_array(np.zeros((3, 4, 4), np.uint8)).shape == (3, 4, 3)


def test_to_float_array_rejects_bad_input():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        to_float_array(np.full((3, 3), 255.0))
    with pytest.raises(ConfigError, match="shape"):
        to_float_array(np.zeros((3, 3, 5), np.uint8))
    with pytest.raises(ConfigError, match="dtype"):
        to_float_array(np.zeros((3, 3), np.int64))
    with pytest.raises(ConfigError, match="type"):
        to_float_array(42)
    with pytest.raises(ImageReadError):
        to_float_array(Path("/nonexistent/file.png"))
