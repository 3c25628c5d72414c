"""Batched torch ports of the MATLAB helpers used by the fusion-metric toolboxes.

Every function works on **float64** tensors shaped ``(N, H, W)`` (a batch of 2-D images,
MATLAB ``double``) and is vectorised over the batch; CPU or CUDA. The behaviours copied
here (rounding, padding, kernel centres, thinning rules) are documented in
``/work/shared/spec/metrics.md`` section 1.3.

Conventions:

* ``filter2`` / ``imfilter`` are **correlations**; ``conv2`` is a true convolution.
* ``shape='same'`` keeps ``H x W`` (MATLAB centre ``ceil(k/2)`` for correlation), ``'valid'``
  returns ``(H-kh+1) x (W-kw+1)``, ``'full'`` returns ``(H+kh-1) x (W+kw-1)``.
* Padding: ``'zero'`` (MATLAB default), ``'replicate'``, ``'symmetric'`` (mirror including
  the edge pixel, ``padarray 'symmetric'``) and ``'circular'``.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ...backend import cpu_tuned
from . import separable_native

Tensor = torch.Tensor

#: MATLAB ``eps`` for double
EPS = 2.220446049250313e-16

#: first row of ``inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703])`` (MATLAB rgb2gray)
RGB2GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)

_PAD_MODES = {"zero": "constant", "replicate": "replicate", "symmetric": "symmetric", "circular": "circular"}


# --------------------------------------------------------------------------- basics
def round_half_away(x: Tensor) -> Tensor:
    """MATLAB ``round`` / ``uint8()`` rounding: half away from zero (torch rounds half to even)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def to_uint8(x: Tensor) -> Tensor:
    """MATLAB ``uint8(x)`` kept as float64: round half away from zero, saturate to [0, 255]."""
    return round_half_away(x).clamp_(0.0, 255.0)


def rgb2gray_uint8(x: Tensor) -> Tensor:
    """MATLAB ``rgb2gray`` on a uint8 image.

    Args:
        x: ``(N, 3, H, W)`` (or ``(3, H, W)``) float64 holding integer values 0..255.
    Returns:
        ``(N, H, W)`` (or ``(H, W)``) float64, integer values 0..255 (rounded half away
        from zero, as ``imlincomb`` does).
    """
    if x.shape[-3] != 3:
        raise ValueError(f"rgb2gray expects 3 channels in dim -3, got shape {tuple(x.shape)}")
    r, g, b = x.unbind(-3)
    y = RGB2GRAY_WEIGHTS[0] * r + RGB2GRAY_WEIGHTS[1] * g + RGB2GRAY_WEIGHTS[2] * b
    return to_uint8(y)


def rgb2gray_double(x: Tensor) -> Tensor:
    """MATLAB ``rgb2gray`` on a double image: weighted sum then **clamped to [0, 1]**.

    ``x``: ``(N, 3, H, W)``. A 0..255 image therefore becomes ~1 everywhere (a MATLAB quirk
    reproduced only for the code paths that hit it).
    """
    r, g, b = x.unbind(-3)
    y = RGB2GRAY_WEIGHTS[0] * r + RGB2GRAY_WEIGHTS[1] * g + RGB2GRAY_WEIGHTS[2] * b
    return y.clamp(0.0, 1.0)


def mean2(x: Tensor) -> Tensor:
    """MATLAB ``mean2`` per image: ``(N, H, W) -> (N,)``."""
    return x.mean(dim=(-2, -1))


def minmax_normalize(x: Tensor) -> Tensor:
    """Per-image min-max stretch to [0, 1]; a constant image becomes all 0. ``(N,H,W)``."""
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    rng = hi - lo
    return torch.where(rng > 0, (x - lo) / torch.where(rng > 0, rng, torch.ones_like(rng)), torch.zeros_like(x))


