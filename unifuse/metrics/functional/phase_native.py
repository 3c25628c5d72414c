"""The per-pixel work of phase congruency through the C++ kernel of ``csrc/phase_congruency.cpp``.

:func:`unifuse.metrics.functional.phase.phase_congruency` spends most of its non-FFT time
on about 25 tensor passes per orientation over the filter responses (amplitudes, their sums
and maximum, the energy, the frequency-spread weight, the covariance terms) and on the
median of the smallest scale's squared amplitude. The kernel does each orientation in one
pass over the pixels (blocks of 256, vectorised by the compiler) and the median by exact
selection (``std::nth_element``). Same operations in the same order, no fused multiply-adds:
the results equal the PyTorch path's to rounding (the sigmoid's ``exp`` is the C library's;
``tests/metrics/test_phase_native.py``).

Used for float64 CPU tensors when the kernel could be built (:mod:`unifuse.native`;
``UNIFUSE_NATIVE=0`` switches it off, as does :func:`disabled`); the PyTorch path otherwise.
The calls release the GIL, so the images of one call run side by side on
:mod:`unifuse.parallel`'s threads.
"""

from __future__ import annotations

import ctypes
from typing import Sequence

import torch

from ... import native
from ...backend import cpu_tuned

__all__ = ["available", "usable", "median_squared_amplitude", "accumulate_orientation", "disabled"]

_P = ctypes.c_void_p
_D = ctypes.c_double
_L = ctypes.c_int64
_KERNEL = native.Kernel("phase_congruency", "uf_pc_abi", 2, {
    "uf_pc_median": ([_P, _P, _L, _L, _P], _D),
    "uf_pc_orient": ([_P, _P, _L, _L, _L, ctypes.c_int, _D, _D, _D, _D, _D, _D, _D, _P, _P, _P, _P, _P], ctypes.c_int),
})
#: ``with disabled():`` takes the PyTorch path inside the block (see :class:`unifuse.native.Switch`)
disabled = _KERNEL.disabled
#: whether the kernel is switched on and built here
available = _KERNEL.available
_lib = _KERNEL.lib


def usable(x: torch.Tensor) -> bool:
    """Whether ``x`` (the images) takes the kernel: float64, CPU-tuned device, kernel available."""
    return x.dtype == torch.float64 and cpu_tuned(x) and available()


def _layout(eo: torch.Tensor, nscale: int):
    """``(even, odd, scale stride, pixel stride)`` of image 0 of ``eo``: complex ``(N, S, H, W)``
    (interleaved real / imaginary parts) or planar float64 ``(N, 2S, H, W)``; both contiguous."""
    if not eo.is_contiguous():
        raise ValueError("phase-congruency responses must be contiguous")
    npix = eo.shape[-2] * eo.shape[-1]
    if eo.is_complex():
        if eo.dtype != torch.complex128:
            raise ValueError(f"expected complex128 responses, got {eo.dtype}")
        return 0, 8, 2 * npix, 2
    if eo.dtype != torch.float64:
        raise ValueError(f"expected float64 responses, got {eo.dtype}")
    return 0, nscale * npix * 8, npix, 1


def median_squared_amplitude(eo: torch.Tensor, nscale: int) -> torch.Tensor:
    """MATLAB ``median(abs(EO)(:).^2)`` of the smallest scale, per image, for responses ``eo``
    laid out as in :func:`accumulate_orientation`. Returns ``(N,)`` float64."""
    lib = _lib()
    e_off, o_off, _, pstride = _layout(eo, nscale)
    npix = eo.shape[-2] * eo.shape[-1]
    scratch = torch.empty(npix, dtype=torch.float64)
    out = []
    for i in range(eo.shape[0]):
        base = eo[i].data_ptr()
        out.append(lib.uf_pc_median(base + e_off, base + o_off, npix, pstride, scratch.data_ptr()))
    return torch.tensor(out, dtype=torch.float64)


def accumulate_orientation(eo: torch.Tensor, thresholds: Sequence[float], nscale: int, eps: float, cut_off: float,
                           g: float, angle_terms: tuple, sums: Sequence[torch.Tensor]) -> None:
    """Add one orientation to the running sums, in place.

    ``eo``: the responses of the ``N`` images, contiguous: complex128 ``(N, nscale, H, W)``
    (real part even, imaginary part odd) or float64 ``(N, 2 nscale, H, W)`` (even scales,
    then odd scales); ``thresholds``: the noise threshold ``T`` of each image;
    ``angle_terms``: ``(cos², sin², cos·sin)`` of the orientation angle; ``sums``: five
    ``(N, H, W)`` contiguous float64 tensors (weighted energy, amplitude sum, covx2, covy2,
    covxy)."""
    lib = _lib()
    e_off, o_off, sstride, pstride = _layout(eo, nscale)
    npix = eo.shape[-2] * eo.shape[-1]
    cc, ss, cs = angle_terms
    for i, t in enumerate(thresholds):
        base = eo[i].data_ptr()
        rc = lib.uf_pc_orient(base + e_off, base + o_off, sstride, pstride, npix, nscale, float(t), eps, cut_off, g,
                              cc, ss, cs, *(s[i].data_ptr() for s in sums))
        if rc != 0:
            raise RuntimeError(f"phase-congruency kernel refused pixel stride {pstride}")
