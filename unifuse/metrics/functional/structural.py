"""SSIM-family fusion metrics: VIFB ``Ssim``, CDDFuse/skimage SSIM, MEFB ``Qc``, ``Qy``, ``Qw``.

Every core takes three float64 tensors ``a, b, f`` of shape ``(N, H, W)`` holding 0..255
values (MATLAB ``double(uint8)``) in the MATLAB call order (source 1, source 2, fused) and
returns a float64 tensor of shape ``(N,)``. The cores are vectorised over ``N``; run RGB
images as ``N*3`` single-channel images (the per-channel wrappers live in the framework).

Behaviour follows the reference code as documented in ``shared/spec/metrics.md`` (2.3, 3, 4):

* :func:`ssim_vifb` -- Wang's ``ssim_index`` (11x11 Gaussian sigma 1.5, K = (0.01, 0.03),
  L = 255, ``filter2 'valid'``), **summed** over the two sources: range [0, 2] (well, [-2, 2]).
* :func:`ssim_cddfuse` -- ``skimage.metrics.structural_similarity(F, X, data_range=2)``
  (7x7 uniform window, sample covariance, 3-px border crop), summed over the two sources,
  as CDDFuse's ``Evaluator`` reports it (``data_range=2`` reproduces skimage < 0.20).
* :func:`qc` / :func:`qy` -- Cvejic's and Yang's metrics on ``ssim_yang`` (7x7 Gaussian,
  C1 = C2 = 2e-16). These are **ill-conditioned** on flat 7x7 windows (spec section 4):
  ``stable=False`` reproduces the reference formula (values on images with flat windows are
  rounding noise and not reproducible across implementations); ``stable=True`` is a
  corrected variant that sets the local (co)variances of exactly flat windows to exactly 0.
* :func:`qw` -- what MEFB calls ``Qw``: Piella's edge-dependent index (Prewitt edge
  magnitudes, ``sw = 3``, alpha = 1).
"""

from __future__ import annotations

from typing import NamedTuple, Tuple

import torch
import torch.nn.functional as F

from .elementwise import sqrt_
from .matlab import filter2, separable_filter2
from .shared import memo

Tensor = torch.Tensor

__all__ = [
    "gaussian_1d",
    "LocalMoments",
    "local_moments",
    "PairMoments",
    "pair_moments",
    "ssim_index_map",
    "ssim_vifb",
    "ssim_cddfuse",
    "ssim_yang",
    "qc",
    "qy",
    "qw",
    "flat_window_mask",
]


