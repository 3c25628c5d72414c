"""Inputs for tasks TITA never trained on: pan-sharpening and medical-like pairs (generalisation).

TITA trains on infrared–visible, multi-exposure and multi-focus pairs only. The pairs here are
built on the fly, deterministically and offline, from what installed packages ship; they are
returned as :class:`~unifuse.data.samples.SamplePair` (``a``, ``b``, ``ground_truth`` or
``None``, ``task``, ``description``, ``color`` = the chroma rule to fuse with, ``labels``).
All arrays are float32 in ``[0, 1]`` holding 8-bit levels (``k / 255``).

**Pan-sharpening** (``task="PAN"``; :func:`make_pansharpening_pair`), from a colour photograph
that scikit-image ships (``coffee``, ``rocket``), resized to 384×256 px:

* ground truth ``(H, W, 3)``: the photograph;
* A = "multispectral" ``(H, W, 3)``: the photograph averaged over ``ratio × ratio`` blocks
  (area downsampling, anti-aliased; ``ratio = 4``), then upsampled back to ``H × W`` with
  bicubic interpolation: right colours, a quarter of the resolution;
* B = "panchromatic" ``(H, W)``: full-resolution brightness. ``pan_coffee`` uses exactly the
  luma of the ground truth (ITU-R 601-2, Pillow's ``convert('L')``, so a perfect luma fusion
  is possible); ``pan_rocket`` uses a different spectral response (0.45 R + 0.45 G + 0.10 B,
  weaker in the blue like real panchromatic bands), so copying it as luma is *not* exact.

Fuse the MS luma with the PAN image and take the colour from the MS image (``color="from-a"``).
Scores against the ground truth: PSNR/SSIM plus SAM (spectral angle, degrees) and ERGAS
(:func:`pansharpening_scores`).

**Medical-like** (``task="MED"``): no medical image ships with the installed packages
(``skimage.data.brain()`` needs a download), so both pairs are **synthetic**, drawn from one
hand-made axial head phantom (:func:`head_phantom`: scalp, skull, cortex with gyri, white
matter, two lateral ventricles, a tumour with surrounding oedema, a calcification),
256×256 px, anti-aliased; they only mimic the *contrast relations* of real scans:

* ``med_ct_mri``: A = CT-like (bone and the calcification bright, soft tissues compressed
  into a narrow gray band, the tumour nearly invisible, mild noise); B = T2-MRI-like (bone
  dark, CSF and tumour/oedema bright, grey/white matter contrast, a smooth bias field and
  noise). Both gray; complementary: the bone and calcification are seen in A, the lesion in B.
* ``med_pet_mri``: A = T1-MRI-like (gray anatomy, white matter bright, CSF dark); B = PET-like
  (uptake map: cortex high, white matter low, a hypermetabolic tumour, blurred with a 6-px
  Gaussian and sampled at 1/4 resolution, shown in the ``hot`` pseudo-colour black → red →
  yellow → white). Fuse with the colour of the PET image (``color="from-b"``).

There is no ground truth for the medical pairs (``ground_truth=None``).

Example::

    from unifuse.data.unseen import list_unseen, load_unseen
    pair = load_unseen("pan_coffee")       # pair.a (256, 384, 3), pair.b (256, 384), pair.ground_truth
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputMismatchError
from ..io import rgb_to_luma
from .samples import SamplePair
from .synthetic import gaussian_blur

__all__ = ["list_unseen", "load_unseen", "load_all_unseen", "make_pansharpening_pair", "pansharpening_scores",
           "head_phantom", "render_tissues", "make_ct_mri_pair", "make_pet_mri_pair", "hot_colormap",
           "TISSUES"]

PAN_SIZE = (256, 384)  # (H, W) of the pan-sharpening photographs
PAN_RATIO = 4
MED_SIZE = 256


def _q8(x: np.ndarray) -> np.ndarray:
    """Round to 8-bit levels, float32 in [0, 1]."""
    return (np.rint(np.clip(x, 0, 1) * 255) / 255).astype(np.float32)


# ------------------------------------------------------------------------------ pan-sharpening
def make_pansharpening_pair(rgb: np.ndarray, ratio: int = PAN_RATIO,
                            pan_weights: Optional[Sequence[float]] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate a pan-sharpening pair from a colour image (Wald's protocol: the image is the truth).

    Args:
        rgb: float ``(H, W, 3)`` in ``[0, 1]``; ``H`` and ``W`` are cropped (bottom/right) to
            multiples of ``ratio``.
        ratio: resolution ratio between the MS and PAN images (>= 2).
        pan_weights: ``None`` for the ITU-R 601-2 luma of the (8-bit) image, exactly as
            :func:`unifuse.io.rgb_to_luma`; or three non-negative weights for R, G, B
            (normalised to sum 1) for another spectral response.
    Returns:
        ``(ms, pan, gt)``: ``ms`` float32 ``(H, W, 3)`` = ``ratio``-block means upsampled
        bicubically (clamped, 8-bit levels); ``pan`` float32 ``(H, W)`` (8-bit levels);
        ``gt`` float32 ``(H, W, 3)``, the cropped input at 8-bit levels.
    """
    x = np.asarray(rgb, dtype=np.float32)
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputMismatchError(f"make_pansharpening_pair: expected (H, W, 3) RGB, got shape {x.shape}")
    ratio = int(ratio)
    if ratio < 2:
        raise ConfigError(f"ratio must be >= 2, got {ratio}")
    h, w = (x.shape[0] // ratio) * ratio, (x.shape[1] // ratio) * ratio
    if h == 0 or w == 0:
        raise InputMismatchError(f"image {x.shape[1]}x{x.shape[0]} is smaller than the ratio {ratio}")
    gt = _q8(x[:h, :w])
    t = torch.from_numpy(np.ascontiguousarray(gt)).permute(2, 0, 1)[None].double()
    low = F.avg_pool2d(t, ratio)
    up = F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    ms = _q8(up[0].permute(1, 2, 0).numpy())
    if pan_weights is None:
        pan = rgb_to_luma(gt, 8)
    else:
        wts = np.asarray(pan_weights, dtype=np.float64)
        if wts.shape != (3,) or (wts < 0).any() or wts.sum() <= 0:
            raise ConfigError(f"pan_weights must be three non-negative numbers, got {pan_weights!r}")
        pan = _q8(gt.astype(np.float64) @ (wts / wts.sum()))
    return ms, pan.astype(np.float32), gt


def pansharpening_scores(fused: np.ndarray, gt: np.ndarray, ratio: int = PAN_RATIO) -> dict[str, float]:
    """Spectral scores of a pan-sharpened RGB image against the ground truth.

    ``SAM_gt``: mean spectral angle between the RGB vectors, in degrees (pixels where either
    vector is zero are skipped; 0 is perfect). ``ERGAS_gt``:
    ``100 / ratio * sqrt(mean_k (RMSE_k / mean_k(gt))^2)`` over the three bands (0 is perfect).
    """
    f = np.asarray(fused, dtype=np.float64).reshape(-1, 3)
    g = np.asarray(gt, dtype=np.float64).reshape(-1, 3)
    nf, ng = np.linalg.norm(f, axis=1), np.linalg.norm(g, axis=1)
    ok = (nf > 0) & (ng > 0)
    cos = np.clip((f[ok] * g[ok]).sum(1) / (nf[ok] * ng[ok]), -1.0, 1.0)
    sam = float(np.degrees(np.arccos(cos)).mean()) if ok.any() else 0.0
    rmse = np.sqrt(((f - g) ** 2).mean(0))
    mean = np.maximum(g.mean(0), 1e-12)
    ergas = float(100.0 / ratio * np.sqrt(((rmse / mean) ** 2).mean()))
    return {"SAM_gt": sam, "ERGAS_gt": ergas}


@functools.lru_cache(maxsize=None)
def _photo(name: str, size: tuple[int, int]) -> np.ndarray:
    import skimage.data
    from PIL import Image

    try:
        rgb = getattr(skimage.data, name)()
    except Exception as exc:  # e.g. a scikit-image build without its bundled data
        raise ConfigError(f"photograph {name!r} is not available from skimage.data: {exc}") from None
    im = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("RGB").resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.float32) / np.float32(255)


