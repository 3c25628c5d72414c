"""Which reduced precision a device really offers: bf16 on CPUs without native support is a trap.

On a CPU without bf16 instructions torch emulates bf16 matrix products, which is several
times *slower* than fp32 (measured: TITA 10.7x slower on an AVX2-only AMD EPYC). So
``precision="bf16"`` on CPU is honoured only where the CPU has native bf16 arithmetic
(x86 AVX512_BF16 or AMX, Arm BF16); elsewhere fp32 runs instead and a one-line notice says
so, once per process.
"""

from __future__ import annotations

import functools
import platform
import warnings
from typing import Optional

import torch


class PrecisionNotice(UserWarning):
    """A precision request was changed to what the device runs well (said once per process)."""


_SAID: set[str] = set()


def _cpuinfo_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=1)
def cpu_bf16_support() -> Optional[str]:
    """The native bf16 instruction set of this CPU (``"AMX"``, ``"AVX512_BF16"``, ``"ARM_BF16"``) or ``None``.

    Asks torch first (``torch.cpu._is_amx_tile_supported`` / ``_is_avx512_bf16_supported``,
    what oneDNN dispatches on), then the CPU flags of ``/proc/cpuinfo``.
    """
    probes = (("AMX", "_is_amx_tile_supported"), ("AVX512_BF16", "_is_avx512_bf16_supported"))
    for name, fn in probes:
        probe = getattr(torch.cpu, fn, None)
        try:
            if probe is not None and probe():
                return name
        except RuntimeError:  # pragma: no cover - probe unavailable in this build
            pass
    flags = _cpuinfo_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512_BF16"
    if "bf16" in flags and platform.machine().lower() in ("aarch64", "arm64"):
        return "ARM_BF16"
    return None


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The precision to run for a request of ``precision`` on ``device``.

    ``"bf16"`` on a CPU without native bf16 (:func:`cpu_bf16_support` is ``None``) becomes
    ``"fp32"`` with a :class:`PrecisionNotice`; every other request is returned unchanged.
    Each distinct notice is issued once per process.
    """
    if precision != "bf16" or torch.device(device).type != "cpu":
        return precision
    support = cpu_bf16_support()
    if support is None:
        _say_once("bf16 requested, but this CPU has no native bf16 (AVX512_BF16, AMX or Arm BF16) and emulated "
                  "bf16 is several times slower than fp32: running in fp32")
        return "fp32"
    _say_once(f"bf16 on CPU with native {support} instructions")
    return precision


def _say_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        warnings.warn(message, PrecisionNotice, stacklevel=3)