# --------------------------------------------------------------------------- helpers
def gaussian_1d(size: int, sigma: float, dtype=torch.float64, device=None) -> Tensor:
    """1-D factor ``g`` of MATLAB ``fspecial('gaussian', size, sigma)``: ``outer(g, g)``
    equals the 2-D kernel up to rounding (valid while no tap falls below ``eps * max``,
    true for every kernel used by the metrics). Shape ``(size,)``, sums to 1."""
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _check(a: Tensor, b: Tensor, f: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    if not (a.shape == b.shape == f.shape) or a.ndim != 3:
        raise ValueError(
            f"expected three (N, H, W) tensors of equal shape, got {tuple(a.shape)}, {tuple(b.shape)}, {tuple(f.shape)}"
        )
    return a.double(), b.double(), f.double()


class LocalMoments(NamedTuple):
    """Windowed first and second moments of an image pair (all ``(N, h, w)``)."""

    mu_x: Tensor
    mu_y: Tensor
    var_x: Tensor  # E[x^2] - mu_x^2 (as MATLAB computes it: may be slightly negative)
    var_y: Tensor
    cov_xy: Tensor


def local_moments(x: Tensor, y: Tensor, g: Tensor, shape: str = "valid") -> LocalMoments:
    """Gaussian-window moments exactly as Wang's ``ssim_index`` forms them
    (``filter2(w, x .* y) - mu_x .* mu_y``), with the separable window ``outer(g, g)``.

    ``x``, ``y``: ``(N, H, W)`` float64; ``g``: 1-D window. Returns maps of shape
    ``(N, H-k+1, W-k+1)`` for ``'valid'`` or ``(N, H, W)`` for ``'same'`` (zero padding).
    """
    return pair_moments([x, y], [(0, 1)], g, shape).pair(0, 1)


class PairMoments(NamedTuple):
    """Windowed moments of several images and of chosen pairs of them: ``mu[i]``,
    ``var[i]`` (``E[x^2] - mu^2``) and ``cov[(i, j)]`` (``E[x_i x_j] - mu_i mu_j``), all
    ``(N, h, w)``."""

    mu: Tuple[Tensor, ...]
    var: Tuple[Tensor, ...]
    cov: dict

    def pair(self, i: int, j: int) -> LocalMoments:
        """The :class:`LocalMoments` of the pair ``(x_i, x_j)``."""
        return LocalMoments(self.mu[i], self.mu[j], self.var[i], self.var[j], self.cov[(i, j)])


def pair_moments(images, pairs, g: Tensor, shape: str = "valid", flat=None) -> PairMoments:
    """Moments of every image in ``images`` (a sequence of ``(N, H, W)``) and the covariance
    of every pair ``(i, j)`` in ``pairs``, filtering each distinct image, square and product
    **once** (one separable-filter call over the whole stack). Values are bit-identical to
    :func:`local_moments` of the corresponding pairs.

    ``flat``: optional per-image ``'valid'`` flat-window masks; where set, the variance and
    every covariance involving that image are set to exactly 0 (the ``stable`` variants)."""
    k, n = len(images), images[0].shape[0]
    stack = torch.cat([*images, *(x * x for x in images), *(images[i] * images[j] for i, j in pairs)])
    m = separable_filter2(stack, g, g, shape=shape).split(n)
    mu = m[:k]
    var = [m[k + i] - mu[i] * mu[i] for i in range(k)]
    cov = {(i, j): m[2 * k + p] - mu[i] * mu[j] for p, (i, j) in enumerate(pairs)}
    if flat is not None:
        zero = torch.zeros((), dtype=stack.dtype, device=stack.device)
        var = [torch.where(flat[i], zero, v) for i, v in enumerate(var)]
        cov = {(i, j): torch.where(flat[i] | flat[j], zero, c) for (i, j), c in cov.items()}
    return PairMoments(tuple(mu), tuple(var), cov)


def ssim_index_map(m: LocalMoments, c1: float, c2: float) -> Tensor:
    """Wang's SSIM map from local moments (the ``C1 > 0 & C2 > 0`` branch)."""
    # the expression ((2 mu_x mu_y + c1)(2 cov + c2)) / ((mu_x^2 + mu_y^2 + c1)(var_x + var_y + c2))
    # evaluated in the same order, in place (4 temporaries instead of 14)
    num = torch.mul(m.mu_x, m.mu_y).mul_(2.0).add_(c1)
    num.mul_(torch.mul(m.cov_xy, 2.0).add_(c2))
    den = torch.mul(m.mu_x, m.mu_x).add_(torch.mul(m.mu_y, m.mu_y)).add_(c1)
    den.mul_(torch.add(m.var_x, m.var_y).add_(c2))
    return num.div_(den)


def _box_count(t: Tensor, kh: int, kw: int) -> Tensor:
    """Sums of the integer map ``t`` ``(N, H, W)`` over every valid ``kh x kw`` window
    (exact: integer summed-area table)."""
    c = F.pad(t, (1, 0, 1, 0)).cumsum(-1).cumsum(-2)
    return c[..., kh:, kw:] - c[..., :-kh, kw:] - c[..., kh:, :-kw] + c[..., :-kh, :-kw]


def flat_window_mask(x: Tensor, k: int) -> Tensor:
    """``True`` where the ``k x k`` window (``'valid'`` positions) of ``x`` is exactly
    constant. ``(N, H, W) -> (N, H-k+1, W-k+1)`` bool; exact (a window is constant iff no
    horizontal or vertical neighbour pair inside it differs; the pairs are counted with an
    integer summed-area table, several times faster than a k x k max/min pool)."""
    if k == 1:
        return torch.ones_like(x, dtype=torch.bool)
    dh = (x[..., :, 1:] != x[..., :, :-1]).to(torch.int32)
    dv = (x[..., 1:, :] != x[..., :-1, :]).to(torch.int32)
    return (_box_count(dh, k, k - 1) == 0) & (_box_count(dv, k - 1, k) == 0)


# --------------------------------------------------------------------------- SSIM (VIFB)
_WANG_K = (0.01, 0.03)


def ssim_vifb(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """VIFB ``metricsSsim`` core: ``ssim(a, f) + ssim(b, f)``, range [-2, 2] (typ. [0, 2]).

    Wang's SSIM: 11x11 Gaussian window (sigma 1.5), K = (0.01, 0.03), L = 255, ``'valid'``
    maps of size ``(H-10, W-10)`` averaged per image. Inputs ``(N, H, W)`` 0..255; ``(N,)``.
    """
    a, b, f = _check(a, b, f)
    g = gaussian_1d(11, 1.5, device=a.device)
    c1, c2 = (_WANG_K[0] * 255.0) ** 2, (_WANG_K[1] * 255.0) ** 2
    m = pair_moments([a, b, f], [(0, 2), (1, 2)], g)
    s_af = ssim_index_map(m.pair(0, 2), c1, c2).mean(dim=(-2, -1))
    s_bf = ssim_index_map(m.pair(1, 2), c1, c2).mean(dim=(-2, -1))
    return s_af + s_bf


# --------------------------------------------------------------------------- SSIM (CDDFuse)
def _box_valid(x: Tensor, k: int, float32: bool = False) -> Tensor:
    """``k x k`` mean filter, ``'valid'`` region, as two 1-D passes (rows then columns).

    ``float32=True`` mimics ``scipy.ndimage.uniform_filter`` on float32 data: each pass
    accumulates in float64 and stores float32."""
    w = torch.full((k,), 1.0 / k, dtype=torch.float64, device=x.device)
    y = filter2(w.view(-1, 1), x.double(), "valid")
    if float32:
        y = y.float().double()
    y = filter2(w.view(1, -1), y, "valid")
    return y.float() if float32 else y


def ssim_cddfuse(
    a: Tensor, b: Tensor, f: Tensor, data_range: float = 2.0, win_size: int = 7, float32: bool = True
) -> Tensor:
    """CDDFuse ``Evaluator.SSIM``: ``structural_similarity(F, A) + structural_similarity(F, B)``.

    skimage defaults: ``win_size x win_size`` uniform window, sample covariance
    (``NP / (NP - 1)``), K = (0.01, 0.03), mean over the map with ``(win_size-1)//2`` border
    pixels cropped (= the ``'valid'`` region of the window). ``data_range=2`` is what
    skimage < 0.20 inferred for float images (CDDFuse's published numbers); pass 255 for
    the textbook SSIM. CDDFuse feeds float32 images, so skimage computes in float32;
    ``float32=True`` reproduces that arithmetic (the map mean is float64, as in skimage).
    With data_range = 2 the constants are tiny and float32 rounding moves the result by up
    to ~4e-5 relative, so ``float32=False`` (float64 throughout) is *not* CDDFuse's number.
    Inputs ``(N, H, W)`` 0..255 (CDDFuse: rounded gray); returns ``(N,)`` float64.
    """
    a, b, f = _check(a, b, f)
    n = a.shape[0]
    dt = torch.float32 if float32 else torch.float64
    x = torch.cat([f, f]).to(dt)
    y = torch.cat([a, b]).to(dt)
    np_ = win_size * win_size
    cov_norm = np_ / (np_ - 1.0)
    stack = torch.cat([x, y, x * x, y * y, x * y])
    m = _box_valid(stack, win_size, float32=float32)
    ux, uy, uxx, uyy, uxy = m.split(2 * n)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    a1, a2 = 2 * ux * uy + c1, 2 * vxy + c2
    b1, b2 = ux**2 + uy**2 + c1, vx + vy + c2
    s = (a1 * a2) / (b1 * b2)
    s = s.double().mean(dim=(-2, -1))
    return s[:n] + s[n:]


# --------------------------------------------------------------------------- Qc / Qy
_YANG_C = 2e-16


def ssim_yang(x: Tensor, y: Tensor, stable: bool = False) -> Tuple[Tensor, LocalMoments]:
    """``ssim_yang`` of MEFB's Qc/Qy: 7x7 Gaussian (sigma 1.5), ``'valid'``, C1 = C2 = 2e-16.

    Returns the SSIM map ``(N, H-6, W-6)`` and the local moments. With ``stable=True`` the
    variances of exactly flat windows and every covariance involving one are set to 0
    (instead of ``E[x^2] - E[x]^2`` rounding noise of ~1e-12 that C = 2e-16 cannot absorb).
    """
    g = gaussian_1d(7, 1.5, device=x.device)
    m = local_moments(x, y, g)
    if stable:
        fx, fy = flat_window_mask(x, 7), flat_window_mask(y, 7)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        m = LocalMoments(
            m.mu_x,
            m.mu_y,
            torch.where(fx, zero, m.var_x),
            torch.where(fy, zero, m.var_y),
            torch.where(fx | fy, zero, m.cov_xy),
        )
    return ssim_index_map(m, _YANG_C, _YANG_C), m


def _nanmean_keep_inf(q: Tensor) -> Tensor:
    """Mean over the last two dims ignoring NaNs (MATLAB ``mean2(Q(~isnan(Q)))``); +-Inf kept.
    An all-NaN map gives NaN."""
    valid = ~torch.isnan(q)
    cnt = valid.sum(dim=(-2, -1))
    tot = torch.where(valid, q, torch.zeros_like(q)).sum(dim=(-2, -1))
    return tot / cnt.to(q.dtype)


def _yang_moments(a: Tensor, b: Tensor, f: Tensor, stable: bool) -> PairMoments:
    """:func:`pair_moments` of ``(a, b, f)`` and the pairs ``(a, b), (a, f), (b, f)`` with
    ``ssim_yang``'s 7x7 Gaussian (flat windows zeroed if ``stable``); Qc and Qy share it
    inside :func:`.shared.shared_cache`."""

    def compute():
        g = gaussian_1d(7, 1.5, device=a.device)
        flat = [flat_window_mask(x, 7) for x in (a, b, f)] if stable else None
        return pair_moments([a, b, f], [(0, 1), (0, 2), (1, 2)], g, flat=flat)

    return memo("yang_moments", (a, b, f), bool(stable), compute)


def qc(a: Tensor, b: Tensor, f: Tensor, stable: bool = False) -> Tensor:
    """MEFB ``metricsQc`` core (Cvejic et al.): ``s = sigma_aF / (sigma_aF + sigma_bF)``,
    ``Q = s * ssim(a, F) + (1 - s) * ssim(b, F)``, 0 where ``s < 0``, 1 where ``s > 1``, mean
    over non-NaN pixels. Range [0, 1] mathematically, but **ill-conditioned** on flat 7x7
    windows (see module doc; ``stable=True`` for the corrected variant).
    ``(N, H, W)`` 0..255 -> ``(N,)``.
    """
    a, b, f = _check(a, b, f)
    m = _yang_moments(a, b, f, stable)
    s1 = ssim_index_map(m.pair(0, 2), _YANG_C, _YANG_C)
    s2 = ssim_index_map(m.pair(1, 2), _YANG_C, _YANG_C)
    c1f, c2f = m.cov[(0, 2)], m.cov[(1, 2)]
    s = c1f / (c1f + c2f)
    q = s * s1 + (1.0 - s) * s2
    q = torch.where(s < 0, torch.zeros_like(q), q)
    q = torch.where(s > 1, torch.ones_like(q), q)
    return _nanmean_keep_inf(q)


def qy(a: Tensor, b: Tensor, f: Tensor, stable: bool = False) -> Tensor:
    """MEFB ``metricsQy`` core (Yang et al.): with ``ssim_yang`` maps s_ab, s_aF, s_bF and
    ``lambda = var_a / (var_a + var_b)``::

        Q = [s_ab >= 0.75] * (lambda * s_aF + (1 - lambda) * s_bF)
          + [s_ab <  0.75] * max(s_aF, s_bF)

    averaged over non-NaN pixels (MATLAB's ``max`` ignores NaN, the mask products do not).
    Ill-conditioned on flat windows like :func:`qc`. ``(N, H, W)`` 0..255 -> ``(N,)``.
    """
    a, b, f = _check(a, b, f)
    m = _yang_moments(a, b, f, stable)
    s_ab = ssim_index_map(m.pair(0, 1), _YANG_C, _YANG_C)
    s_af = ssim_index_map(m.pair(0, 2), _YANG_C, _YANG_C)
    s_bf = ssim_index_map(m.pair(1, 2), _YANG_C, _YANG_C)
    var_a, var_b = m.var[0], m.var[1]
    lam = var_a / (var_a + var_b)
    binm = (s_ab >= 0.75).to(a.dtype)
    q1 = (lam * s_af + (1.0 - lam) * s_bf) * binm
    q2 = torch.fmax(s_af, s_bf) * (1.0 - binm)
    return _nanmean_keep_inf(q1 + q2)


# --------------------------------------------------------------------------- Qw (Piella)
_PREWITT_X = ((1.0, 0.0, -1.0), (1.0, 0.0, -1.0), (1.0, 0.0, -1.0))
_PREWITT_Y = ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -1.0, -1.0))


