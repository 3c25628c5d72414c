"""Phase congruency (Kovesi's ``phasecong3`` as revised by Z. Liu, ``myphasecong3``) and
Zhao's phase-congruency fusion metric ``Qp`` (MEFB ``metricsQp``).

Cores take float64 ``(N, H, W)`` tensors holding 0..255 values and are vectorised over N
(all images of a call share one set of filters; scales are stacked, orientations are
processed one at a time to bound memory at ``N * nscale`` complex images). On the CPU the
per-pixel work of each orientation runs in the C++ kernel of :mod:`.phase_native` when it
builds here (same values to rounding), else as the tensor passes below.

``phase_congruency`` returns the overall phase-congruency map (``sum_o W_o E_o /
(sum_o sum_s A_so + eps)``) and the maximum / minimum moments ``M``, ``m`` of the PC
covariance, as ``myphasecong3`` does with its defaults: 4 scales, 6 orientations, minimum
wavelength 3, scale factor 2.1, sigmaOnf 0.55, dThetaOnSigma 1.2 (Gaussian angular spread),
k = 2, cutOff 0.5, g = 10, low-pass radius 0.45 / order 15, noise threshold from the median
of the smallest-scale energy divided by 1.7 (the PC_2 rescaling).

``qp`` (higher is better, [0, 1]): masks ``PC > 0.1`` for each source and for the pixel-wise
``max(PC1, PC2)`` image (whose M and m come from the same source); for each feature
(PC, M, m) local correlation coefficients ``(s_xf + C) / (sqrt|s_x^2 s_f^2| + C)``
(11x11 Gaussian sigma 1.5, ``filter2 'same'``, C = 1e-4) of the masked source, masked max
and unmasked fused feature maps; their pixel-wise max summed and divided by the size of the
max mask; ``Qp = P * M * m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.fft
import torch

from ...backend import cpu_tuned
from .elementwise import sqrt, sqrt_
from . import phase_native
from .matlab import separable_valid
from ...parallel import parallel_map
from .shared import map_unique
from .structural import gaussian_1d

Tensor = torch.Tensor

__all__ = ["PhaseCongruencyConfig", "PhaseCongruency", "phase_congruency", "qp"]


@dataclass(frozen=True)
class PhaseCongruencyConfig:
    """Parameters of ``myphasecong3`` (defaults = the values MEFB's Qp uses)."""

    nscale: int = 4
    norient: int = 6
    min_wavelength: float = 3.0
    mult: float = 2.1
    sigma_onf: float = 0.55
    d_theta_on_sigma: float = 1.2
    k: float = 2.0
    cut_off: float = 0.5
    g: float = 10.0
    lowpass_cutoff: float = 0.45
    lowpass_order: int = 15
    noise_rescale: float = 1.7  # empirical PC_2 rescaling of the noise threshold
    epsilon: float = 1e-4


class PhaseCongruency(NamedTuple):
    """``pc``: overall phase congruency; ``M`` / ``m``: max / min moments. All ``(N, H, W)``."""

    pc: Tensor
    M: Tensor
    m: Tensor


class _FilterBank(NamedTuple):
    filters: Tensor  # (norient, nscale, rows, cols) real, unshifted layout (DC at [0, 0])
    em_n: Tensor  # (norient,) sum of the squared smallest-scale filter
    sum_an2: Tensor  # (norient,) sum over pixels and scales of ifft2(filter)^2 (rescaled)
    sum_aiaj: Tensor  # (norient,) sum over pixels and scale pairs i<j of the products


def _centred_range(n: int, dtype, device) -> Tensor:
    if n % 2:
        return torch.arange(-(n - 1) / 2, (n - 1) / 2 + 1, dtype=dtype, device=device) / (n - 1)
    return torch.arange(-n / 2, n / 2, dtype=dtype, device=device) / n


def _lowpass(rows: int, cols: int, cutoff: float, order: int, dtype, device) -> Tensor:
    """Kovesi's ``lowpassfilter``: Butterworth on a grid centred at ``fix(n/2)`` and moved
    with ``fftshift`` (not ``ifftshift``, which differs for odd sizes, as in the reference)."""
    x = (torch.arange(cols, dtype=dtype, device=device) - cols // 2) / cols
    y = (torch.arange(rows, dtype=dtype, device=device) - rows // 2) / rows
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    radius = torch.sqrt(xx * xx + yy * yy)
    return torch.fft.fftshift(1.0 / (1.0 + (radius / cutoff) ** (2 * order)))


def _reflect_index(h: Tensor) -> Tensor:
    """``h(-k mod rows, -k mod cols)`` for the last two dims."""
    return torch.roll(torch.flip(h, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))


@lru_cache(maxsize=4)
def _filter_bank(rows: int, cols: int, cfg: PhaseCongruencyConfig, device: str) -> _FilterBank:
    dtype = torch.float64
    dev = torch.device(device)
    x1 = _centred_range(cols, dtype, dev)
    y1 = _centred_range(rows, dtype, dev)
    y, x = torch.meshgrid(y1, x1, indexing="ij")
    radius = torch.sqrt(x * x + y * y)
    radius[rows // 2, cols // 2] = 1.0
    theta = torch.atan2(-y, x)
    radius = torch.fft.ifftshift(radius)
    theta = torch.fft.ifftshift(theta)
    sintheta, costheta = torch.sin(theta), torch.cos(theta)

    lp = _lowpass(rows, cols, cfg.lowpass_cutoff, cfg.lowpass_order, dtype, dev)
    wavelengths = torch.tensor([cfg.min_wavelength * cfg.mult**s for s in range(cfg.nscale)], dtype=dtype, device=dev)
    fo = (1.0 / wavelengths).view(-1, 1, 1)
    log_gabor = torch.exp(-(torch.log(radius / fo) ** 2) / (2 * math.log(cfg.sigma_onf) ** 2)) * lp
    log_gabor[:, 0, 0] = 0.0

    theta_sigma = math.pi / cfg.norient / cfg.d_theta_on_sigma
    angl = torch.tensor([o * math.pi / cfg.norient for o in range(cfg.norient)], dtype=dtype, device=dev).view(-1, 1, 1)
    ds = sintheta * torch.cos(angl) - costheta * torch.sin(angl)
    dc = costheta * torch.cos(angl) + sintheta * torch.sin(angl)
    dtheta = torch.atan2(ds, dc).abs()
    spread = torch.exp(-(dtheta**2) / (2 * theta_sigma**2))  # (norient, rows, cols)

    filters = spread[:, None] * log_gabor[None]  # (norient, nscale, rows, cols)
    em_n = (filters[:, 0] ** 2).sum(dim=(-2, -1))
    # ifftFilt = real(ifft2(filter)) * sqrt(rows*cols); by Parseval the pixel sums of its
    # squares and cross products are sums over frequencies of the even parts of the filters
    even = 0.5 * (filters + _reflect_index(filters))
    sum_an2 = (even**2).sum(dim=(1, 2, 3))
    cum = even.sum(dim=1)
    sum_aiaj = 0.5 * ((cum**2).sum(dim=(-2, -1)) - sum_an2)
    return _FilterBank(filters, em_n, sum_an2, sum_aiaj)


@lru_cache(maxsize=4)
def _half_filters(rows: int, cols: int, cfg: PhaseCongruencyConfig, device: str) -> Tensor:
    """``(norient, 2 nscale, rows, cols//2+1)`` real: the even parts, then the odd parts, of
    the filters on the half spectrum of ``rfft2`` (see :func:`_even_odd_responses`). Only the
    PyTorch path uses them, so they are built on its first call for a size (as large as the
    bank itself: 56 MB at 460x630), not with the bank.

    The image is real, so with ``F = Fe + Fo`` (even / odd under ``k -> -k``) the complex
    response ``ifft2(X F)`` has real part ``ifft2(X Fe)`` and imaginary part
    ``ifft2(-i X Fo)``, both transforms of Hermitian spectra: each is an ``irfft2`` of the
    half spectrum (planar real outputs)."""
    filters = _filter_bank(rows, cols, cfg, device).filters
    even = 0.5 * (filters + _reflect_index(filters))
    ch = cols // 2 + 1
    return torch.cat([even[..., :ch], (filters - even)[..., :ch]], dim=1).contiguous()


def _kth_smallest(x: Tensor, ks) -> list:
    """Exact ``k``-th smallest values (1-based ``k`` in ``ks``) of a 1-D tensor.

    Large inputs: the ranks are bracketed with a strided subsample, only the values inside
    the bracket are selected from (a few % of them), and the rank is shifted by the count
    below the bracket; exact whenever the rank lands inside the bracket, and a full
    ``kthvalue`` otherwise."""
    L = x.numel()
    if L < 1 << 15:
        return [torch.kthvalue(x, k).values for k in ks]
    step = max(1, L >> 14)
    sub = x[::step]
    m = sub.numel()
    margin = 4 * math.isqrt(m) + 2
    lo_v = torch.kthvalue(sub, max(1, min(ks) * m // L - margin)).values
    hi_v = torch.kthvalue(sub, min(m, max(ks) * m // L + margin)).values
    below = int((x < lo_v).sum())
    cand = x[(x >= lo_v) & (x <= hi_v)]
    return [torch.kthvalue(cand, k - below).values if 1 <= k - below <= cand.numel()
            else torch.kthvalue(x, k).values for k in ks]


def _median_of_squares(x: Tensor) -> Tensor:
    """MATLAB ``median(x(:).^2)`` per row of a nonnegative ``(N, L)`` tensor (mean of the two
    middle squares when L is even), found by exact selection on ``x`` itself."""
    L = x.shape[-1]
    k = (L + 1) // 2
    out = []
    for row in x:
        if L % 2:
            (lo,) = _kth_smallest(row, [k])
            out.append(lo * lo)
        else:
            lo, hi = _kth_smallest(row, [k, k + 1])
            out.append((lo * lo + hi * hi) / 2)
    return torch.stack(out)


#: images per chunk are limited so that one orientation's responses (N x nscale complex
#: images) stay below about this many complex elements (~256 MB)
MAX_CHUNK_ELEMENTS = 16 * 2**20

#: elements of the (N, nscale, rows, cols) responses processed per band of rows on the CPU
PC_BAND_ELEMENTS = 1 << 17


def phase_congruency(x: Tensor, cfg: PhaseCongruencyConfig = PhaseCongruencyConfig()) -> PhaseCongruency:
    """``[pc, or, M, m] = myphasecong3(x)`` for a batch ``(N, H, W)`` of float64 images
    (any range; MEFB passes 0..255). Returns :class:`PhaseCongruency` maps ``(N, H, W)``.

    Large batches are processed in chunks (see :data:`MAX_CHUNK_ELEMENTS`) to bound memory;
    repeated images (e.g. a gray IR image replicated over the RGB channels) are computed once."""
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W), got {tuple(x.shape)}")
    return map_unique(lambda t: _phase_congruency(t, cfg), x.double())


def _half_spectra(x: Tensor):
    """``[X, -i X]`` for ``X = rfft2(x)`` of real ``(N, H, W)`` images: ``(N, 2, H, W//2+1)``
    complex, a numpy array (scipy's pocketfft) for CPU tensors, a tensor otherwise."""
    if cpu_tuned(x):
        xf = scipy.fft.rfft2(x.numpy())
        return np.stack([xf, xf * -1j], axis=1)
    xf = torch.fft.rfft2(x)
    return torch.stack([xf, xf * -1j], dim=1)


def _even_odd_responses(xf2, half: Tensor, cols: int, device) -> Tensor:
    """Real even / odd responses ``(N, 2S, H, W)`` of one orientation (scales 0..S-1 even,
    then S..2S-1 odd): ``irfft2`` of the half-spectrum products of ``xf2`` ``(N, 2, H, W//2+1)``
    (:func:`_half_spectra`) with ``half`` ``(2S, H, W//2+1)`` (the even filter parts, then the
    odd parts, see :func:`_half_filters`). On the CPU the products and transforms run in
    numpy / scipy's pocketfft (faster than torch's FFT for these sizes; in place)."""
    n, _, rows, ch = xf2.shape
    s = half.shape[0] // 2
    if cpu_tuned(device):
        prod = np.multiply(xf2[:, :, None], half.numpy().reshape(2, s, rows, ch))
        out = scipy.fft.irfft2(prod.reshape(n, 2 * s, rows, ch), s=(rows, cols), overwrite_x=True)
        return torch.from_numpy(out)
    prod = xf2[:, :, None] * half.view(2, s, rows, ch)
    return torch.fft.irfft2(prod.reshape(n, 2 * s, rows, ch), s=(rows, cols))


def _complex_responses(xf: np.ndarray, filters: Tensor) -> Tensor:
    """``ifft2(X .* F_s)`` for the spectra ``xf`` ``(N, H, W)`` complex (numpy) and one
    orientation's filters ``(S, H, W)`` real: ``(N, S, H, W)`` complex128, real part = even
    response, imaginary part = odd (as ``myphasecong3``'s ``EO``), by scipy's pocketfft (which
    may overwrite the product). Four complex 460x630 transforms instead of the eight real ones
    of :func:`_even_odd_responses`: Qp 1.09x faster in process on the AVX2 EPYC, the transforms
    alone 36-40 ms against 57 ms in one micro-run (BENCHMARKS.md, session 13)."""
    prod = np.multiply(xf[:, None], filters.numpy()[None])
    return torch.from_numpy(scipy.fft.ifft2(prod, overwrite_x=True))


def _phase_congruency(x: Tensor, cfg: PhaseCongruencyConfig) -> PhaseCongruency:
    """:func:`phase_congruency` of float64 images ``(N, H, W)``, every image computed."""
    n, rows, cols = x.shape
    per_image = cfg.nscale * rows * cols
    # CPU: one image at a time keeps every temporary small (cache- and allocator-friendly)
    chunk = 1 if cpu_tuned(x) else max(1, MAX_CHUNK_ELEMENTS // per_image)
    if n > chunk:  # chunks are independent: spread over the CPU threads (see .parallel)
        parts = parallel_map(lambda c: _phase_congruency(c, cfg), x.split(chunk), device=x.device)
        return PhaseCongruency(*(torch.cat(t) for t in zip(*parts)))
    bank = _filter_bank(rows, cols, cfg, str(x.device))
    eps = cfg.epsilon
    ns = cfg.nscale
    zeros = torch.zeros_like(x)
    total_energy, total_sum_an = zeros.clone(), zeros.clone()
    covx2, covy2, covxy = zeros.clone(), zeros.clone(), zeros.clone()
    if phase_native.usable(x):  # complex responses, the per-pixel work in one C++ pass per orientation
        sums = (total_energy, total_sum_an, covx2, covy2, covxy)
        xf = scipy.fft.fft2(x.contiguous().numpy())  # (N, rows, cols) complex
        for o in range(cfg.norient):
            angl = o * math.pi / cfg.norient
            cos_a, sin_a = math.cos(angl), math.sin(angl)
            eo = _complex_responses(xf, bank.filters[o])
            median_e2n = phase_native.median_squared_amplitude(eo, ns)
            t = _noise_threshold(median_e2n, bank, o, cfg)
            phase_native.accumulate_orientation(eo, t.tolist(), ns, eps, cfg.cut_off, cfg.g,
                                                (cos_a * cos_a, sin_a * sin_a, cos_a * sin_a), sums)
            del eo
        return _moments(total_energy, total_sum_an, covx2, covy2, covxy, cfg)
    half = _half_filters(rows, cols, cfg, str(x.device))
    xf2 = _half_spectra(x.contiguous())  # (N, 2, rows, cols//2+1)
    # rows per band of the per-pixel work (the responses of a band stay in cache)
    step = rows if not cpu_tuned(x) else max(1, PC_BAND_ELEMENTS // (n * ns * cols))
    for o in range(cfg.norient):
        angl = o * math.pi / cfg.norient
        cos_a, sin_a = math.cos(angl), math.sin(angl)
        # even (real part of the complex response) and odd (imaginary part) responses,
        # planar: (N, 2S, rows, cols), scales 0..S-1 even, then S..2S-1 odd
        eo = _even_odd_responses(xf2, half[o], cols, x.device)
        even, odd = eo[:, :ns], eo[:, ns:]
        # noise threshold from the median squared amplitude at the smallest scale
        e0, o0 = even[:, 0], odd[:, 0]
        median_e2n = _median_of_squares(sqrt_(torch.mul(e0, e0).addcmul_(o0, o0)).reshape(n, -1))
        t = _noise_threshold(median_e2n, bank, o, cfg).view(-1, 1, 1)
        for r0 in range(0, rows, step):
            r1 = min(r0 + step, rows)
            e_re, o_im = even[:, :, r0:r1], odd[:, :, r0:r1]  # (N, S, r, cols) views
            # amplitude per scale: sqrt(E^2 + O^2) (torch.hypot is ~10x slower; the values
            # are far from over/underflow, and the difference is an ulp)
            an = sqrt_(torch.mul(e_re, e_re).addcmul_(o_im, o_im))
            sum_an = an.sum(dim=1)
            max_an = an.amax(dim=1)
            sum_e = e_re.sum(dim=1)
            sum_o = o_im.sum(dim=1)
            e2 = torch.mul(sum_e, sum_e).addcmul_(sum_o, sum_o)
            x_energy = sqrt(e2).add_(eps)
            # sum_s (E MeanE + O MeanO - |E MeanO - O MeanE|) with MeanE = sumE / XEnergy,
            # MeanO = sumO / XEnergy: (sumE^2 + sumO^2 - sum_s |E sumO - O sumE|) / XEnergy
            cross = torch.mul(e_re, sum_o[:, None]).addcmul_(o_im, sum_e[:, None], value=-1.0).abs_().sum(dim=1)
            energy = e2.sub_(cross).div_(x_energy).sub_(t).clamp_min_(0.0)
            width = sum_an / (max_an + eps) / ns
            weight = torch.sigmoid_(width.sub_(cfg.cut_off).mul_(cfg.g))  # 1 / (1 + exp((cutOff - width) g))
            weighted = weight.mul_(energy)
            total_sum_an[:, r0:r1] += sum_an
            total_energy[:, r0:r1] += weighted
            pc2 = weighted.div_(sum_an).square_()  # pc_o^2; (pc_o cos)^2 etc. up to rounding
            covx2[:, r0:r1].add_(pc2, alpha=cos_a * cos_a)
            covy2[:, r0:r1].add_(pc2, alpha=sin_a * sin_a)
            covxy[:, r0:r1].add_(pc2, alpha=cos_a * sin_a)
        del eo, even, odd
    return _moments(total_energy, total_sum_an, covx2, covy2, covxy, cfg)


def _noise_threshold(median_e2n: Tensor, bank: _FilterBank, o: int, cfg: PhaseCongruencyConfig) -> Tensor:
    """Noise threshold ``T`` ``(N,)`` of orientation ``o`` from the median squared amplitude
    of its smallest scale ``(N,)`` (Rayleigh model of the noise energy, PC_2 rescaling)."""
    mean_e2n = -median_e2n / math.log(0.5)
    noise_power = mean_e2n / bank.em_n[o]
    est_noise_energy2 = 2 * noise_power * bank.sum_an2[o] + 4 * noise_power * bank.sum_aiaj[o]
    tau = torch.sqrt(est_noise_energy2 / 2)
    est_noise_energy = tau * math.sqrt(math.pi / 2)
    est_noise_sigma = torch.sqrt((2 - math.pi / 2) * tau**2)
    return (est_noise_energy + cfg.k * est_noise_sigma) / cfg.noise_rescale


def _moments(total_energy: Tensor, total_sum_an: Tensor, covx2: Tensor, covy2: Tensor, covxy: Tensor,
             cfg: PhaseCongruencyConfig) -> PhaseCongruency:
    """Overall PC and the max / min moments from the sums over orientations, all ``(N, H, W)``."""
    eps = cfg.epsilon
    pc = total_energy / (total_sum_an + eps)
    covx2 = covx2 / (cfg.norient / 2)
    covy2 = covy2 / (cfg.norient / 2)
    covxy = covxy / cfg.norient
    denom = torch.sqrt(covxy * covxy + (covx2 - covy2) ** 2) + eps
    big_m = (covy2 + covx2 + denom) / 2
    small_m = (covy2 + covx2 - denom) / 2
    return PhaseCongruency(pc, big_m, small_m)


# --------------------------------------------------------------------------- Qp
_QP_C = 1e-4
_CORR_BAND_ELEMENTS = 1 << 17
_QP_THRESHOLD = 0.1


def _corr_features(srcs, fused, masks, step=None) -> Tensor:
    """Zhao's ``correlation_coeffcient`` for K = 3 features x N images.

    ``srcs``: three sequences (source 1, source 2, max) of three ``(N, H, W)`` feature maps
    (PC, M, m); ``fused``: the fused image's three ``(N, H, W)`` feature maps; ``masks``: three
    ``(N, H, W)`` bool masks (source 1, source 2, max). Feature map ``k`` is feature
    ``k // N`` of image ``k % N``. Returns the pixel-wise max of the three masked
    correlation maps, ``(K, H, W)``.

    On the CPU the K feature maps are processed one at a time (11 filtered maps each), on
    the threads of :mod:`.parallel`; the masked maps are written straight into the filter's
    padded buffer (no stacked copies of all K). ``step``: feature maps per piece (default 1
    on the CPU, all K elsewhere)."""
    n, H, W = fused[0].shape
    k = 3 * n
    if step is None:
        step = k if not cpu_tuned(fused[0]) else 1
    g = gaussian_1d(11, 1.5, device=fused[0].device)
    dtype, device = fused[0].dtype, fused[0].device

    def one(sl: slice) -> Tensor:
        items = [(q // n, q % n) for q in range(sl.start, sl.stop)]  # (feature, image)
        kk = len(items)
        # the maps [s (3kk), f (kk), s^2 (3kk), f^2 (kk), s f (3kk)] are written straight into
        # the zero-padded buffer of filter2 'same' (5 rows/columns each side): no pad copy
        padded = torch.empty(11 * kk, H + 10, W + 10, dtype=dtype, device=device)
        for border in (padded[:, :5], padded[:, H + 5 :], padded[:, 5 : H + 5, :5], padded[:, 5 : H + 5, W + 5 :]):
            border.zero_()
        stack = padded[:, 5 : H + 5, 5 : W + 5]
        s, f_, ss, ff2, sf = stack.split([3 * kk, kk, 3 * kk, kk, 3 * kk])
        for q, (t, i) in enumerate(items):
            for j in range(3):
                torch.mul(srcs[j][t][i], masks[j][i], out=s[j * kk + q])
            f_[q].copy_(fused[t][i])
        torch.mul(s, s, out=ss)
        torch.mul(f_, f_, out=ff2)
        torch.mul(s.view(3, kk, H, W), f_, out=sf.view(3, kk, H, W))
        m = separable_valid(padded, g, g)  # = separable_filter2(stack, g, g, 'same')
        mu_s, mu_f, e_ss, e_ff, e_sf = (t.view(-1, kk, H, W) for t in m.split([3 * kk, kk, 3 * kk, kk, 3 * kk]))
        img = [i for _, i in items]
        unmasked = [(~masks[j][img]) for j in range(3)]  # (kk, H, W) each
        best = torch.empty(kk, H, W, dtype=dtype, device=device)
        # per-pixel correlation in bands of rows (cache-resident, one thread per operation)
        rows = H if not cpu_tuned(device) else max(1, _CORR_BAND_ELEMENTS // (3 * kk * W))
        for r0 in range(0, H, rows):
            b = slice(r0, min(r0 + rows, H))
            mus, muf = mu_s[..., b, :], mu_f[..., b, :]
            var_s = e_ss[..., b, :] - mus * mus
            var_f = e_ff[..., b, :] - muf * muf
            cov = e_sf[..., b, :] - mus * muf
            r = (cov + _QP_C) / (sqrt_((var_s * var_f).abs_()) + _QP_C)
            for j in range(3):
                r[j].masked_fill_(unmasked[j][:, b], 0.0)
            torch.amax(r, dim=0, out=best[:, b])
        return best

    # the K feature maps are independent: spread over the CPU threads (see .parallel)
    out = parallel_map(one, [slice(k0, min(k0 + step, k)) for k0 in range(0, k, step)], device=device)
    return torch.cat(out) if len(out) > 1 else out[0]


def qp(a: Tensor, b: Tensor, f: Tensor, cfg: PhaseCongruencyConfig = PhaseCongruencyConfig()) -> Tensor:
    """MEFB ``Qp`` core (Zhao et al.). ``(N, H, W)`` float64 0..255 -> ``(N,)``.

    NaN when no pixel of ``max(PC_a, PC_b)`` exceeds 0.1 (the reference divides by 0)."""
    if not (a.shape == b.shape == f.shape) or a.ndim != 3:
        raise ValueError(f"expected three (N, H, W) tensors of equal shape, got {a.shape}, {b.shape}, {f.shape}")
    n = a.shape[0]
    pcs = phase_congruency(torch.cat([a, b, f]), cfg)
    f1 = [t[:n] for t in pcs]  # (PC, M, m) of source 1, (n, H, W) views
    f2 = [t[n : 2 * n] for t in pcs]
    ff = [t[2 * n :] for t in pcs]
    pick1 = f1[0] > f2[0]
    fmax = [torch.where(pick1, u, v) for u, v in zip(f1, f2)]  # M, m follow the PC's source
    mask1 = f1[0] > _QP_THRESHOLD
    mask2 = f2[0] > _QP_THRESHOLD
    mask3 = fmax[0] > _QP_THRESHOLD
    best = _corr_features((f1, f2, fmax), ff, (mask1, mask2, mask3))  # (3n, H, W)
    area = mask3.sum(dim=(-2, -1)).to(torch.float64)  # (n,)
    scores = best.sum(dim=(-2, -1)).reshape(3, n) / area
    return scores.prod(dim=0)

