"""Register one frame to a reference: intensity-invariant ECC, coarse to fine, features as fallback.

Method (same modality: exposure brackets, focal stacks):

1. Both lumas are **histogram-equalised** (rank transform to [0, 1]), which is invariant to any
   monotonic tone change, so differently exposed frames look alike except where clipped.
   Clipped pixels (luma <= 1/255 or >= 254/255) get no weight: they are left out through
   ECC's masks (both images' with OpenCV >= 4.13, else the moving image's).
2. **Coarse to fine**: both are reduced (``cv2.pyrDown``) until the shorter side is below
   ``coarsest`` px (default 48); OpenCV's ECC runs at every level, starting from the identity
   at the coarsest level, the estimate scaled up between levels. Affine and homography
   models are staged: a Euclidean (rotation + shift) estimate first, then the full model on
   the two finest levels, which keeps the extra parameters from drifting where few pixels
   carry texture (e.g. a mostly clipped frame). Estimation
   stops at ``max_side`` px (default 1600; the transform is scaled to full resolution).
3. If ECC fails to converge or the result is implausible, **features** (SIFT on the
   equalised images, ratio test, RANSAC) give an initial transform that ECC refines.
4. The result is accepted only if plausible: final ECC correlation >= ``min_score``,
   scale in ``[1/max_scale, max_scale]``, shear/anisotropy and perspective small, shift below
   ``max_shift`` of the image size. Otherwise :class:`AlignmentError` (one line, never a
   silently warped frame).

Cross-modality pairs (infrared/visible, CT/MRI) have no monotonic intensity relation; ECC on
equalised images usually fails the plausibility checks there, and the error says that such
pairs cannot be aligned automatically (pass ``--transforms FILE`` with known transforms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import UnifuseError
from .transform import MOTIONS

__all__ = ["AlignmentError", "RegistrationConfig", "register_pair", "register_frames", "equalise", "require_cv2"]


class AlignmentError(UnifuseError):
    """Registration failed or gave an implausible transform."""


def require_cv2():
    """Import OpenCV lazily (only alignment needs it) with a one-line error if missing."""
    try:
        import cv2
    except ImportError:
        raise UnifuseError("alignment needs OpenCV: pip install opencv-python-headless") from None
    return cv2


@dataclass(frozen=True)
class RegistrationConfig:
    """Options of :func:`register_pair` (defaults used by ``unifuse fuse --align``).

    Attributes:
        coarsest: the pyramid is reduced until the shorter side is below this (pixels).
        max_side: estimation resolution cap (longer side, pixels); the result is scaled up.
        blur: Gaussian pre-filter size of ECC at every level (odd, pixels).
        iterations: ECC iterations per level; ``eps``: ECC convergence threshold.
        min_score: smallest accepted final ECC correlation coefficient.
        max_scale: accepted scale range ``[1/max_scale, max_scale]``.
        max_shift: largest accepted shift, as a fraction of the longer side.
        max_aniso: largest accepted ratio of the singular values of the linear part.
        max_perspective: largest accepted change of the homogeneous scale over the frame.
        features: try SIFT feature matching + RANSAC when ECC alone fails.
        min_inliers: smallest number of RANSAC inliers accepted from feature matching.
    """

    coarsest: int = 48
    blur: int = 5
    max_side: int = 1600
    iterations: int = 100
    eps: float = 1e-6
    min_score: float = 0.7
    max_scale: float = 1.25
    max_shift: float = 0.25
    max_aniso: float = 1.15
    max_perspective: float = 0.2
    features: bool = True
    min_inliers: int = 12


def equalise(y: np.ndarray, bins: int = 4096) -> np.ndarray:
    """Histogram equalisation of a float luma ``(H, W)`` in [0, 1] -> float32 in [0, 1] (rank transform)."""
    q = np.clip((np.asarray(y, np.float32) * (bins - 1) + 0.5).astype(np.int64), 0, bins - 1)
    hist = np.bincount(q.ravel(), minlength=bins).astype(np.float64)
    cdf = np.cumsum(hist) - 0.5 * hist  # mid-rank: ties map to the centre of their run
    return (cdf / max(q.size, 1)).astype(np.float32)[q]


def _valid_mask(y: np.ndarray) -> np.ndarray:
    """uint8 mask of pixels that are not clipped (some texture can be there)."""
    return ((y > 1.5 / 255) & (y < 253.5 / 255)).astype(np.uint8)


def _scale_matrix(m: np.ndarray, s: float) -> np.ndarray:
    """Matrix for coordinates scaled by ``s`` (x' = s x): ``S M S^-1``."""
    S = np.diag([s, s, 1.0])
    return S @ m @ np.diag([1 / s, 1 / s, 1.0])


def _to_cv(m: np.ndarray, motion: str) -> np.ndarray:
    return (m / m[2, 2]).astype(np.float32) if motion == "homography" else (m[:2] / m[2, 2]).astype(np.float32)


def _from_cv(w: np.ndarray) -> np.ndarray:
    m = np.eye(3)
    m[: w.shape[0]] = w
    return m


def _project(m: np.ndarray, motion: str) -> np.ndarray:
    """Closest transform of the requested motion class (used to turn a feature estimate into an ECC start)."""
    m = m / m[2, 2]
    out = np.eye(3)
    if motion == "translation":
        out[:2, 2] = m[:2, 2]
    elif motion == "euclidean":
        a = m[:2, :2]
        th = math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])
        out[:2, :2] = [[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]]
        out[:2, 2] = m[:2, 2]
    elif motion == "affine":
        out[:2] = m[:2]
    else:
        out = m
    return out


