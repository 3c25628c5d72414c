"""Reading and writing images as float arrays in ``[0, 1]``.

Representation used throughout unifuse (and by :func:`unifuse.fuse`):

* a gray image is a float32 numpy array ``(H, W)``;
* a colour image is a float32 numpy array ``(H, W, 3)`` in RGB order;
* values are in ``[0, 1]``: an 8-bit sample ``v`` becomes ``v / 255`` and a 16-bit sample
  ``v / 65535``, so writing back at the same bit depth is lossless.

:func:`read_image` reads PNG, JPEG, BMP, TIFF (and the other formats Pillow recognises),
8- and 16-bit, gray / RGB / RGBA / palette / LA / CMYK, and applies the EXIF orientation.
**Alpha channels are dropped** (the colour values are kept as stored, not composited on a
background). 16-bit colour PNG and TIFF files keep their full 16-bit precision (Pillow on
its own would cut them to 8 bits). Multi-frame files (GIF, multi-page TIFF) give their first
frame.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .atomic import create_temp
from ..errors import ConfigError, ImageReadError, UnifuseError

__all__ = ["LoadedImage", "read_image", "write_image", "to_float_array", "as_loaded_image", "WRITE_FORMATS"]

#: extension -> (Pillow format name, supported bit depths) for :func:`write_image`
WRITE_FORMATS: dict[str, tuple[str, tuple[int, ...]]] = {
    ".png": ("PNG", (8, 16)),
    ".jpg": ("JPEG", (8,)),
    ".jpeg": ("JPEG", (8,)),
    ".bmp": ("BMP", (8,)),
    ".tif": ("TIFF", (8, 16)),
    ".tiff": ("TIFF", (8, 16)),
}

JPEG_QUALITY = 95

_EXIF_ORIENTATION = 0x0112


@dataclass
class LoadedImage:
    """An image read from disk (or converted from memory).

    Attributes:
        data: float32 ``(H, W)`` (gray file) or ``(H, W, 3)`` (RGB file) in ``[0, 1]``.
        bit_depth: 8 or 16, the precision of the stored samples.
        path: the file it came from (``None`` for in-memory data).
        is_gray: ``True`` for gray files and also for RGB files whose three channels are
            identical (e.g. TNO infrared/visible images stored as RGB).
    """

    data: np.ndarray
    bit_depth: int
    path: str | None = None
    is_gray: bool = False

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    def __repr__(self) -> str:
        return (
            f"LoadedImage(shape={tuple(self.data.shape)}, bit_depth={self.bit_depth}, "
            f"is_gray={self.is_gray}, path={self.path!r})"
        )

    def gray(self) -> np.ndarray:
        """``(H, W)`` view for gray images (first channel of an equal-channel RGB file)."""
        if not self.is_gray:
            raise ValueError("image is not gray")
        return self.data if self.data.ndim == 2 else self.data[..., 0]


# ----------------------------------------------------------------------------- reading


def _channels_equal(data: np.ndarray) -> bool:
    return data.ndim == 2 or bool(np.array_equal(data[..., 0], data[..., 1]) and np.array_equal(data[..., 1], data[..., 2]))


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag to an ``(H, W[, C])`` array (same as ``ImageOps.exif_transpose``)."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:  # transpose
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:  # rotate 90 clockwise
        arr = np.rot90(arr, -1)
    elif orientation == 7:  # transverse
        arr = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:  # rotate 90 counter-clockwise
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def _tile_rawmode(tile: Any) -> str | None:
    args = tile.args if hasattr(tile, "args") else tile[3]
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _with_rawmode(tile: Any, rawmode: str) -> Any:
    args = tile.args if hasattr(tile, "args") else tile[3]
    new_args = rawmode if isinstance(args, str) else (rawmode,) + tuple(args[1:])
    if hasattr(tile, "_replace"):
        return tile._replace(args=new_args)
    return (tile[0], tile[1], tile[2], new_args)


def _wide_16bit_rawmode(im: Image.Image) -> str | None:
    """Rawmode such as ``'RGB;16B'`` when Pillow would cut 16-bit colour samples to 8 bits."""
    if im.mode not in ("RGB", "RGBA", "LA") or not im.tile:
        return None
    rawmode = _tile_rawmode(im.tile[0])
    if rawmode and rawmode.split(";")[0] in ("RGB", "RGBA", "LA") and rawmode.endswith((";16B", ";16L", ";16N")):
        return rawmode
    return None


def _read_wide_16bit(path: str, rawmode: str) -> np.ndarray:
    """Read a 16-bit colour image at full precision.

    Pillow decodes these (inflate, PNG filters, TIFF compression) correctly but unpacks only
    one byte of each sample. Decoding twice, once unpacking the high byte and once the low
    byte, recovers the exact 16-bit values.
    """
    if rawmode.startswith("LA;"):
        # 4 bytes per pixel (L_hi, L_lo, A_hi, A_lo for big-endian PNG): the plain 8-bit RGBA
        # unpacker has the same pixel size, so it hands over all four bytes at once
        with Image.open(path) as im:
            im.tile = [_with_rawmode(t, "RGBA") for t in im.tile]
            im.load()
            raw = np.asarray(im, dtype=np.uint8).astype(np.uint16)
        hi, lo = (0, 1) if rawmode.endswith("B") or (rawmode.endswith("N") and sys.byteorder == "big") else (1, 0)
        return (raw[..., hi] << 8) | raw[..., lo]
    order = rawmode[-1]
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    swapped = "B" if order == "L" else "L"
    base = rawmode[: -1]
    planes = []
    for letter in (order, swapped):
        with Image.open(path) as im:
            im.tile = [_with_rawmode(t, base + letter) for t in im.tile]
            im.load()
            planes.append(np.asarray(im, dtype=np.uint8).astype(np.uint16))
    return (planes[0] << 8) | planes[1]


def _pil_to_array(im: Image.Image) -> tuple[np.ndarray, int]:
    """Decode a Pillow image to ``(uint8 or uint16 array (H, W) / (H, W, 3), bit_depth)``.

    Alpha is dropped. Raises ``ValueError`` for unsupported sample types.
    """
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16), 16
    if mode == "I":
        arr = np.asarray(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError("32-bit integer samples are not supported (8- and 16-bit only)")
        return arr.astype(np.uint16), 16
    if mode == "F":
        raise ValueError("floating-point samples are not supported (8- and 16-bit only)")
    if mode in ("1", "L"):
        return np.asarray(im.convert("L")), 8
    if mode in ("LA", "La", "PA", "P"):
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode == "PA":
            im = im.convert("RGBA")
        else:
            return np.asarray(im.convert("LA"))[..., 0].copy(), 8
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im), 8


def read_image(path: str | os.PathLike) -> LoadedImage:
    """Read an image file as float32 in ``[0, 1]``.

    Args:
        path: image file (PNG, JPEG, BMP, TIFF, ... anything Pillow recognises).

    Returns:
        :class:`LoadedImage`: ``data`` ``(H, W)`` for gray files and ``(H, W, 3)`` RGB
        otherwise (alpha dropped), EXIF orientation applied.

    Raises:
        ImageReadError: missing, unreadable, corrupt, truncated or unsupported file.
    """
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise ImageReadError(f"{name}: file not found")
    if p.is_dir():
        raise ImageReadError(f"{name}: is a directory, not an image file")
    try:
        with Image.open(p) as im:
            wide = _wide_16bit_rawmode(im)  # before anything that loads the pixels
            try:
                orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            except Exception:  # broken EXIF block: ignore orientation
                orientation = 1
            if wide is None:
                im.load()
                arr, bits = _pil_to_array(im)
        if wide is not None:
            arr, bits = _read_wide_16bit(str(p), wide), 16
            if arr.ndim == 3 and arr.shape[2] == 4:  # RGBA: drop alpha
                arr = arr[..., :3]
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a recognised image format") from None
    except PermissionError:
        raise ImageReadError(f"{name}: permission denied") from None
    except (ValueError, OSError, SyntaxError, EOFError, struct.error, zlib.error, Image.DecompressionBombError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageReadError(f"{name}: cannot decode image (corrupt, truncated or unsupported): {reason}") from None
    if arr.ndim != 2 and not (arr.ndim == 3 and arr.shape[2] == 3):
        raise ImageReadError(f"{name}: unsupported image layout {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"{name}: image is empty ({arr.shape[1]}x{arr.shape[0]})")
    arr = _orient(arr, orientation)
    data = (arr.astype(np.float32) / np.float32(2**bits - 1)).astype(np.float32)
    return LoadedImage(data=data, bit_depth=bits, path=name, is_gray=_channels_equal(arr))


# ----------------------------------------------------------------------------- in-memory conversion


def _from_numpy(x: np.ndarray, what: str) -> tuple[np.ndarray, int]:
    arr = np.asarray(x)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    elif arr.ndim == 3 and arr.shape[2] == 2:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ConfigError(f"{what}: expected an image array (H, W) or (H, W, 3), got shape {tuple(np.shape(x))}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255), 8
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535), 16
    if arr.dtype == np.bool_:
        return arr.astype(np.float32), 8
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if out.size:
            if not np.isfinite(out).all():
                raise ConfigError(f"{what}: float image contains NaN or infinite values")
            lo, hi = float(out.min()), float(out.max())
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise ConfigError(f"{what}: float image values must be in [0, 1], got [{lo:g}, {hi:g}] (divide 8-bit data by 255)")
        return np.clip(out, 0.0, 1.0), 8
    raise ConfigError(f"{what}: unsupported array dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])")


def as_loaded_image(x: Any, what: str = "image") -> LoadedImage:
    """Convert a path, PIL image, numpy array or torch tensor to a :class:`LoadedImage`.

    * path (``str`` / ``os.PathLike``): :func:`read_image`;
    * PIL image: decoded like a file (alpha dropped, 16-bit gray kept);
    * numpy array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped):
      ``uint8`` -> ``/255`` (bit depth 8), ``uint16`` -> ``/65535`` (16), float must already
      be in ``[0, 1]`` (bit depth 8);
    * torch tensor ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` with C in {1, 3} (channels
      first), ``uint8`` or float in ``[0, 1]``.

    ``what`` names the argument in error messages.
    """
    if isinstance(x, (str, os.PathLike)):
        return read_image(x)
    if isinstance(x, Image.Image):
        try:
            arr, bits = _pil_to_array(x)
        except ValueError as exc:
            raise ConfigError(f"{what}: {exc}") from None
        data = arr.astype(np.float32) / np.float32(2**bits - 1)
        return LoadedImage(data=data, bit_depth=bits, path=None, is_gray=_channels_equal(arr))
    if type(x).__module__.startswith("torch"):
        import torch

        if isinstance(x, torch.Tensor):
            t = x.detach().cpu()
            if t.dim() == 4:
                if t.shape[0] != 1:
                    raise ConfigError(f"{what}: expected a single image, got a batch of {t.shape[0]}")
                t = t[0]
            if t.dim() == 3:
                if t.shape[0] not in (1, 3, 4):
                    raise ConfigError(f"{what}: expected a (C, H, W) tensor with C in 1, 3, got shape {tuple(x.shape)}")
                t = t.permute(1, 2, 0)
            if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
                t = t.float()
            x = t.numpy()
    if isinstance(x, np.ndarray):
        data, bits = _from_numpy(x, what)
        return LoadedImage(data=np.ascontiguousarray(data), bit_depth=bits, path=None, is_gray=_channels_equal(data))
    raise ConfigError(f"{what}: cannot use an object of type {type(x).__name__} as an image")


def to_float_array(x: Any, what: str = "image") -> np.ndarray:
    """Float32 ``(H, W)`` / ``(H, W, 3)`` array in ``[0, 1]`` from a path, PIL image, array or tensor.

    See :func:`as_loaded_image` for the accepted inputs.
    """
    return as_loaded_image(x, what).data


# ----------------------------------------------------------------------------- writing


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _encode_png16(arr: np.ndarray) -> bytes:
    """Encode a uint16 ``(H, W)`` or ``(H, W, 3)`` array as a 16-bit PNG (Pillow cannot write 16-bit RGB).

    Every row uses the PNG 'Sub' filter, computed vectorised.
    """
    h, w = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    colour_type = 0 if channels == 1 else 2
    raw = arr.astype(">u2").reshape(h, w * channels).view(np.uint8).reshape(h, w * channels * 2)
    bpp = channels * 2
    sub = raw.copy()
    sub[:, bpp:] = raw[:, bpp:] - raw[:, :-bpp]  # uint8 arithmetic wraps mod 256
    rows = np.concatenate([np.ones((h, 1), np.uint8), sub], axis=1)  # filter type 1 = Sub
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def _encode_tiff16_rgb(arr: np.ndarray) -> bytes:
    """Encode a uint16 ``(H, W, 3)`` array as an uncompressed little-endian baseline TIFF."""
    h, w = arr.shape[:2]
    pixels = arr.astype("<u2").tobytes()
    entries = [  # (tag, type, count, value) ; type 3 = SHORT, 4 = LONG
        (256, 4, 1, w),  # ImageWidth
        (257, 4, 1, h),  # ImageLength
        (258, 3, 3, None),  # BitsPerSample -> offset to [16, 16, 16]
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 2),  # Photometric: RGB
        (273, 4, 1, None),  # StripOffsets
        (277, 3, 1, 3),  # SamplesPerPixel
        (278, 4, 1, h),  # RowsPerStrip
        (279, 4, 1, len(pixels)),  # StripByteCounts
        (284, 3, 1, 1),  # PlanarConfig: contiguous
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    bps_offset = ifd_offset + ifd_size
    data_offset = bps_offset + 6
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        if tag == 258:
            value = bps_offset
        elif tag == 273:
            value = data_offset
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0)
    out += struct.pack("<HHH", 16, 16, 16)
    out += pixels
    return bytes(out)


def write_image(path: str | os.PathLike, data: Any, bit_depth: int = 8) -> Path:
    """Write an image atomically (temporary file in the same folder, then ``os.replace``).

    Args:
        path: destination; the format comes from the extension (``.png``, ``.jpg``/``.jpeg``
            (quality 95), ``.bmp``, ``.tif``/``.tiff``). Missing parent folders are created.
        data: float ``(H, W)`` gray or ``(H, W, 3)`` RGB in ``[0, 1]`` (also ``(H, W, 1)``);
            values are clamped, multiplied by ``2**bit_depth - 1`` and rounded. ``uint8`` /
            ``uint16`` arrays are accepted and scaled from their own range.
        bit_depth: 8, or 16 (PNG and TIFF only).

    Returns:
        The written path.

    Raises:
        ConfigError: unknown extension, unsupported bit depth for the format, bad shape.
        UnifuseError: the file cannot be written.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in WRITE_FORMATS:
        raise ConfigError(f"{p}: unsupported output extension {ext or '(none)'!r}; use one of {', '.join(sorted(WRITE_FORMATS))}")
    fmt, depths = WRITE_FORMATS[ext]
    if bit_depth not in (8, 16):
        raise ConfigError(f"{p}: bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth not in depths:
        raise ConfigError(f"{p}: {fmt} files are 8-bit only; use .png or .tif for 16-bit output")
    raw = data.detach().cpu().float().numpy() if hasattr(data, "detach") else np.asarray(data)
    if np.issubdtype(raw.dtype, np.integer) or raw.dtype == np.bool_:  # uint8 / uint16 arrays are scaled
        raw = _from_numpy(raw, str(p))[0]
    arr = np.asarray(raw, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConfigError(f"{p}: image data must be (H, W) or (H, W, 3), got shape {arr.shape}")
    scale = float(2**bit_depth - 1)
    q = np.rint(np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0) * scale)
    q = q.astype(np.uint8 if bit_depth == 8 else np.uint16)

    try:
        fd, tmp = create_temp(p)  # umask-based permissions, unlike mkstemp
    except OSError as exc:
        raise UnifuseError(f"{p}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if bit_depth == 16 and q.ndim == 3:
                fh.write(_encode_png16(q) if fmt == "PNG" else _encode_tiff16_rgb(q))
            else:
                im = Image.fromarray(q)  # uint8 -> 'L'/'RGB', uint16 (H, W) -> 'I;16'
                kwargs: dict[str, Any] = {}
                if fmt == "JPEG":
                    kwargs["quality"] = JPEG_QUALITY
                im.save(fh, format=fmt, **kwargs)
        os.replace(tmp, p)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise UnifuseError(f"{p}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p
