"""Geometric transforms between frames, and their JSON file format.

Convention: a transform is a 3x3 float64 matrix ``M`` that maps **reference-frame pixel
coordinates** ``(x, y, 1)`` (pixel centres at integers, x to the right, y down) to the
coordinates of the same scene point in the **source frame** (homogeneous; divide by the third
component). Warping a source into the reference frame samples it at ``M @ (x, y, 1)`` (OpenCV's
``warpPerspective(..., WARP_INVERSE_MAP)``). The reference frame's own transform is the identity.

JSON file (``--save-transforms`` / ``--transforms``)::

    {"format": "unifuse-transforms", "version": 1,
     "motion": "homography", "reference": 1,            # 0-based index of the reference frame
     "size": [W, H],                                      # reference size (output size)
     "frames": [{"source": "a.jpg", "size": [W, H], "matrix": [[...], [...], [...]],
                 "method": "ecc", "score": 0.97}, ...]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, InputMismatchError

__all__ = ["MOTIONS", "FrameTransform", "Registration", "corner_error", "save_transforms", "load_transforms"]

#: motion models, from the fewest to the most parameters
MOTIONS: tuple[str, ...] = ("translation", "euclidean", "affine", "homography")
FORMAT = "unifuse-transforms"


@dataclass
class FrameTransform:
    """Where one source frame sits relative to the reference.

    Attributes:
        matrix: float64 ``(3, 3)``, reference pixel -> source pixel (see module doc).
        source: file name (or ``"#k"`` for in-memory frames).
        size: ``(W, H)`` of the source frame.
        method: ``"identity"`` (the reference), ``"ecc"``, ``"features+ecc"`` or ``"file"``.
        score: final ECC correlation coefficient (``None`` when not measured).
    """

    matrix: np.ndarray
    source: str = ""
    size: tuple[int, int] = (0, 0)
    method: str = "ecc"
    score: float | None = None


@dataclass
class Registration:
    """Transforms of every frame of a stack (``frames[reference]`` is the identity)."""

    motion: str
    reference: int
    size: tuple[int, int]
    frames: list[FrameTransform] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "format": FORMAT, "version": 1, "motion": self.motion, "reference": self.reference,
            "size": list(self.size),
            "frames": [{"source": f.source, "size": list(f.size), "matrix": np.asarray(f.matrix, float).tolist(),
                        "method": f.method, "score": f.score} for f in self.frames],
        }

    @classmethod
    def from_json(cls, obj: dict, where: str = "transforms") -> "Registration":
        try:
            if obj.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            frames = []
            for i, f in enumerate(obj["frames"]):
                m = np.asarray(f["matrix"], dtype=np.float64)
                if m.shape != (3, 3) or not np.isfinite(m).all() or abs(m[2, 2]) < 1e-12:
                    raise ValueError(f"frame {i}: matrix must be a finite 3x3 array")
                frames.append(FrameTransform(m / m[2, 2], str(f.get("source", "")), tuple(int(v) for v in f["size"]),
                                             "file", f.get("score")))
            reg = cls(str(obj["motion"]), int(obj["reference"]), tuple(int(v) for v in obj["size"]), frames)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: invalid transforms file: {exc}") from None
        if not 0 <= reg.reference < len(reg.frames):
            raise ConfigError(f"{where}: invalid transforms file: reference {reg.reference} out of range")
        return reg

    def check_frames(self, sizes: Sequence[tuple[int, int]], where: str = "transforms") -> None:
        """Refuse a file written for another stack (frame count or sizes differ)."""
        if len(sizes) != len(self.frames):
            raise InputMismatchError(f"{where}: holds {len(self.frames)} transforms but the stack has {len(sizes)} frames")
        for i, (s, f) in enumerate(zip(sizes, self.frames)):
            if tuple(s) != tuple(f.size):
                raise InputMismatchError(f"{where}: frame {i + 1} is {s[0]}x{s[1]} but the file was made for "
                                         f"{f.size[0]}x{f.size[1]} ({f.source})")


def save_transforms(path: str | Path, reg: Registration) -> Path:
    """Write ``reg`` as JSON atomically."""
    from ..io.atomic import atomic_write_text

    p = Path(path)
    atomic_write_text(p, json.dumps(reg.to_json(), indent=1) + "\n")
    return p


def load_transforms(path: str | Path) -> Registration:
    p = Path(path)
    try:
        obj = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: transforms file not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p}: cannot read transforms file: {exc}") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{p}: invalid transforms file: not a JSON object")
    return Registration.from_json(obj, str(p))


def apply_h(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Map ``(K, 2)`` points through the homogeneous ``(3, 3)`` matrix ``m``."""
    p = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ np.asarray(m, float).T
    return p[:, :2] / p[:, 2:3]


def corner_error(m_est: np.ndarray, m_true: np.ndarray, size: tuple[int, int], grid: int = 8) -> tuple[float, float]:
    """Mean and max distance (pixels) between two transforms over a ``grid x grid`` lattice of the ``(W, H)`` frame."""
    w, h = size
    xs, ys = np.meshgrid(np.linspace(0, w - 1, grid), np.linspace(0, h - 1, grid))
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    d = np.linalg.norm(apply_h(m_est, pts) - apply_h(m_true, pts), axis=1)
    return float(d.mean()), float(d.max())


def describe(m: np.ndarray) -> str:
    """Short human description: shift, rotation, scale of a transform."""
    m = np.asarray(m, float)
    a = m[:2, :2]
    rot = math.degrees(math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1]))
    scale = math.sqrt(abs(np.linalg.det(a)))
    return f"shift ({m[0, 2]:+.1f}, {m[1, 2]:+.1f}) px, rotation {rot:+.2f} deg, scale {scale:.3f}"
