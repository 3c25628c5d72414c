"""The frames of a stack, kept compact: each source is stored at its own bit depth.

A 9-frame 12-megapixel 8-bit bracket takes 9 x 36 MB as ``uint8`` instead of 9 x 144 MB as
float32; a frame is turned into float only while it is being used
(:meth:`Frame.float`, :meth:`Frame.luma`).

Rules checked by :func:`load_frames`:

* at least two sources (``InputMismatchError`` otherwise);
* unreadable frames: the :class:`~unifuse.errors.ImageReadError` of the first bad one, naming it;
* **mixed bit depths** (8- and 16-bit frames): every frame is converted to the highest
  depth (exactly: ``v8 * 257``) and the output is written at that depth; this is reported in
  :attr:`FrameStack.notes`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InputMismatchError
from ..io import as_loaded_image, rgb_to_luma

__all__ = ["Frame", "FrameStack", "load_frames"]


@dataclass
class Frame:
    """One source.

    Attributes:
        data: ``uint8`` / ``uint16`` (read from a file or given as integers) or float32 in
            [0, 1], ``(H, W)`` or ``(H, W, 3)``.
        bit_depth: 8 or 16.
        name: file path or ``"#k"``.
        is_gray: gray file, or RGB with equal channels.
    """

    data: np.ndarray
    bit_depth: int
    name: str
    is_gray: bool

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)``."""
        return int(self.data.shape[1]), int(self.data.shape[0])

    def float(self) -> np.ndarray:
        """float32 ``(H, W[, 3])`` in [0, 1]."""
        d = self.data
        if d.dtype == np.uint8:
            return d.astype(np.float32) / np.float32(255)
        if d.dtype == np.uint16:
            return d.astype(np.float32) / np.float32(65535)
        return d

    def luma(self) -> np.ndarray:
        """float32 ``(H, W)`` luma, as the pair pipeline (Pillow's ``convert('L')`` for 8-bit RGB)."""
        d = self.data
        if d.ndim == 2:
            return self.float()
        if d.dtype == np.uint8:  # Pillow's integer formula straight from the 8-bit samples, in bands of rows
            out = np.empty(d.shape[:2], np.float32)
            for r in range(0, d.shape[0], 256):
                q = d[r:r + 256].astype(np.int32)
                lum = (q[..., 0] * 19595 + q[..., 1] * 38470 + q[..., 2] * 7471 + 0x8000) >> 16
                out[r:r + 256] = lum.astype(np.float32) / np.float32(255)
            return out
        return rgb_to_luma(self.float(), self.bit_depth)

    def rgb(self) -> np.ndarray:
        """``data`` as ``(H, W, 3)`` (same dtype)."""
        return np.repeat(self.data[..., None], 3, axis=-1) if self.data.ndim == 2 else self.data


@dataclass
class FrameStack:
    """Frames plus what was decided while loading them."""

    frames: list[Frame]
    bit_depth: int
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    def sizes(self) -> list[tuple[int, int]]:
        return [f.size for f in self.frames]


def _compact(data: np.ndarray, bits: int, exact: bool) -> np.ndarray:
    """float32 data known to be ``k / (2^bits - 1)`` -> uint8/uint16; other data stays float32."""
    if not exact:
        return np.ascontiguousarray(data, dtype=np.float32)
    scale = 2**bits - 1
    return np.rint(data * scale).astype(np.uint8 if bits == 8 else np.uint16)


def load_frames(sources: Sequence[Any]) -> FrameStack:
    """Read / convert every source (paths, arrays, PIL images, tensors) into a :class:`FrameStack`."""
    if isinstance(sources, (str, os.PathLike)) or len(sources) < 2:
        n = 1 if isinstance(sources, (str, os.PathLike)) else len(sources)
        raise InputMismatchError(f"a stack needs at least two images, got {n}")
    frames = []
    for k, src in enumerate(sources):
        name = str(src) if isinstance(src, (str, os.PathLike)) else f"#{k + 1}"
        img = as_loaded_image(src, f"source {k + 1}")
        exact = isinstance(src, (str, os.PathLike)) or (
            isinstance(src, np.ndarray) and src.dtype in (np.uint8, np.uint16))
        frames.append(Frame(_compact(img.data, img.bit_depth, exact), img.bit_depth, name, img.is_gray))
        del img
    depths = sorted({f.bit_depth for f in frames})
    stack = FrameStack(frames, max(depths))
    if len(depths) > 1:
        for f in frames:
            if f.bit_depth != stack.bit_depth:
                f.data = f.data.astype(np.uint16) * np.uint16(257) if f.data.dtype == np.uint8 else f.data
                f.bit_depth = stack.bit_depth
        stack.notes.append("mixed bit depths (8 and 16): 8-bit frames converted to 16-bit; output is 16-bit")
    return stack


def check_sizes(stack: FrameStack) -> None:
    """Refuse frames of different sizes (one line naming the first that differs)."""
    ref = stack.frames[0]
    for f in stack.frames[1:]:
        if f.size != ref.size:
            raise InputMismatchError(
                f"frame sizes differ ({ref.name} is {ref.size[0]}x{ref.size[1]}, {f.name} is {f.size[0]}x{f.size[1]}); "
                f"pass --align MODE to register them to a reference or --resize-to a|b")
