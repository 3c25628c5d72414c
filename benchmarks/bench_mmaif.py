"""Latency of MMAIF (``small`` preset, random weights) in reg and flow mode on CPU.

    python benchmarks/bench_mmaif.py [--threads 1 2] [--sizes 256 1024] [--rounds 3] [--out benchmarks/results/mmaif.md]

One call = ``model(a, b, prompt=..., mode=...)`` on an RGB pair: tokenizer encode of both
sources, the DiT (reg: 1 pass; flow: the default 5-step midpoint sampler with velocity reuse,
5 passes), decode. Weights are random (latency does not depend on their values; MoE routing
does slightly). Rounds are interleaved over the (threads, size, mode) cases after one warm-up
call per (threads, mode) at the smallest size; reported: wall-clock median and min and process-CPU
median over the rounds, and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import datetime
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_average, machine_line, md_table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "mmaif.md"))
    args = ap.parse_args()
    import unifuse

    torch.manual_seed(0)
    model = unifuse.load_model("mmaif", weights="random", preset=args.preset)
    n_params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(0)
    pairs = {s: (torch.rand(1, 3, s, s, generator=g), torch.rand(1, 3, s, s, generator=g)) for s in args.sizes}
    cases = [(t, s, m) for t in args.threads for s in args.sizes for m in ("reg", "flow")]
    load_before = load_average()

    def call(t, s, m):
        torch.set_num_threads(t)
        a, b = pairs[s]
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            model(a, b, prompt="remove the haze and brighten it", mode=m)
        return time.perf_counter() - t0, time.process_time() - c0

    for t in args.threads:  # warm-up (lazy initialisation) at the smallest size only
        for m in ("reg", "flow"):
            call(t, min(args.sizes), m)
    times = {c: [] for c in cases}
    for _ in range(args.rounds):
        for c in cases:
            times[c].append(call(*c))
    wall = {c: [w for w, _ in v] for c, v in times.items()}
    cpu = {c: [p for _, p in v] for c, v in times.items()}
    rows = [[str(t), f"{s}×{s}", m, f"{np.median(wall[(t, s, m)]):.2f}", f"{min(wall[(t, s, m)]):.2f}",
             f"{np.median(cpu[(t, s, m)]):.2f}"] for (t, s, m) in cases]
    ratio = [f"{s}²: flow/reg = {np.median(cpu[(t, s, 'flow')]) / np.median(cpu[(t, s, 'reg')]):.1f}× in CPU time at {t} thread(s)"
             for t in args.threads for s in args.sizes]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = "\n".join([
        f"# MMAIF `{args.preset}` latency on CPU", "",
        f"Command: `python benchmarks/bench_mmaif.py --threads {' '.join(map(str, args.threads))} --sizes "
        f"{' '.join(map(str, args.sizes))} --rounds {args.rounds} --preset {args.preset}`  ",
        f"Date: {now}; machine: {machine_line(max(args.threads))} (threads per row below); load average (1/5/15 min) "
        f"before: {load_before}, after: {load_average()}.  ",
        f"Model: `{args.preset}` preset, {n_params / 1e6:.1f} M parameters (tokenizer + text encoder + reg and flow DiTs), "
        f"random weights; flow = midpoint sampler, 5 steps, velocity reuse (5 DiT passes). Peak RSS {rss:.0f} MiB. "
        f"Median and min over {args.rounds} interleaved rounds after a warm-up call per (threads, mode) at the smallest size.", "",
        "With one thread, process CPU time is the work done and is little affected by other processes; wall time is not, "
        "and with two threads on a busy 2-core machine the threads also wait for each other.", "",
        md_table(["threads", "size", "mode", "wall median (s)", "wall min (s)", "CPU median (s)"], rows), "",
        "Ratios: " + "; ".join(ratio) + ".", "",
    ])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