def qw(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """MEFB ``metricsQw`` core: Piella's **edge-dependent** fusion quality index (``sw = 3``,
    alpha = 1), computed on Prewitt edge-magnitude images ``E = sqrt(X^2 + Y^2)``
    (``filter2 'same'``, zero padding).

    With Wang's SSIM (11x11 Gaussian, K = (0.01, 0.03), L = 255, ``'valid'``) on the edge
    images: ``var_a, var_b`` from (E_a, E_b), 0.5 added to both where their sum is 0,
    ``lambda = var_a / (var_a + var_b)``, ``c_w = max(var_a, var_b) / sum(max(var_a, var_b))``
    and ``Qw = sum(c_w * (lambda * ssim(E_F, E_a) + (1 - lambda) * ssim(E_F, E_b)))``.
    ``(N, H, W)`` 0..255 -> ``(N,)``, typically in [0, 1].
    """
    a, b, f = _check(a, b, f)
    n = a.shape[0]
    x = torch.cat([a, b, f])
    gx = filter2(_PREWITT_X, x, "same")
    gy = filter2(_PREWITT_Y, x, "same")
    e = sqrt_(gx.mul_(gx).addcmul_(gy, gy))
    ea, eb, ef = e.split(n)
    g = gaussian_1d(11, 1.5, device=a.device)
    c1, c2 = (_WANG_K[0] * 255.0) ** 2, (_WANG_K[1] * 255.0) ** 2
    m = pair_moments([ea, eb, ef], [(0, 1), (2, 0), (2, 1)], g)
    var_a, var_b = m.var[0], m.var[1]
    fix = (var_a + var_b == 0).to(a.dtype) * 0.5
    var_a, var_b = var_a + fix, var_b + fix
    lam = var_a / (var_a + var_b)
    s_fa = ssim_index_map(m.pair(2, 0), c1, c2)
    s_fb = ssim_index_map(m.pair(2, 1), c1, c2)
    cw_raw = torch.maximum(var_a, var_b)
    cw = cw_raw / cw_raw.sum(dim=(-2, -1), keepdim=True)
    return (cw * (lam * s_fa + (1.0 - lam) * s_fb)).sum(dim=(-2, -1))

