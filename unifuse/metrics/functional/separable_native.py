"""Separable float64 filtering through the C++ kernel of ``csrc/separable.cpp``.

:func:`unifuse.metrics.functional.matlab.separable_valid` (SSIM windows, VIF pyramids, Qcb's
Gaussians, Qp's correlation maps, ...) runs on the CPU as shifted sums, one tensor pass per
tap over bands of rows. The kernel does the column and the row pass row by row with the
intermediate row in L1, in the same order of operations (taps in order, zero taps skipped,
the first a product, the others fused multiply-adds as PyTorch's vectorised ``add_`` with
``alpha`` does them): equal to the shifted sums to rounding
(``tests/metrics/test_separable_native.py``).

Used for contiguous float64 CPU stacks when the kernel could be built (:mod:`unifuse.native`;
``UNIFUSE_NATIVE=0`` or :func:`disabled` switch it off). The call releases the GIL, so
metrics filtering side by side on :mod:`unifuse.parallel`'s threads run in parallel.
"""

from __future__ import annotations

import ctypes

import torch

from ... import native
from ...backend import cpu_tuned

__all__ = ["available", "usable", "separable_valid", "disabled"]

_P = ctypes.c_void_p
_L = ctypes.c_int64
_I = ctypes.c_int
_KERNEL = native.Kernel("separable", "uf_sep_abi", 1, {"uf_sep_valid": ([_P, _L, _L, _L, _P, _I, _P, _I, _P, _P], _I)})
#: ``with disabled():`` takes the shifted sums inside the block (see :class:`unifuse.native.Switch`)
disabled = _KERNEL.disabled
#: whether the kernel is switched on and built here
available = _KERNEL.available
_lib = _KERNEL.lib
#: longest 1-D kernel the C++ side takes
MAX_TAPS = 256


def usable(xp: torch.Tensor, hc: torch.Tensor, hr: torch.Tensor) -> bool:
    """Whether this call takes the kernel: float64 CPU-tuned tensors, kernels of at most
    :data:`MAX_TAPS` taps with a nonzero tap each, a nonempty output, kernel available."""
    kh, kw = hc.numel(), hr.numel()
    return (xp.dtype == torch.float64 and hc.dtype == torch.float64 and hr.dtype == torch.float64
            and cpu_tuned(xp) and 0 < kh <= MAX_TAPS and 0 < kw <= MAX_TAPS
            and xp.shape[-2] >= kh and xp.shape[-1] >= kw and bool(hc.ne(0).any()) and bool(hr.ne(0).any())
            and available())


def separable_valid(xp: torch.Tensor, hc: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Valid correlation of ``(..., Hp, Wp)`` float64 with ``outer(hc, hr)`` (1-D kernels):
    ``(..., Hp - kh + 1, Wp - kw + 1)``. Check :func:`usable` first."""
    kh, kw = hc.numel(), hr.numel()
    Hp, Wp = xp.shape[-2:]
    x3 = xp.reshape(-1, Hp, Wp).contiguous()
    out = x3.new_empty(x3.shape[0], Hp - kh + 1, Wp - kw + 1)
    if out.numel():
        hc = hc.reshape(-1).contiguous()
        hr = hr.reshape(-1).contiguous()
        tmp = x3.new_empty(Wp)
        rc = _lib().uf_sep_valid(x3.data_ptr(), x3.shape[0], Hp, Wp, hc.data_ptr(), kh, hr.data_ptr(), kw,
                                 out.data_ptr(), tmp.data_ptr())
        if rc != 0:  # usable() rules these out; never return an unfilled tensor
            raise RuntimeError(f"separable kernel refused sizes {tuple(xp.shape)}, {kh}x{kw}")
    return out.reshape(*xp.shape[:-2], *out.shape[-2:])
