"""Latency of MMAIF (``small`` preset, random or shipped weights) in reg and flow mode on CPU.

    python benchmarks/bench_mmaif.py [--threads 1 2] [--sizes 256 1024] [--rounds 3] [--weights random|shipped|PATH]
        [--out benchmarks/results/mmaif.md]

One call = ``model(a, b, prompt=..., mode=...)`` on an RGB pair: tokenizer encode of both
sources, the DiT (reg: 1 pass; flow: the default 5-step midpoint sampler with velocity reuse,
5 passes), decode. Weights are random by default (latency does not depend on their values; MoE
routing does slightly); ``--weights shipped`` times the shipped model (its own preset, tokenizer
and variants), ``--weights PATH`` any MMAIF file. Rounds are interleaved over the (threads, size, mode) cases after one warm-up
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

from common import load_average, machine_line, md_table, write_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--preset", default="small", help="preset of the random model (ignored with --weights)")
    ap.add_argument("--weights", default="random", help="random (default), shipped, or an MMAIF weights file")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "mmaif.md"))
    args = ap.parse_args()
    import unifuse

    torch.manual_seed(0)
    if args.weights == "random":
        model = unifuse.load_model("mmaif", weights="random", preset=args.preset)
        what = f"`{args.preset}` preset, random weights"
    else:
        from unifuse.models.mmaif.checkpoint import shipped_weights_path

        path = shipped_weights_path() if args.weights == "shipped" else Path(args.weights)
        model = unifuse.load_model("mmaif", weights=str(path))
        what = f"weights `{path.name}` ({args.weights}; tokenizer `{model.config.tokenizer}`)"
    modes = tuple(model.config.variants)
    n_params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(0)
    pairs = {s: (torch.rand(1, 3, s, s, generator=g), torch.rand(1, 3, s, s, generator=g)) for s in args.sizes}
    cases = [(t, s, m) for t in args.threads for s in args.sizes for m in modes]
    load_before = load_average()

    def call(t, s, m):
        torch.set_num_threads(t)
        a, b = pairs[s]
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            model(a, b, prompt="remove the haze and brighten it", mode=m)
        return time.perf_counter() - t0, time.process_time() - c0

    for t in args.threads:  # warm-up (lazy initialisation) at the smallest size only
        for m in modes:
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
             for t in args.threads for s in args.sizes if set(modes) == {"reg", "flow"}]
    c = model.config
    flow_desc = (f"{c.sampler} sampler, {c.steps} steps" + (", velocity reuse" if c.reuse else "")
                 + f", prior {c.prior}, g = {c.g:g} ({c.steps if c.reuse or c.sampler == 'euler' else 2 * c.steps} DiT passes)")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = "\n".join([
        f"# MMAIF `{args.preset}` latency on CPU" + ("" if args.weights == "random" else f" ({args.weights} weights)"), "",
        f"Command: `python benchmarks/bench_mmaif.py --threads {' '.join(map(str, args.threads))} --sizes "
        f"{' '.join(map(str, args.sizes))} --rounds {args.rounds} "
        + (f"--preset {args.preset}`  " if args.weights == "random" else f"--weights {args.weights}`  "),
        f"Date: {now}; machine: {machine_line(max(args.threads))} (threads per row below); load average (1/5/15 min) "
        f"before: {load_before}, after: {load_average()}.  ",
        f"Model: {what}, {n_params / 1e6:.1f} M parameters (tokenizer + text encoder + DiTs: {', '.join(modes)}); flow = {flow_desc}. Peak RSS {rss:.0f} MiB. "
        f"Median and min over {args.rounds} interleaved rounds after a warm-up call per (threads, mode) at the smallest size.", "",
        "With one thread, process CPU time is the work done and is little affected by other processes; wall time is not, "
        "and with two threads on a busy 2-core machine the threads also wait for each other.", "",
        md_table(["threads", "size", "mode", "wall median (s)", "wall min (s)", "CPU median (s)"], rows), "",
        ("Ratios: " + "; ".join(ratio) + "." if ratio else ""), "",
    ])
    write_report(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