def normalize1(x: Tensor) -> Tensor:
    """MEFB/VIFB ``normalize1``: ``round(255 * (x - min) / (max - min))`` per image.

    An all-zero image is returned unchanged. (MATLAB turns any other constant image into
    NaN; here it becomes all 0 so that histogram-based metrics stay defined.)
    ``(N, H, W)`` float64 -> ``(N, H, W)`` float64 with integer values 0..255.
    """
    lo = x.amin(dim=(-2, -1), keepdim=True)
    rng = x.amax(dim=(-2, -1), keepdim=True) - lo
    ok = rng > 0
    # = round_half_away(minmax_normalize(x) * 255), same operation order; the stretched values
    # are >= 0, where rounding half away from zero is floor(v + 0.5)
    t = torch.sub(x, lo).div_(torch.where(ok, rng, torch.ones_like(rng))).mul_(255.0).add_(0.5).floor_()
    return t.mul_(ok) if not bool(ok.all()) else t


# --------------------------------------------------------------------------- filtering
def _as_kernel(h: Union[Tensor, Sequence], like: Tensor) -> Tensor:
    h = torch.as_tensor(h, dtype=like.dtype, device=like.device)
    if h.ndim == 1:
        h = h[None, :]
    if h.ndim != 2:
        raise ValueError(f"kernel must be 2-D, got shape {tuple(h.shape)}")
    return h


def pad(x: Tensor, top: int, bottom: int, left: int, right: int, padding: str = "zero") -> Tensor:
    """Pad the last two dims of ``(N, H, W)`` like MATLAB ``padarray`` (modes: zero,
    replicate, symmetric, circular). Symmetric pads may exceed the image size (repeated
    mirroring is not supported: pads must be ``<= H, W``)."""
    if padding not in _PAD_MODES:
        raise ValueError(f"unknown padding {padding!r}; use one of {sorted(_PAD_MODES)}")
    if top == bottom == left == right == 0:
        return x
    if padding == "zero":
        return F.pad(x, (left, right, top, bottom))
    if padding == "symmetric":
        # numpy 'symmetric': mirror including the edge pixel
        H, W = x.shape[-2:]
        rows = torch.cat(
            [torch.arange(top - 1, -1, -1), torch.arange(H), torch.arange(H - 1, H - 1 - bottom, -1)]
        ).to(x.device)
        cols = torch.cat(
            [torch.arange(left - 1, -1, -1), torch.arange(W), torch.arange(W - 1, W - 1 - right, -1)]
        ).to(x.device)
        return x.index_select(-2, rows).index_select(-1, cols)
    mode = _PAD_MODES[padding]
    y = F.pad(x.unsqueeze(-3), (left, right, top, bottom), mode=mode)
    return y.squeeze(-3)


#: elements per band of output rows in the banded CPU filters: the band and its inputs stay
#: in the cache (L2/L3) while all taps accumulate. Every operation runs on one thread (the
#: metrics run on :mod:`unifuse.parallel`'s workers). Larger bands mean fewer operations: on
#: a 2-core AVX2 EPYC (512 KB L2 per core, 32 MB L3) 2^18 elements filtered 11x11 / 7x7 /
#: 17x17 / 31x31 stacks 1.3-1.6x faster than the 30k used before (1 thread, and 2 threads
#: filtering side by side; BENCHMARKS.md, session 7); the whole stack at once was 2-3x slower
BAND_ELEMENTS = 1 << 18


def _taps(h: Tensor):
    """Non-zero taps ``(i, j, value)`` of a 2-D kernel in row-major order."""
    return [(i, j, c) for i, row in enumerate(h.tolist()) for j, c in enumerate(row) if c != 0.0]


