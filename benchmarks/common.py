"""Small helpers shared by the benchmark scripts: machine description, timing, memory, output.

Nothing here imports ``unifuse`` at import time (``write_report`` does, when called); the scripts put the
repository on ``sys.path`` themselves.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import torch


def cpu_model() -> str:
    """``lscpu``'s model name (falls back to ``platform.processor()``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def cpu_flags(wanted: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")) -> list[str]:
    """Which of ``wanted`` appear in ``/proc/cpuinfo`` flags (empty off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return [f for f in wanted if f in flags]


def load_average() -> str:
    """The 1/5/15-minute load averages as a string (``"n/a"`` where unavailable)."""
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def machine_line(threads: int) -> str:
    """One Markdown line describing CPU, cores, threads used and torch version."""
    flags = ", ".join(cpu_flags()) or "none detected"
    return (f"{cpu_model()}, {os.cpu_count()} logical cores (ISA flags: {flags}; torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}), {threads} torch threads, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def time_call(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def _proc_status_mib(field: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (e.g. ``VmHWM``) in MiB, ``None`` where absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (``VmHWM`` of ``/proc/self/status``).

    Falls back to ``resource.getrusage`` (kilobytes on Linux) where /proc is absent.
    """
    peak = _proc_status_mib("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    """Current resident set size in MiB (``VmRSS``), 0 where unavailable."""
    rss = _proc_status_mib("VmRSS")
    return 0.0 if rss is None else rss


def md_table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table from a header and rows (cells converted with ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_report(out: str | os.PathLike, text: str) -> None:
    """Write a benchmark's Markdown result to ``out`` (atomically, folders created) and print it."""
    from unifuse.io.atomic import atomic_write_text

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(out), text)
    print(text)


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 8) -> float:
    """Best FLOP/s of ``torch.mm`` on two ``n × n`` matrices of ``dtype`` (this CPU's practical matmul peak)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, n, generator=g).to(dtype), torch.randn(n, n, generator=g).to(dtype)
    torch.mm(x, y)
    best = min(time_call(lambda: torch.mm(x, y)) for _ in range(repeats))
    return 2 * n**3 / best


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of one ``fn()`` call under ``no_grad`` as counted by ``torch.utils.flop_counter.FlopCounterMode``
    (matmul/linear, convolution and attention products; element-wise ops, norms and softmax are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    from unifuse.models.layers import attention_native
    from unifuse.models.layers import linear as fast_linear

    fc = FlopCounterMode(display=False)
    # the counter is a thread-local dispatch mode: one torch thread keeps work that a model spreads
    # over worker threads (TITA's blockwise inference) on the calling thread, where it is counted;
    # it does not know oneDNN's linear op, so the plain linear (same products) runs while counting,
    # nor the products inside the C++ window-attention kernel: the PyTorch attention path runs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), fast_linear.disabled(), attention_native.disabled(), fc:
            fn()
    finally:
        torch.set_num_threads(threads)
    return float(fc.get_total_flops())
