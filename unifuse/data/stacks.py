"""Synthetic stacks with ground truth: exposure brackets, focal stacks, hand-held versions.

Made from one sharp, well-exposed photograph (the ground truth), e.g. the built-in ones
(:func:`unifuse.data.samples.clean_images`), with the degradations of
:mod:`unifuse.data.synthetic`:

* :func:`exposure_bracket`: ``n`` frames re-exposed by evenly spaced stops
  (:func:`~unifuse.data.synthetic.simulate_exposure`: gamma tone curve, clipping, 8-bit);
* :func:`focal_stack`: the image split into ``n`` depth layers (a smooth random field cut
  at its quantiles, soft edges); frame ``k`` is focused on layer ``k``, layer ``j`` blurred by
  ``sigma_step * |j - k|`` (capped at ``max_sigma``), the N-frame version of
  :func:`~unifuse.data.synthetic.compose_focus_pair`;
* :func:`handheld`: every frame except the reference moved by a seeded random homography
  (rotation, shift, slight scale and perspective), as a hand-held camera would; the true
  transforms (reference pixel -> frame pixel, :mod:`unifuse.align.transform`) are returned.

Frames are float32 ``(H, W, 3)`` in [0, 1], ordered as a camera would shoot them (brackets
from the darkest to the brightest, focal stacks from near to far).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .synthetic import gaussian_blur, simulate_exposure

__all__ = ["Stack", "exposure_bracket", "focal_stack", "handheld", "random_homography", "make_stack"]


@dataclass
class Stack:
    """Frames of one scene with their ground truth.

    Attributes:
        name: short name, e.g. ``"mef5_chelsea"``.
        task: ``"MEF"`` (exposure bracket) or ``"MFF"`` (focal stack).
        frames: float32 ``(H, W, 3)`` arrays in [0, 1].
        ground_truth: float32 ``(H, W, 3)``: the photograph (in the reference frame).
        reference: index of the frame the others are registered to (hand-held stacks).
        transforms: true ``(3, 3)`` transforms reference -> frame (identity when static).
        stops / sigmas: the exposure of each frame (stops) or its focused layer.
    """

    name: str
    task: str
    frames: list[np.ndarray]
    ground_truth: np.ndarray
    reference: int = 0
    transforms: list[np.ndarray] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1)[None]


def _a(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32))


def default_span(n: int) -> float:
    """Half-range of the bracket in stops: 2 for up to 5 frames, 3 above (9 frames: 0.75-stop steps)."""
    return 2.0 if n <= 5 else 3.0


def exposure_bracket(img: np.ndarray, n: int, span: float | None = None, gamma: float = 2.2,
                     bits: int | None = 8) -> tuple[list[np.ndarray], list[float]]:
    """``n`` frames at stops ``linspace(-span, +span, n)`` (darkest first) -> (frames, stops)."""
    if n < 2:
        raise ConfigError(f"a bracket needs at least 2 frames, got {n}")
    span = default_span(n) if span is None else span
    stops = [float(s) for s in np.linspace(-span, span, n)]
    x = _t(img)
    frames = [_a(simulate_exposure(x, 2.0**s, gamma, bits)) for s in stops]
    return frames, stops


def depth_layers(h: int, w: int, n: int, rng: np.random.Generator, grid: int = 4, edge_sigma: float = 1.5) -> np.ndarray:
    """Soft layer memberships ``(n, H, W)`` (sum 1 per pixel): a smooth random field cut at its n-quantiles."""
    field_ = torch.from_numpy(rng.random((1, 1, grid, grid), dtype=np.float32))
    field_ = F.interpolate(field_, size=(h, w), mode="bicubic", align_corners=False)[0, 0].numpy()
    edges = np.quantile(field_, np.linspace(0, 1, n + 1)[1:-1])
    layer = np.searchsorted(edges, field_)
    onehot = torch.from_numpy((layer[None] == np.arange(n)[:, None, None]).astype(np.float32))[:, None]
    soft = gaussian_blur(onehot, edge_sigma)[:, 0]
    return (soft / soft.sum(0, keepdim=True).clamp_min(1e-6)).numpy()


def focal_stack(img: np.ndarray, n: int, rng: np.random.Generator, sigma_step: float = 1.5,
                max_sigma: float = 6.0) -> list[np.ndarray]:
    """``n`` frames, frame ``k`` sharp on depth layer ``k`` (see module doc)."""
    if n < 2:
        raise ConfigError(f"a focal stack needs at least 2 frames, got {n}")
    h, w = img.shape[:2]
    masks = torch.from_numpy(depth_layers(h, w, n, rng))[:, None]  # (n, 1, H, W)
    x = _t(img)
    bank = [x] + [gaussian_blur(x, min(max_sigma, sigma_step * d)) for d in range(1, n)]  # blur by distance
    frames = []
    for k in range(n):
        f = sum(masks[j:j + 1] * bank[abs(j - k)] for j in range(n))
        frames.append(_a(f))
    return frames


def random_homography(rng: np.random.Generator, size: tuple[int, int], max_shift: float = 6.0,
                      max_rotation: float = 1.5, max_scale: float = 0.01, perspective: float = 0.0) -> np.ndarray:
    """A hand-held-like transform (reference pixel -> frame pixel) about the image centre.

    Shift up to ``max_shift`` px per axis, rotation up to ``max_rotation`` degrees, scale
    ``1 +- max_scale``, and a perspective tilt changing the homogeneous scale by up to
    ``perspective`` across the frame.
    """
    w, h = size
    cx, cy = (w - 1) / 2, (h - 1) / 2
    u = rng.uniform(-1, 1, 6)
    th = math.radians(max_rotation * u[0])
    s = 1.0 + max_scale * u[1]
    a = np.array([[s * math.cos(th), -s * math.sin(th), 0], [s * math.sin(th), s * math.cos(th), 0], [0, 0, 1]])
    p = np.eye(3)
    p[2, 0], p[2, 1] = perspective * u[4] / w, perspective * u[5] / h
    c = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
    ci = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    t = np.array([[1, 0, max_shift * u[2]], [0, 1, max_shift * u[3]], [0, 0, 1.0]])
    m = t @ c @ p @ a @ ci
    return m / m[2, 2]


def handheld(frames: list[np.ndarray], reference: int, rng: np.random.Generator, quantise: int | None = 8,
             **motion) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Move every frame but ``reference`` by a random homography -> (moved frames, true transforms).

    Frame ``k`` becomes ``moved(M_k x) = frame(x)``: its content sits at ``M_k x``. Borders
    that come from outside the original are reflected (evaluate on an interior crop).
    ``motion``: keyword options of :func:`random_homography`.
    """
    import cv2

    h, w = frames[0].shape[:2]
    out, mats = [], []
    for k, f in enumerate(frames):
        if k == reference:
            out.append(f.copy())
            mats.append(np.eye(3))
            continue
        m = random_homography(rng, (w, h), **motion)
        moved = cv2.warpPerspective(f, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        moved = np.clip(moved, 0, 1)
        if quantise:
            lv = 2**quantise - 1
            moved = np.round(moved * lv) / lv
        out.append(moved.astype(np.float32))
        mats.append(m)
    return out, mats


def make_stack(photo: str, task: str, n: int, seed: int = 0, moving: bool = False, max_side: int | None = None,
               **motion) -> Stack:
    """Build a stack from a built-in photograph (``astronaut``, ``coffee``, ``chelsea``, ``rocket``).

    ``task`` ``"MEF"`` or ``"MFF"``; ``moving`` makes it hand-held (reference = middle
    frame for brackets of 3 or more, first frame otherwise: the default rule of ``--reference``);
    ``max_side`` downscales the photograph (area) first.
    """
    from .samples import clean_images

    photos = clean_images()
    if photo not in photos:
        raise ConfigError(f"unknown photograph {photo!r}; choose one of {', '.join(sorted(photos))}")
    gt = photos[photo]
    if max_side and max(gt.shape[:2]) > max_side:
        s = max_side / max(gt.shape[:2])
        size = (max(8, round(gt.shape[0] * s)), max(8, round(gt.shape[1] * s)))
        gt = _a(F.interpolate(_t(gt), size=size, mode="area"))
    rng = np.random.default_rng(seed)
    if task == "MEF":
        frames, stops = exposure_bracket(gt, n)
        ref = n // 2 if n >= 3 else 0  # the middle exposure (darkest first), as --reference's default
    elif task == "MFF":
        frames, stops = focal_stack(gt, n, rng), []
        ref = 0
    else:
        raise ConfigError(f"task must be MEF or MFF, got {task!r}")
    mats = [np.eye(3) for _ in frames]
    if moving:
        frames, mats = handheld(frames, ref, rng, **motion)
    name = f"{task.lower()}{n}_{photo}" + ("_handheld" if moving else "")
    return Stack(name, task, frames, gt, ref, mats, stops)
