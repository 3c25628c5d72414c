"""Per-op and per-module profile of one TITA forward on CPU (eval, no_grad, fp32).

Writes ``benchmarks/results/profile_tita_<H>x<W>_<T>t.txt``: the ``torch.profiler`` op table
(self CPU time) and the wall time of each top-level module family (forward hooks), so the
largest costs can be attacked first.

Usage::

    python benchmarks/profile_tita.py [--size 256x256] [--threads 2] [--precision fp32] [--out FILE]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("UNIFUSE_SHARED", REPO.parent / "shared"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="256x256")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    import unifuse

    ref = SHARED / "reference" / "tita_official_case1.pt"
    sd = torch.load(ref, map_location="cpu", weights_only=False)["state_dict"] if ref.is_file() else "random"
    net = unifuse.load_model("tita", weights=sd, precision=a.precision).eval()
    h, w = (int(v) for v in a.size.split("x"))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(1, 1, h, w, generator=g), torch.rand(1, 1, h, w, generator=g)

    # per-module wall times (hooks on the direct children of the network and the fusion layers' parts)
    times: dict[str, float] = collections.defaultdict(float)
    starts: dict[str, float] = {}

    def hook_pair(name):
        def pre(m, inp):
            starts[name] = time.perf_counter()

        def post(m, inp, out):
            times[name] += time.perf_counter() - starts[name]
        return pre, post

    handles = []
    # with T > 1 the blocks run on worker threads at once: per-family wall times would overlap
    for name, m in (net.named_modules() if a.threads == 1 else ()):
        kind = type(m).__name__
        if kind in ("SwinBlock", "CrossSwinBlock", "InteractionPixelAttention", "OAF", "WindowAttention",
                    "CrossWindowAttention", "Mlp", "Conv2d", "LayerNorm", "TokenNorm"):
            pre, post = hook_pair(kind)
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    with torch.no_grad():
        net(x, y)  # warm-up
        times.clear()
        t0 = time.perf_counter()
        net(x, y)
        total = time.perf_counter() - t0
    for hd in handles:
        hd.remove()
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        net(x, y)
    lines = [f"TITA forward {a.size}, {a.precision}, {a.threads} threads, torch {torch.__version__}",
             f"load average: {os.getloadavg()}", f"forward wall (hooked run): {total:.3f} s", "",
             "module family wall time (inclusive; nested families overlap, e.g. CrossSwinBlock includes IPA; "
             "1 thread only):"]
    for k, v in sorted(times.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {k:28s} {v:8.3f} s  {v / total:6.1%}")
    if a.threads > 1:
        lines += ["", "op table: ops of the calling thread only (the Swin/cross blocks run on worker threads "
                  "that this profiler run does not record: convs, OAF, stage LayerNorms remain)"]
    lines += ["", prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=48)]
    text = "\n".join(lines)
    print(text)
    out = a.out or REPO / "benchmarks" / "results" / f"profile_tita_{a.size}_{a.threads}t.txt"
    out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
