"""Keep freed CPU memory in the process (glibc), so that long runs stop paying page faults.

PyTorch allocates CPU tensors with ``malloc`` and frees them when the last reference goes. A
training step allocates and frees the same large activations (megabytes each) every
iteration; with glibc's defaults, chunks above its dynamic ``mmap`` threshold are mapped and
unmapped each time, and the top of the heap is handed back to the kernel as soon as more than
the trim threshold is free. Every iteration then touches fresh pages: on the 2-core AVX2 VM of
issue 14 a TITA forward + backward at batch 2 × 64² took 0.2–0.6 s of kernel time for 200–800
thousand minor page faults (BENCHMARKS.md, session 9).

:func:`retain_freed_memory` sets glibc's ``M_MMAP_THRESHOLD`` to its maximum (32 MiB on 64-bit)
and ``M_TRIM_THRESHOLD`` to 2 GiB: allocations up to 32 MiB come from the heap and freed memory
stays in the process for reuse. The cost is a resident size that stays at its peak (what a
training run reaches anyway at every step). The setting is process-wide, so it is made by the
program that owns the process (``unifuse train``'s :class:`~unifuse.training.trainer.Trainer`,
switchable with the ``retain_freed_memory`` config key), never by importing the library.
Elsewhere than Linux with glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import platform
import sys

__all__ = ["retain_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
#: the largest mmap threshold glibc accepts on 64-bit (4 MiB · sizeof(long))
MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory at the top of the heap kept before trimming (the largest int mallopt takes, rounded)
TRIM_THRESHOLD = 2**31 - 1

_DONE: bool | None = None


def retain_freed_memory() -> bool:
    """Apply the glibc settings above once per process; whether they are in effect."""
    global _DONE
    if _DONE is not None:
        return _DONE
    _DONE = False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _DONE = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return _DONE
