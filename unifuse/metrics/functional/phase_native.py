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
from contextlib import contextmanager
from typing import Sequence

import torch

from ... import native
from ...backend import cpu_tuned

__all__ = ["available", "usable", "median_squared_amplitude", "accumulate_orientation", "disabled"]

_P = ctypes.c_void_p
_D = ctypes.c_double
_L = ctypes.c_int64
_LIB = None
_ENABLED = True


def _lib():
    """The loaded kernel with its signatures set, or ``None`` (no compiler, disabled, ...)."""
    global _LIB
    if _LIB is None:
        lib = native.load("phase_congruency")
        if lib is None or lib.uf_pc_abi() != 1:
            return None
        lib.uf_pc_median.argtypes, lib.uf_pc_median.restype = [_P, _P, _L, _P], _D
        lib.uf_pc_orient.argtypes = [_P, _L, ctypes.c_int, _D, _D, _D, _D, _D, _D, _D, _P, _P, _P, _P, _P]
        lib.uf_pc_orient.restype = None
        _LIB = lib  # published once its signatures are set
    return _LIB


def available() -> bool:
    """Whether the kernel is built and enabled here."""
    return _ENABLED and _lib() is not None


def usable(x: torch.Tensor) -> bool:
    """Whether ``x`` (the images) takes the kernel: float64, CPU-tuned device, kernel available."""
    return x.dtype == torch.float64 and cpu_tuned(x) and available()


@contextmanager
def disabled():
    """Take the PyTorch path inside the block (tests, comparisons). Not thread-safe."""
    global _ENABLED
    saved, _ENABLED = _ENABLED, False
    try:
        yield
    finally:
        _ENABLED = saved


def median_squared_amplitude(even: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:
    """MATLAB ``median(sqrt(E.^2 + O.^2)(:).^2)`` per image of float64 ``(N, H, W)`` CPU
    responses (each image contiguous). Returns ``(N,)`` float64."""
    lib = _lib()
    n = even.shape[0]
    npix = even[0].numel()
    scratch = torch.empty(npix, dtype=torch.float64)
    out = [lib.uf_pc_median(even[i].data_ptr(), odd[i].data_ptr(), npix, scratch.data_ptr()) for i in range(n)]
    return torch.tensor(out, dtype=torch.float64)


def accumulate_orientation(eo: torch.Tensor, thresholds: Sequence[float], nscale: int, eps: float, cut_off: float,
                           g: float, angle_terms: tuple, sums: Sequence[torch.Tensor]) -> None:
    """Add one orientation to the running sums, in place.

    ``eo``: ``(N, 2 nscale, H, W)`` float64 contiguous CPU responses (even scales, then odd);
    ``thresholds``: the noise threshold ``T`` of each image; ``angle_terms``:
    ``(cos², sin², cos·sin)`` of the orientation angle; ``sums``: five ``(N, H, W)``
    contiguous float64 tensors (weighted energy, amplitude sum, covx2, covy2, covxy)."""
    lib = _lib()
    npix = eo.shape[-2] * eo.shape[-1]
    cc, ss, cs = angle_terms
    for i, t in enumerate(thresholds):
        lib.uf_pc_orient(eo[i].data_ptr(), npix, nscale, float(t), eps, cut_off, g, cc, ss, cs,
                         *(s[i].data_ptr() for s in sums))
