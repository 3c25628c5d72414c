"""Profiles behind the metric speed work (tables go to benchmarks/results/).

    python benchmarks/profile_metrics.py suite   # cProfile of one evaluate_batch of the default suite
    python benchmarks/profile_metrics.py pc      # torch.profiler per-op table of one phase_congruency call

Both on the VIFB carLight / GFF triple (630x460 RGB, native mode), 1 thread, after one
warm-up call. Prints to stdout.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metrics import load_triple  # noqa: E402


def main(argv=None) -> int:
    what = (argv or sys.argv[1:] or ["suite"])[0]
    torch.set_num_threads(1)
    from unifuse import metrics as M
    from unifuse.metrics.functional.phase import phase_congruency

    (a, b, f), src = load_triple("cpu")
    print(f"# {src}, 1 thread, torch {torch.__version__}")
    if what == "suite":
        suite = M.default_metrics()
        M.evaluate_batch(f, a, b, metrics=suite)
        pr = cProfile.Profile()
        t0 = time.perf_counter()
        pr.enable()
        M.evaluate_batch(f, a, b, metrics=suite)
        pr.disable()
        print(f"suite {time.perf_counter() - t0:.2f} s")
        pstats.Stats(pr, stream=sys.stdout).sort_stats("cumulative").print_stats(60)
    else:
        from torch.profiler import profile

        x = a[:, 0]
        phase_congruency(x)
        with profile() as p:
            t0 = time.perf_counter()
            phase_congruency(x)
            print(f"phase_congruency {time.perf_counter() - t0:.2f} s")
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    return 0


if __name__ == "__main__":
    sys.exit(main())
