"""Before/after timing of phase congruency and Qp in ONE process (interleaved, alternating order).

    python benchmarks/bench_phase_ab.py --baseline /path/to/old/checkout [--rounds 6] [--threads 1]

Loads ``unifuse/metrics/functional/phase.py`` of the baseline checkout next to this checkout's
(the baseline module imports its helpers, ``matlab`` and ``structural``, from this checkout,
so only the phase code differs) and times, on one 630x460 VIFB channel / RGB triple, the
phase congruency of one image and the native-mode Qp core on the 3 channels, alternating
which version runs first. Checks that both give the same values (max relative difference
printed). On a machine shared with other jobs this is steadier than comparing separate
processes, whose load differs from minute to minute.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def _load_baseline(root: Path):
    path = root / "unifuse" / "metrics" / "functional" / "phase.py"
    spec = importlib.util.spec_from_file_location("unifuse.metrics.functional._phase_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, type=Path)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from bench_metrics import load_triple
    from common import cpu_flags, cpu_model, load_average

    import unifuse.metrics.functional.phase as new
    old = _load_baseline(args.baseline.resolve())
    (a, b, f), src = load_triple("cpu")
    x = a[:, 0]
    A, B, F = (t[0] for t in (a, b, f))  # (3, H, W): the native wrapper's per-channel call
    cases = {"phase_congruency, 1 image": lambda m: m.phase_congruency(x),
             "qp core, 3 channels (native)": lambda m: m.qp(A, B, F)}
    print(f"{src}; {cpu_model()} ({', '.join(cpu_flags())}); {args.threads} thread(s); load {load_average()}")
    for name, fn in cases.items():
        ro, rn = fn(old), fn(new)
        ro, rn = (ro if isinstance(ro, tuple) else (ro,)), (rn if isinstance(rn, tuple) else (rn,))
        diff = max(float(((u - v).abs().max() / u.abs().max().clamp_min(1e-300))) for u, v in zip(ro, rn))
        times = {"before": [], "after": []}
        for r in range(args.rounds):
            order = [("before", old), ("after", new)]
            for label, m in (order if r % 2 == 0 else order[::-1]):
                t0 = time.perf_counter()
                fn(m)
                times[label].append(time.perf_counter() - t0)
        mb, ma = statistics.median(times["before"]), statistics.median(times["after"])
        ratios = [u / v for u, v in zip(times["before"], times["after"])]
        print(f"| {name} | {mb:.3f} | {ma:.3f} | {mb / ma:.2f}x (per-round {min(ratios):.2f}-{max(ratios):.2f}) | {diff:.1e} |",
              flush=True)
    print(f"load after: {load_average()}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"command: python benchmarks/bench_phase_ab.py --baseline {args.baseline} --rounds {args.rounds} --threads {args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
