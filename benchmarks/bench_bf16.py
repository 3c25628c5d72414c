"""The bf16 decision on this CPU: what ``load_model(..., precision="bf16")`` runs, and what it gains.

Prints (and writes ``--out``, default ``benchmarks/results/bf16.md``) the CPU's native bf16
support as :func:`unifuse.models.precision.cpu_bf16_support` detects it, the ``torch.mm``
throughput in fp32 and bf16 (1024², best of 5), and the TITA forward (shipped weights,
``--size`` square luma inputs) with ``precision="fp32"`` and ``"bf16"`` in ``--rounds``
interleaved rounds, with the PSNR of the bf16 output against fp32.

Usage::

    python benchmarks/bench_bf16.py [--size 256] [--rounds 3] [--threads 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import sys
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_average, machine_line, md_table, median, time_call, write_report  # noqa: E402


def matmul_gflops(dtype: torch.dtype, n: int = 1024, reps: int = 5) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    return 2 * n ** 3 / min(time_call(lambda: a @ b) for _ in range(reps)) / 1e9


def main(argv: list[str] | None = None) -> int:
    import unifuse
    from unifuse.models.precision import cpu_bf16_support

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bf16.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = load_average()
    support = cpu_bf16_support()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        nets = {"fp32": unifuse.load_model("tita"), "bf16": unifuse.load_model("tita", precision="bf16")}
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(1, 1, args.size, args.size, generator=g) for _ in range(2))
    times: dict[str, list[float]] = {k: [] for k in nets}
    outs = {}
    with torch.no_grad():
        for k, net in nets.items():
            outs[k] = net(a, b)  # warm-up
        for _ in range(args.rounds):
            for k, net in nets.items():
                times[k].append(time_call(lambda: net(a, b)))
    mse = float(((outs["bf16"].clamp(0, 1) - outs["fp32"].clamp(0, 1)) ** 2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
    gf32, gf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    rows = [[k, f"{median(v):.3f}", f"{min(v):.3f}"] for k, v in times.items()]
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        "# bf16 on CPU: what `precision=\"bf16\"` runs here", "",
        f"Command: `python benchmarks/bench_bf16.py --size {args.size} --rounds {args.rounds} --threads {args.threads}`  ",
        f"Date: {now}; machine: {machine_line(args.threads)}; load average before: {load_before}, after: {load_average()}.", "",
        f"Native bf16 detected: **{support or 'none'}**; notice: "
        + ("; ".join(str(w.message) for w in said if "bf16" in str(w.message)) or "none") + ".  ",
        f"`torch.mm` 1024² (best of 5): fp32 {gf32:.0f} GFLOP/s, bf16 {gf16:.0f} GFLOP/s ({gf16 / gf32:.2f}x).", "",
        f"TITA forward (shipped weights, {args.size}x{args.size} luma, {args.rounds} interleaved rounds after a warm-up):", "",
        md_table(["precision requested", "median (s)", "min (s)"], rows), "",
        f"bf16 / fp32 speed-up (medians): {median(times['fp32']) / median(times['bf16']):.2f}x; "
        f"PSNR of the bf16 output against fp32: {psnr:.1f} dB.", "",
    ])
    write_report(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