def check_plausible(m: np.ndarray, size: tuple[int, int], cfg: RegistrationConfig) -> str | None:
    """``None`` if ``m`` (reference -> source, for a ``(W, H)`` reference) is plausible, else the reason."""
    w, h = size
    m = m / m[2, 2]
    if not np.isfinite(m).all():
        return "non-finite transform"
    sv = np.linalg.svd(m[:2, :2], compute_uv=False)
    scale = math.sqrt(abs(sv[0] * sv[1]))
    if not (1 / cfg.max_scale <= scale <= cfg.max_scale):
        return f"scale {scale:.3f} outside [{1 / cfg.max_scale:.2f}, {cfg.max_scale:.2f}]"
    if np.linalg.det(m[:2, :2]) <= 0 or sv[0] / max(sv[1], 1e-12) > cfg.max_aniso:
        return f"strong shear or mirroring (singular values {sv[0]:.3f}, {sv[1]:.3f})"
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
    z = corners @ m[2]
    if z.min() <= 0 or z.max() / z.min() > 1 + cfg.max_perspective:
        return "strong perspective change"
    centre = m @ np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
    shift = np.hypot(centre[0] / centre[2] - (w - 1) / 2, centre[1] / centre[2] - (h - 1) / 2)
    if shift > cfg.max_shift * max(w, h):
        return f"shift {shift:.0f} px larger than {cfg.max_shift:.0%} of the image"
    return None


def _ecc_pyramid(cv2, ref: np.ndarray, mov: np.ndarray, ref_mask: np.ndarray, mask: np.ndarray, motion: str,
                 init: np.ndarray, cfg: RegistrationConfig, start_level: int | None = None) -> tuple[np.ndarray, float]:
    """Coarse-to-fine ECC -> (3x3 transform at the resolution of ``ref``, final correlation).

    ``ref_mask`` / ``mask``: uint8 validity (unclipped) masks of the reference / moving image; with
    OpenCV >= 4.13 both are used (``findTransformECCWithMask``), before that only the moving one.
    """
    refs, movs, masks, ref_masks = [ref], [mov], [mask], [ref_mask]
    while min(refs[-1].shape) >= 2 * cfg.coarsest and min(movs[-1].shape) >= 2 * cfg.coarsest:
        refs.append(cv2.pyrDown(refs[-1]))
        movs.append(cv2.pyrDown(movs[-1]))
        masks.append(cv2.resize(masks[-1], movs[-1].shape[::-1], interpolation=cv2.INTER_NEAREST))
        ref_masks.append(cv2.resize(ref_masks[-1], refs[-1].shape[::-1], interpolation=cv2.INTER_NEAREST))
    both = hasattr(cv2, "findTransformECCWithMask")
    top = len(refs) - 1 if start_level is None else min(start_level, len(refs) - 1)
    m = _scale_matrix(init, 0.5**top)
    cv_motion = {"translation": cv2.MOTION_TRANSLATION, "euclidean": cv2.MOTION_EUCLIDEAN,
                 "affine": cv2.MOTION_AFFINE, "homography": cv2.MOTION_HOMOGRAPHY}[motion]
    score = float("nan")
    for lvl in range(top, -1, -1):
        iters = cfg.iterations if lvl > 0 else max(cfg.iterations // 2, 20)
        crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iters, cfg.eps)
        try:
            if both:
                score, w = cv2.findTransformECCWithMask(refs[lvl], movs[lvl], ref_masks[lvl], masks[lvl],
                                                        _to_cv(m, motion), cv_motion, crit, cfg.blur)
            else:  # pragma: no cover - OpenCV < 4.13
                score, w = cv2.findTransformECC(refs[lvl], movs[lvl], _to_cv(m, motion), cv_motion, crit, masks[lvl],
                                                cfg.blur)
        except cv2.error:
            raise AlignmentError(f"ECC did not converge (pyramid level {lvl})") from None
        m = _from_cv(w)
        if lvl > 0:
            m = _scale_matrix(m, 2.0)
    return m, float(score)