# ------------------------------------------------------------------------------ head phantom
#: tissue names of :func:`head_phantom`, in painting order (later ones overwrite earlier ones)
TISSUES = ("scalp", "skull", "grey", "white", "csf", "oedema", "tumour", "calcification")


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, angle: float = 0.0,
             wobble: tuple[float, int] = (0.0, 0)) -> np.ndarray:
    """Boolean mask of a rotated ellipse (normalised coordinates); ``wobble = (amplitude, lobes)``
    modulates the radius like cortical folds."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    y, x = yy - cy, xx - cx
    u, v = (x * c + y * s) / rx, (-x * s + y * c) / ry
    r = np.sqrt(u * u + v * v)
    amp, lobes = wobble
    limit = 1.0 + amp * np.sin(lobes * np.arctan2(v, u)) if amp else 1.0
    return r <= limit


@functools.lru_cache(maxsize=4)
def _phantom(size: int) -> dict[str, np.ndarray]:
    ss = 4  # supersampling per axis for anti-aliased edges
    n = size * ss
    coords = (np.arange(n, dtype=np.float64) + 0.5) / n * 2 - 1
    yy, xx = coords[:, None], coords[None, :]
    head = _ellipse(yy, xx, 0.0, 0.0, 0.92, 0.74)
    skull_out = _ellipse(yy, xx, 0.0, 0.0, 0.86, 0.68)
    brain = _ellipse(yy, xx, 0.01, 0.0, 0.80, 0.62)
    white = _ellipse(yy, xx, 0.02, 0.0, 0.66, 0.49, wobble=(0.07, 14))
    ventricles = (_ellipse(yy, xx, -0.04, -0.12, 0.24, 0.075, angle=-18) |
                  _ellipse(yy, xx, -0.04, 0.12, 0.24, 0.075, angle=18))
    oedema = _ellipse(yy, xx, 0.36, 0.30, 0.17, 0.15, angle=25, wobble=(0.12, 5))
    tumour = _ellipse(yy, xx, 0.37, 0.31, 0.085, 0.075)
    calc = _ellipse(yy, xx, -0.40, -0.28, 0.03, 0.03) | _ellipse(yy, xx, -0.45, -0.22, 0.02, 0.02)
    label = np.full((n, n), -1, np.int8)
    paint = [head, skull_out, brain, white & brain, ventricles, oedema & brain, tumour, calc]
    for k, m in enumerate(paint):
        label[m] = k
    frac = {}
    for k, name in enumerate(TISSUES):
        m = (label == k).astype(np.float32)
        frac[name] = m.reshape(size, ss, size, ss).mean(axis=(1, 3))
    return frac


def head_phantom(size: int = MED_SIZE) -> dict[str, np.ndarray]:
    """Tissue fractions of a synthetic axial head slice: ``{tissue: float32 (size, size) in [0, 1]}``.

    Keys are :data:`TISSUES`; the fractions sum to 1 inside the head and 0 outside (air).
    Made by painting ellipses on a 4× supersampled grid and averaging (anti-aliased edges).
    Geometry in normalised coordinates ([-1, 1], image rows downwards): head 0.92 × 0.74,
    skull inner boundary 0.80 × 0.62, white matter with a 14-lobe folded boundary, two
    ventricles tilted ±18°, a tumour (radius ~0.08) with oedema at the lower right, two small
    calcifications at the upper left.
    """
    if int(size) < 32:
        raise ConfigError(f"phantom size must be >= 32, got {size}")
    return {k: v.copy() for k, v in _phantom(int(size)).items()}


def render_tissues(fractions: dict[str, np.ndarray], intensity: dict[str, float]) -> np.ndarray:
    """``sum_t fraction_t * intensity_t`` (missing tissues count 0; air is 0)."""
    out = None
    for name, frac in fractions.items():
        v = float(intensity.get(name, 0.0)) * frac
        out = v if out is None else out + v
    return np.asarray(out, dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Unit-variance-ish smooth random field (Gaussian-blurred white noise)."""
    z = torch.from_numpy(rng.standard_normal((size, size)).astype(np.float32))[None, None]
    z = gaussian_blur(z, sigma)[0, 0].numpy()
    return z / max(float(z.std()), 1e-8)


