"""Time every degradation operator (unifuse.data.degrade) on a 640x480 RGB pair.

    python benchmarks/bench_degrade.py [--threads 1] [--rounds 7] [--out benchmarks/results/degrade.md]

Per round and operator: draw the operator's parameters with a new seed (spec ranges), then apply it to
both images of the pair (A and B), as MEF/MFF do; the pseudo-depth map of haze is included in the haze
time. Rounds are interleaved over the operators (a noisy shared machine hits all of them alike).
Reported: median and max over the rounds (the max shows the most expensive parameter draws, e.g. a
long motion kernel or two rain layers), plus a full ``degrade_pair`` (task mef, n = 3) and the IVF
composition. The input is a real 640x480 crop of ``shared/data/ivf/roadscene`` if present, otherwise
smooth random images. The target is well under 0.1 s per operator at 1 thread.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UNIFUSE_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_average, machine_line, md_table, write_report  # noqa: E402


def load_pair(h=480, w=640):
    from unifuse.io import read_image

    d = SHARED / "data" / "ivf" / "roadscene"
    if (d / "vi").is_dir():
        name = sorted(p.name for p in (d / "vi").iterdir())[0]
        a, b = read_image(d / "vi" / name).data, read_image(d / "ir" / name).data
        ta = torch.from_numpy(a).permute(2, 0, 1)[None] if a.ndim == 3 else torch.from_numpy(a)[None, None].expand(1, 3, -1, -1)
        tb = torch.from_numpy(b)[None, None].expand(1, 3, -1, -1) if b.ndim == 2 else torch.from_numpy(b).permute(2, 0, 1)[None]
        up = lambda t: torch.nn.functional.interpolate(t.float(), size=(h, w), mode="bilinear", align_corners=False)[0].clamp(0, 1)
        return up(ta).contiguous(), up(tb).contiguous(), f"RoadScene {name} resized to {w}x{h} (RGB, IR replicated to 3 channels)"
    g = torch.Generator().manual_seed(0)
    sm = lambda: torch.nn.functional.interpolate(torch.rand(1, 3, h // 16, w // 16, generator=g), size=(h, w), mode="bicubic")[0].clamp(0, 1)
    return sm(), sm(), f"smooth random {w}x{h} RGB pair"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "degrade.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from unifuse.data.degrade import ORDER, TYPES, degrade_pair
    from unifuse.data.degrade.depth import PseudoDepth
    from unifuse.data.degrade.weather import rain_layer, snow_layer

    a, b, desc = load_pair()
    h, w = a.shape[-2:]
    load_before = load_average()

    def run_op(name, seed):
        p = TYPES[name].draw(np.random.default_rng(seed), h, w, False)
        ctx = {}
        if name == "haze":
            ctx["depth"] = PseudoDepth()(a)
        elif name in ("rain", "snow"):
            ctx["layer"] = (rain_layer if name == "rain" else snow_layer)(h, w, p)  # shared layer, made once
        TYPES[name].apply(a, p, ctx)
        TYPES[name].apply(b, p, ctx)

    jobs = {n: (lambda s, n=n: run_op(n, s)) for n in ORDER}
    jobs["degrade_pair mef n=3"] = lambda s: degrade_pair(a, b, "mef", seed=s, n=3)
    jobs["degrade_pair ivf n=1-3"] = lambda s: degrade_pair(a, b, "ivf", seed=s)
    for fn in jobs.values():  # warm-up
        fn(999)
    times = {k: [] for k in jobs}
    for r in range(args.rounds):
        for k, fn in jobs.items():
            t0 = time.perf_counter()
            fn(r)
            times[k].append(time.perf_counter() - t0)
    rows = [[k, f"{1000 * np.median(v):.1f}", f"{1000 * max(v):.1f}"] for k, v in times.items()]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join([
        "# Degradation operators (`unifuse degrade`)", "",
        f"Command: `python benchmarks/bench_degrade.py --threads {args.threads} --rounds {args.rounds}`  ",
        f"Date: {now}; machine: {machine_line(args.threads)}; load average (1/5/15 min) before: {load_before}, after: {load_average()}.  ",
        f"Input: {desc}. Each operator draws new parameters every round (spec ranges) and is "
        "applied to both images of the pair (haze includes its pseudo-depth map; rain/snow make their shared layer once). "
        f"Median and max over {args.rounds} interleaved rounds after one warm-up call.", "",
        md_table(["operator (on the pair)", "median (ms)", "max (ms)"], rows), "",
    ])
    write_report(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