def _bands(n: int, rows: int, row_len: int, in_rows: int):
    """Split ``n`` images of ``rows`` output rows into ``(images slice, row slice)`` bands of
    about :data:`BAND_ELEMENTS` elements: several whole images when they are small, else
    bands of rows of one image."""
    per_image = max(in_rows, 1) * row_len
    if per_image >= BAND_ELEMENTS or n == 1:
        step = max(1, BAND_ELEMENTS // max(row_len, 1))
        for b in range(n):
            for r0 in range(0, rows, step):
                yield slice(b, b + 1), r0, min(r0 + step, rows)
    else:
        group = max(1, BAND_ELEMENTS // per_image)
        for b in range(0, n, group):
            yield slice(b, min(b + group, n)), 0, rows


def _accumulate(out: Tensor, src: Tensor, taps, r0: int, r1: int, ncols: int) -> None:
    """``out = sum_t c_t * src[..., r0+i_t : r1+i_t, j_t : j_t+ncols]`` (first tap by ``mul``,
    the others by ``add_``: the operation order of the unbanded shifted sums)."""
    i, j, c = taps[0]
    torch.mul(src[..., r0 + i : r1 + i, j : j + ncols], c, out=out)
    for i, j, c in taps[1:]:
        out.add_(src[..., r0 + i : r1 + i, j : j + ncols], alpha=c)


def _correlate_valid(xp: Tensor, h: Tensor) -> Tensor:
    """Valid correlation of ``(N, Hp, Wp)`` with a 2-D kernel ``(kh, kw)``.

    Kernels of at most 25 taps (and all 1-D kernels) use shifted sums, which are exact
    for float64 and deterministic; on the CPU they run band by band (see :func:`_bands`)
    so each band stays in cache while the taps accumulate. Larger 2-D kernels use conv2d.
    """
    kh, kw = h.shape
    Ho, Wo = xp.shape[-2] - kh + 1, xp.shape[-1] - kw + 1
    if Ho <= 0 or Wo <= 0:
        return xp.new_zeros(xp.shape[:-2] + (max(Ho, 0), max(Wo, 0)))
    if kh == 1 or kw == 1 or kh * kw <= 25:
        taps = _taps(h)
        if not taps:
            return xp.new_zeros(xp.shape[:-2] + (Ho, Wo))
        lead = xp.shape[:-2]
        x3 = xp.reshape(-1, *xp.shape[-2:])
        n = x3.shape[0]
        out = x3.new_empty(n, Ho, Wo)
        if not cpu_tuned(x3):
            _accumulate(out, x3, taps, 0, Ho, Wo)
        else:
            for ims, r0, r1 in _bands(n, Ho, xp.shape[-1], xp.shape[-2]):
                _accumulate(out[ims, r0:r1], x3[ims], taps, r0, r1, Wo)
        return out.reshape(*lead, Ho, Wo)
    lead = xp.shape[:-2]
    y = F.conv2d(xp.reshape(-1, 1, *xp.shape[-2:]), h[None, None])
    return y.reshape(*lead, Ho, Wo)


def _separable_valid(xp: Tensor, hc: Tensor, hr: Tensor) -> Tensor:
    """Valid correlation of ``(..., Hp, Wp)`` with ``outer(hc, hr)``: a column pass then a
    row pass, fused band by band on the CPU (the intermediate band never leaves the cache).
    Bit-identical to ``_correlate_valid(_correlate_valid(xp, hc[:, None]), hr[None])``."""
    kh, kw = hc.numel(), hr.numel()
    Hp, Wp = xp.shape[-2:]
    Ho, Wo = Hp - kh + 1, Wp - kw + 1
    tc, tr = _taps(hc.reshape(-1, 1)), _taps(hr.reshape(1, -1))
    if not cpu_tuned(xp) or Ho <= 0 or Wo <= 0 or not tc or not tr:
        return _correlate_valid(_correlate_valid(xp, hc.reshape(-1, 1)), hr.reshape(1, -1))
    if separable_native.usable(xp, hc, hr):  # the C++ kernel: same order of operations
        return separable_native.separable_valid(xp, hc, hr)
    lead = xp.shape[:-2]
    x3 = xp.reshape(-1, Hp, Wp)
    n = x3.shape[0]
    out = x3.new_empty(n, Ho, Wo)
    tmp = None
    for ims, r0, r1 in _bands(n, Ho, Wp, Hp):
        m = ims.stop - ims.start
        if tmp is None or tmp.numel() < m * (r1 - r0) * Wp:
            tmp = x3.new_empty(max(m * (r1 - r0) * Wp, BAND_ELEMENTS))
        t = tmp[: m * (r1 - r0) * Wp].view(m, r1 - r0, Wp)
        _accumulate(t, x3[ims], tc, r0, r1, Wp)
        _accumulate(out[ims, r0:r1], t, tr, 0, r1 - r0, Wo)
    return out.reshape(*lead, Ho, Wo)


def separable_valid(xp: Tensor, hcol: Tensor, hrow: Tensor) -> Tensor:
    """Valid correlation of an already padded ``(N, Hp, Wp)`` stack with ``outer(hcol, hrow)``
    (1-D float64 kernels): what :func:`separable_filter2` computes after padding, for callers
    that write their maps straight into a padded buffer. ``(N, Hp-kh+1, Wp-kw+1)``."""
    return _separable_valid(xp, hcol.reshape(-1), hrow.reshape(-1))


def _pad_for_shape(x: Tensor, kh: int, kw: int, shape: str, padding: str) -> Tensor:
    """``x`` padded so that a *valid* correlation with a ``kh x kw`` kernel gives MATLAB's
    ``shape`` result: 'same' (centre ``ceil(k/2)``), 'full', or 'valid' (unchanged)."""
    if shape == "valid":
        return x
    if shape == "same":
        return pad(x, (kh + 1) // 2 - 1, kh // 2, (kw + 1) // 2 - 1, kw // 2, padding)
    if shape == "full":
        return pad(x, kh - 1, kh - 1, kw - 1, kw - 1, padding)
    raise ValueError(f"unknown shape {shape!r}; use 'same', 'valid' or 'full'")


def correlate(x: Tensor, h: Union[Tensor, Sequence], shape: str = "same", padding: str = "zero") -> Tensor:
    """2-D correlation of every image in ``x`` ``(N, H, W)`` with kernel ``h`` ``(kh, kw)``.

    ``shape``: 'same' (MATLAB centre ``ceil(k/2)``), 'valid' or 'full'. ``padding`` applies to
    'same' and 'full'.
    """
    h = _as_kernel(h, x)
    return _correlate_valid(_pad_for_shape(x, *h.shape, shape, padding), h)


def filter2(h: Union[Tensor, Sequence], x: Tensor, shape: str = "same") -> Tensor:
    """MATLAB ``filter2(h, X, shape)``: correlation with zero padding. ``(N,H,W)``."""
    return correlate(x, h, shape=shape, padding="zero")


def imfilter(x: Tensor, h: Union[Tensor, Sequence], padding: str = "zero", shape: str = "same") -> Tensor:
    """MATLAB ``imfilter(X, h, padding, shape)`` on double input (correlation, no rounding)."""
    return correlate(x, h, shape=shape, padding=padding)


def conv2(x: Tensor, h: Union[Tensor, Sequence], shape: str = "full") -> Tensor:
    """MATLAB ``conv2(X, h, shape)``: true convolution with zero padding. ``(N,H,W)``.

    'same' takes the central part of the full result starting at ``floor(k/2)`` (0-based),
    which for even kernels differs from ``filter2``'s centre.
    """
    h = _as_kernel(h, x)
    hf = torch.flip(h, dims=(0, 1))
    kh, kw = h.shape
    if shape == "valid":
        return _correlate_valid(x, hf)
    full = _correlate_valid(pad(x, kh - 1, kh - 1, kw - 1, kw - 1, "zero"), hf)
    if shape == "full":
        return full
    if shape == "same":
        H, W = x.shape[-2:]
        return full[..., kh // 2 : kh // 2 + H, kw // 2 : kw // 2 + W]
    raise ValueError(f"unknown shape {shape!r}; use 'same', 'valid' or 'full'")


def separable_filter2(
    x: Tensor, hcol: Union[Tensor, Sequence], hrow: Union[Tensor, Sequence], shape: str = "same", padding: str = "zero"
) -> Tensor:
    """Correlation with the rank-1 kernel ``outer(hcol, hrow)`` as two 1-D passes.

    Equal to :func:`correlate` up to floating-point rounding (~1e-16 relative); much faster
    for large kernels (e.g. the 11x11 Gaussian of SSIM).
    """
    hc = torch.as_tensor(hcol, dtype=x.dtype, device=x.device).reshape(-1)
    hr = torch.as_tensor(hrow, dtype=x.dtype, device=x.device).reshape(-1)
    # padding both dimensions first gives the same values as padding before each pass
    return _separable_valid(_pad_for_shape(x, hc.numel(), hr.numel(), shape, padding), hc, hr)


# --------------------------------------------------------------------------- kernels
def fspecial_gaussian(
    size: Union[int, Tuple[int, int]] = 3, sigma: float = 0.5, dtype=torch.float64, device=None
) -> Tensor:
    """MATLAB ``fspecial('gaussian', size, sigma)``: ``(kh, kw)`` kernel summing to 1
    (values ``< eps * max`` set to 0 before normalising)."""
    kh, kw = (size, size) if isinstance(size, int) else size
    y = torch.arange(kh, dtype=dtype, device=device) - (kh - 1) / 2
    x = torch.arange(kw, dtype=dtype, device=device) - (kw - 1) / 2
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    h = torch.exp(-(xx * xx + yy * yy) / (2.0 * sigma * sigma))
    h = torch.where(h < EPS * h.max(), torch.zeros_like(h), h)
    s = h.sum()
    return h / s if s != 0 else h


def fspecial_sobel(dtype=torch.float64, device=None) -> Tensor:
    """MATLAB ``fspecial('sobel')`` = ``[1 2 1; 0 0 0; -1 -2 -1]`` (y-derivative, correlation)."""
    return torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]], dtype=dtype, device=device)


# --------------------------------------------------------------------------- derivatives
def gradient(x: Tensor) -> Tuple[Tensor, Tensor]:
    """MATLAB ``[gx, gy] = gradient(X)`` (unit spacing) for ``(N, H, W)``.

    Central differences inside, one-sided at the borders (``numpy.gradient`` with
    ``edge_order=1``). ``gx`` is along columns (W), ``gy`` along rows (H). A dimension of
    length 1 gives zeros.
    """

    def _grad(t: Tensor, dim: int) -> Tensor:
        n = t.shape[dim]
        if n < 2:
            return torch.zeros_like(t)
        g = torch.empty_like(t)
        g.narrow(dim, 0, 1).copy_(t.narrow(dim, 1, 1) - t.narrow(dim, 0, 1))
        g.narrow(dim, n - 1, 1).copy_(t.narrow(dim, n - 1, 1) - t.narrow(dim, n - 2, 1))
        if n > 2:
            g.narrow(dim, 1, n - 2).copy_((t.narrow(dim, 2, n - 2) - t.narrow(dim, 0, n - 2)) / 2.0)
        return g

    return _grad(x, -1), _grad(x, -2)


def edge_sobel(x: Tensor, return_magnitude: bool = False):
    """MATLAB ``edge(X)`` (default method 'sobel', automatic threshold, thinning) on double input.

    ``op = fspecial('sobel')/8``; ``bx = imfilter(X, op', 'replicate')``,
    ``by = imfilter(X, op, 'replicate')``; ``b = bx^2 + by^2``; ``cutoff = 4 * mean(b)`` per
    image. A pixel is an edge iff ``b > cutoff`` and either (``|bx| >= |by| - 100 eps`` and
    ``b(r,c-1) <= b(r,c) > b(r,c+1)``) or (``|by| >= |bx| - 100 eps`` and
    ``b(r-1,c) <= b(r,c) > b(r+1,c)``); a neighbour outside the image passes its test.

    Args:
        x: ``(N, H, W)`` float64 (any range; MATLAB applies no scaling to double input).
    Returns:
        ``(N, H, W)`` bool edge map (and ``b`` if ``return_magnitude``).
    """
    op = fspecial_sobel(x.dtype, x.device) / 8.0
    bx = imfilter(x, op.T, padding="replicate")
    by = imfilter(x, op, padding="replicate")
    b = bx * bx + by * by
    cutoff = 4.0 * b.mean(dim=(-2, -1), keepdim=True)
    abx, aby = bx.abs(), by.abs()
    tol = 100.0 * EPS
    true_col = torch.ones_like(b[..., :, :1], dtype=torch.bool)
    true_row = torch.ones_like(b[..., :1, :], dtype=torch.bool)
    # horizontal test: left <= centre > right
    left_ok = torch.cat([true_col, b[..., :, :-1] <= b[..., :, 1:]], dim=-1)
    right_ok = torch.cat([b[..., :, :-1] > b[..., :, 1:], true_col], dim=-1)
    up_ok = torch.cat([true_row, b[..., :-1, :] <= b[..., 1:, :]], dim=-2)
    down_ok = torch.cat([b[..., :-1, :] > b[..., 1:, :], true_row], dim=-2)
    horiz = (abx >= aby - tol) & left_ok & right_ok
    vert = (aby >= abx - tol) & up_ok & down_ok
    e = (b > cutoff) & (horiz | vert)
    return (e, b) if return_magnitude else e


# --------------------------------------------------------------------------- frequency / blocks
def freqspace(M: int, N: int, dtype=torch.float64, device=None) -> Tuple[Tensor, Tensor]:
    """MATLAB ``[f1, f2] = freqspace([M N], 'meshgrid')``: two ``(M, N)`` grids with
    ``f1 = ((0:N-1) - floor(N/2)) * 2/N`` along columns and
    ``f2 = ((0:M-1) - floor(M/2)) * 2/M`` along rows."""
    c = (torch.arange(N, dtype=dtype, device=device) - N // 2) * (2.0 / N)
    r = (torch.arange(M, dtype=dtype, device=device) - M // 2) * (2.0 / M)
    f2, f1 = torch.meshgrid(r, c, indexing="ij")
    return f1, f2


def blocks(x: Tensor, block: int = 16) -> Tensor:
    """``blkproc(X, [b b], [0 0], fun)`` layout: zero-pad ``(N, H, W)`` at the bottom/right to
    whole blocks and return the blocks as ``(N, nH, nW, b, b)`` (apply ``fun`` over the last
    two dims). Padded zeros count in per-block means, as in MATLAB."""
    H, W = x.shape[-2:]
    nH, nW = -(-H // block), -(-W // block)
    xp = F.pad(x, (0, nW * block - W, 0, nH * block - H))
    return xp.reshape(*x.shape[:-2], nH, block, nW, block).transpose(-3, -2)


def blkproc(x: Tensor, block: int, fun: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply ``fun`` (reducing the last two dims of ``(..., b, b)`` blocks to a scalar) to every
    zero-padded block. Returns ``(N, nH, nW)``."""
    return fun(blocks(x, block))


# --------------------------------------------------------------------------- histograms
def histc256(x: Tensor) -> Tensor:
    """Per-image 256-bin histogram of integer values 0..255: ``(N, H, W) -> (N, 256)`` counts
    (float64). Values are taken as ``floor`` and clamped to [0, 255]."""
    n = x.shape[0]
    idx = x.reshape(n, -1).floor().clamp(0, 255).long()
    idx += torch.arange(n, device=x.device)[:, None] * 256
    return torch.bincount(idx.reshape(-1), minlength=n * 256).reshape(n, 256).to(torch.float64)


def joint_hist256(x: Tensor, y: Tensor) -> Tensor:
    """Per-image 256x256 joint histogram of integer images (values 0..255): ``(N, 256, 256)``
    counts, first index = value in ``x``, second = value in ``y``."""
    n = x.shape[0]
    ix = x.reshape(n, -1).floor().clamp(0, 255).long()
    iy = y.reshape(n, -1).floor().clamp(0, 255).long()
    flat = ix * 256 + iy + torch.arange(n, device=x.device)[:, None] * 65536
    return torch.bincount(flat.reshape(-1), minlength=n * 65536).reshape(n, 256, 256).to(torch.float64)


def entropy_from_pdf(p: Tensor, dim=-1, log=torch.log2) -> Tensor:
    """``-sum p log p`` over ``dim`` with ``0 log 0 = 0`` (``p`` already normalised)."""
    safe = torch.where(p > 0, p, torch.ones_like(p))
    return -(p * log(safe)).sum(dim=dim)


__all__ = [
    "EPS",
    "RGB2GRAY_WEIGHTS",
    "round_half_away",
    "to_uint8",
    "rgb2gray_uint8",
    "rgb2gray_double",
    "mean2",
    "minmax_normalize",
    "normalize1",
    "pad",
    "correlate",
    "filter2",
    "imfilter",
    "conv2",
    "separable_filter2",
    "separable_valid",
    "fspecial_gaussian",
    "fspecial_sobel",
    "gradient",
    "edge_sobel",
    "freqspace",
    "blocks",
    "blkproc",
    "histc256",
    "joint_hist256",
    "entropy_from_pdf",
]