def _feature_init(cv2, ref: np.ndarray, mov: np.ndarray, motion: str, cfg: RegistrationConfig) -> np.ndarray:
    """SIFT (ORB on old OpenCV) matches + RANSAC -> rough transform (reference -> source) or AlignmentError."""
    u8 = lambda x: np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
    if hasattr(cv2, "SIFT_create"):  # in the main module since OpenCV 4.4
        det, norm = cv2.SIFT_create(nfeatures=4000), cv2.NORM_L2
    else:  # pragma: no cover - older OpenCV
        det, norm = cv2.ORB_create(nfeatures=4000), cv2.NORM_HAMMING
    k1, d1 = det.detectAndCompute(u8(ref), None)
    k2, d2 = det.detectAndCompute(u8(mov), None)
    if d1 is None or d2 is None or len(k1) < cfg.min_inliers or len(k2) < cfg.min_inliers:
        raise AlignmentError("too few features to match")
    matches = cv2.BFMatcher(norm).knnMatch(d1, d2, k=2)
    good = [p[0] for p in matches if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < cfg.min_inliers:
        raise AlignmentError(f"too few feature matches ({len(good)} < {cfg.min_inliers})")
    src = np.float32([k1[g.queryIdx].pt for g in good])
    dst = np.float32([k2[g.trainIdx].pt for g in good])
    if motion == "homography":
        h, inl = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
    else:
        est = cv2.estimateAffine2D if motion == "affine" else cv2.estimateAffinePartial2D
        a, inl = est(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        h = None if a is None else _from_cv(a)
    n_in = 0 if inl is None else int(inl.sum())
    if h is None or n_in < cfg.min_inliers:
        raise AlignmentError(f"too few RANSAC inliers ({n_in} < {cfg.min_inliers})")
    return _project(np.asarray(h, float), motion)


def register_pair(ref_y: np.ndarray, mov_y: np.ndarray, motion: str = "homography",
                  config: RegistrationConfig = RegistrationConfig()) -> tuple[np.ndarray, float, str]:
    """Estimate the transform from the reference frame to a source frame.

    Args:
        ref_y, mov_y: float luma ``(H, W)`` / ``(H', W')`` in [0, 1] (sizes may differ).
        motion: one of :data:`unifuse.align.transform.MOTIONS`.
        config: :class:`RegistrationConfig`.
    Returns:
        ``(M, score, method)``: float64 ``(3, 3)`` reference pixel -> source pixel, final ECC
        correlation, ``"ecc"`` or ``"features+ecc"``.
    Raises:
        AlignmentError: no convergence or an implausible result (one-line message).
    """
    if motion not in MOTIONS:
        raise AlignmentError(f"unknown motion {motion!r}; choose one of {', '.join(MOTIONS)}")
    cv2 = require_cv2()
    ref_y, mov_y = np.asarray(ref_y, np.float32), np.asarray(mov_y, np.float32)
    s = min(1.0, config.max_side / max(*ref_y.shape, *mov_y.shape))
    if s < 1.0:
        rs = lambda x: cv2.resize(x, (max(1, round(x.shape[1] * s)), max(1, round(x.shape[0] * s))),  # noqa: E731
                                  interpolation=cv2.INTER_AREA)
        ref_y, mov_y = rs(ref_y), rs(mov_y)
    ref, mov = equalise(ref_y), equalise(mov_y)
    mask, ref_mask = _valid_mask(mov_y), _valid_mask(ref_y)
    size = (ref.shape[1], ref.shape[0])
    reasons = []
    attempts = [("ecc", None)] + ([("features+ecc", "features")] if config.features else [])
    for method, init_kind in attempts:
        try:
            if init_kind == "features":
                init = _feature_init(cv2, ref, mov, motion, config)
                m, score = _ecc_pyramid(cv2, ref, mov, ref_mask, mask, motion, init, config, start_level=1)
            elif motion in ("affine", "homography"):  # staged: a rigid estimate first, then the full model
                m, _ = _ecc_pyramid(cv2, ref, mov, ref_mask, mask, "euclidean", np.eye(3), config)
                m, score = _ecc_pyramid(cv2, ref, mov, ref_mask, mask, motion, m, config, start_level=1)
            else:
                m, score = _ecc_pyramid(cv2, ref, mov, ref_mask, mask, motion, np.eye(3), config)
        except AlignmentError as exc:
            reasons.append(f"{method}: {exc}")
            continue
        why = check_plausible(m, size, config)
        if why is None and not score >= config.min_score:
            why = f"correlation {score:.2f} < {config.min_score}"
        if why is None:
            return _scale_matrix(m, 1.0 / s), score, method
        reasons.append(f"{method}: {why}")
    raise AlignmentError("; ".join(reasons))


def register_frames(luma: Callable[[int], np.ndarray], n: int, reference: int, motion: str = "homography",
                    config: RegistrationConfig = RegistrationConfig(), chain: bool = False,
                    names: Sequence[str] | None = None,
                    progress: Callable[[str], None] | None = None) -> list[tuple[np.ndarray, float, str]]:
    """Register every frame of a stack to ``reference``.

    Args:
        luma: frame index -> float luma ``(H, W)`` in [0, 1] (made on demand; at most three are alive).
        n, reference: number of frames, index of the reference.
        chain: ``False``: every frame is registered to the reference directly (exposure brackets:
            equalisation makes any two exposures comparable). ``True``: each frame is registered
            to its neighbour on the way to the reference and the transforms are composed
            (focal stacks: neighbouring focus settings look most alike, while a far focus setting
            blurs what is sharp in the reference; measured in docs/stacks.md).
        names: frame names for error messages.
    Returns:
        ``[(M, score, method)]`` per frame, ``M`` reference pixel -> frame pixel; the reference
        gets ``(identity, 1.0, "identity")``, chained frames the lowest score along their chain.
    Raises:
        AlignmentError: naming the frame (and the neighbour it was registered to).
    """
    names = list(names) if names is not None else [f"frame {k + 1}" for k in range(n)]
    out: list = [None] * n
    out[reference] = (np.eye(3), 1.0, "identity")
    ref_y = luma(reference)
    for side in (range(reference + 1, n), range(reference - 1, -1, -1)):
        prev_y, prev = ref_y, reference
        for k in side:
            if progress:
                progress(f"aligning {names[k]}")
            y = luma(k)
            target_y, target = (prev_y, prev) if chain else (ref_y, reference)
            try:
                m, score, method = register_pair(target_y, y, motion, config)
            except AlignmentError as exc:
                raise AlignmentError(f"cannot align {names[k]} to {names[target]} ({motion}): {exc}") from None
            if chain and target != reference:
                m0, s0, _ = out[target]
                m, score, method = m @ m0, min(score, s0), f"{method} (chained)"
            why = check_plausible(m, (ref_y.shape[1], ref_y.shape[0]), config) if chain else None
            if why is not None:
                raise AlignmentError(f"cannot align {names[k]} to {names[reference]} ({motion}): chained transform: {why}")
            out[k] = (m, score, method)
            prev_y, prev = y, k
    return out