# tissue -> intensity tables (0..1); contrast relations only, not calibrated values
_CT = {"scalp": 0.30, "skull": 1.0, "grey": 0.45, "white": 0.40, "csf": 0.25, "oedema": 0.37, "tumour": 0.43,
       "calcification": 0.97}
_T2 = {"scalp": 0.50, "skull": 0.06, "grey": 0.55, "white": 0.34, "csf": 0.95, "oedema": 0.75, "tumour": 0.88,
       "calcification": 0.04}
_T1 = {"scalp": 0.85, "skull": 0.08, "grey": 0.50, "white": 0.72, "csf": 0.12, "oedema": 0.40, "tumour": 0.32,
       "calcification": 0.10}
_PET = {"scalp": 0.04, "skull": 0.02, "grey": 0.55, "white": 0.22, "csf": 0.0, "oedema": 0.15, "tumour": 1.0,
        "calcification": 0.1}


def make_ct_mri_pair(size: int = MED_SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(ct, mri)``: float32 ``(size, size)`` gray images in ``[0, 1]`` (8-bit levels) of :func:`head_phantom`.

    CT-like: table ``_CT`` (bone 1.0, soft tissue 0.25–0.45), 1.5 % Gaussian noise.
    T2-MRI-like: table ``_T2`` (bone 0.06, CSF 0.95), tissue texture (3 % smooth field),
    a smooth multiplicative bias field (±10 %) and 2 % noise. Deterministic in ``seed``.
    """
    frac = head_phantom(size)
    rng = np.random.default_rng([int(seed), 1])
    inside = 1.0 - sum(frac.values()) < 0.5
    soft = frac["grey"] + frac["white"] + frac["oedema"] + frac["tumour"]
    ct = render_tissues(frac, _CT) + 0.015 * rng.standard_normal((size, size)).astype(np.float32) * inside
    texture = 0.03 * _smooth_noise(rng, size, 1.5) * soft
    bias = 1.0 + 0.10 * _smooth_noise(rng, size, size / 4)
    mri = (render_tissues(frac, _T2) + texture) * bias + 0.02 * rng.standard_normal((size, size)).astype(np.float32) * inside
    return _q8(ct), _q8(mri)


def hot_colormap(t: np.ndarray) -> np.ndarray:
    """The ``hot`` pseudo-colour map: ``[0, 1]`` -> RGB (black, red, yellow, white), float32 ``(..., 3)``."""
    t = np.clip(np.asarray(t, dtype=np.float32), 0, 1)
    return np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=-1)


def make_pet_mri_pair(size: int = MED_SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mri, pet_rgb, uptake)`` of :func:`head_phantom`.

    ``mri``: float32 ``(size, size)`` T1-like (table ``_T1``, texture, bias field, noise).
    ``uptake``: float32 ``(size, size)`` in ``[0, 1]``: table ``_PET`` blurred (Gaussian,
    sigma = 6 px at 256 px), averaged over 4×4 blocks and upsampled (bilinear), with 3 %
    noise. ``pet_rgb``: float32 ``(size, size, 3)``: :func:`hot_colormap` of ``uptake``.
    All at 8-bit levels; deterministic in ``seed``.
    """
    frac = head_phantom(size)
    rng = np.random.default_rng([int(seed), 2])
    inside = 1.0 - sum(frac.values()) < 0.5
    soft = frac["grey"] + frac["white"] + frac["oedema"] + frac["tumour"]
    texture = 0.03 * _smooth_noise(rng, size, 1.5) * soft
    bias = 1.0 + 0.08 * _smooth_noise(rng, size, size / 4)
    mri = (render_tissues(frac, _T1) + texture) * bias + 0.02 * rng.standard_normal((size, size)).astype(np.float32) * inside
    u = torch.from_numpy(render_tissues(frac, _PET))[None, None]
    u = gaussian_blur(u, 6.0 * size / 256)
    u = F.interpolate(F.avg_pool2d(u, 4), size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()
    u = np.clip(u * (1 + 0.03 * rng.standard_normal((size, size)).astype(np.float32)), 0, None)
    uptake = _q8(u / max(float(u.max()), 1e-8))
    return _q8(mri), _q8(hot_colormap(uptake)), uptake


# ------------------------------------------------------------------------------ catalogue
def _pan(photo: str, weights: Optional[tuple[float, float, float]], what: str) -> Callable[[], SamplePair]:
    def build() -> SamplePair:
        ms, pan, gt = make_pansharpening_pair(_photo(photo, PAN_SIZE), PAN_RATIO, weights)
        return SamplePair(name=f"pan_{photo}", task="PAN", a=ms, b=pan, ground_truth=gt, color="from-a",
                          labels=("multispectral (1/4 res.)", "panchromatic"),
                          description=(f"Simulated pan-sharpening (task never trained on) from scikit-image's '{photo}' "
                                       f"photograph ({PAN_SIZE[1]}×{PAN_SIZE[0]}): A = colour image averaged over 4×4 "
                                       f"blocks and upsampled (bicubic), B = full-resolution {what}; ground truth = the "
                                       "photograph. Fused luma + colour from A. SAM (degrees) and ERGAS: lower is better."))
    return build


def _ct_mri() -> SamplePair:
    ct, mri = make_ct_mri_pair(MED_SIZE)
    return SamplePair(name="med_ct_mri", task="MED", a=ct, b=mri, ground_truth=None, color="gray",
                      labels=("CT-like", "T2-MRI-like"),
                      description=("SYNTHETIC medical-like pair (task never trained on; no real scan): a hand-made axial head "
                                   "phantom rendered with CT-like contrast (A: bone and calcification bright, soft tissue "
                                   "flat) and T2-MRI-like contrast (B: bone dark, CSF and tumour bright, bias field). "
                                   "No ground truth: no-reference metrics only."))


def _pet_mri() -> SamplePair:
    mri, pet, _ = make_pet_mri_pair(MED_SIZE)
    return SamplePair(name="med_pet_mri", task="MED", a=mri, b=pet, ground_truth=None, color="from-b",
                      labels=("T1-MRI-like", "PET-like (hot colour map)"),
                      description=("SYNTHETIC medical-like pair (task never trained on; no real scan): the same head phantom "
                                   "as T1-MRI-like anatomy (A) and a blurred, 1/4-resolution PET-like uptake map with a "
                                   "hot tumour, in pseudo-colour (B). Fused luma + colour from B (the PET). "
                                   "No ground truth: no-reference metrics only."))


_CATALOGUE: dict[str, Callable[[], SamplePair]] = {
    "pan_coffee": _pan("coffee", None, "luma (ITU-R 601-2, exactly the ground truth's)"),
    "pan_rocket": _pan("rocket", (0.45, 0.45, 0.10), "brightness with another spectral response (0.45 R + 0.45 G + 0.10 B)"),
    "med_ct_mri": _ct_mri,
    "med_pet_mri": _pet_mri,
}


def list_unseen() -> list[str]:
    """Names of the unseen-task pairs (pan-sharpening ``pan_*``, medical-like ``med_*``)."""
    return list(_CATALOGUE)


@functools.lru_cache(maxsize=None)
def _build(name: str) -> SamplePair:
    pair = _CATALOGUE[name]()
    for arr in (pair.a, pair.b, pair.ground_truth):
        if arr is not None:
            arr.setflags(write=False)
    return pair


def load_unseen(name: str) -> SamplePair:
    """Build (or fetch from the cache) the pair ``name``; arrays are fresh writable copies.

    Raises:
        ConfigError: unknown name (the message lists the available ones).
    """
    key = str(name).lower().replace("-", "_")
    if key not in _CATALOGUE:
        raise ConfigError(f"unknown unseen-task pair {name!r}; available: {', '.join(_CATALOGUE)}")
    return _build(key).copy()


def load_all_unseen(names: Optional[Iterable[str]] = None) -> list[SamplePair]:
    """:func:`load_unseen` of ``names`` (default: all)."""
    return [load_unseen(n) for n in (list_unseen() if names is None else names)]
