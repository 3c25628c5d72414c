"""Time the fusion-metric suite on one 630x460 RGB triple (VIFB carLight/GFF, native mode).

    python benchmarks/bench_metrics.py [--threads 2] [--repeats 3] [--device cpu] [--all] [--out benchmarks/results/metrics.md]

Reports the median wall time per metric (after one warm-up call, which also fills caches
such as FMI's binary-window table), for the whole default suite in one ``evaluate_batch``
call (intermediates shared between metrics) and for our equivalents of the twelve metrics of
CDDFuse's ``Evaluator`` (EN, SD, SF, AG, MI, MSE, CC, PSNR, SCD, VIFF, Qabf, SSIM; gray
``gray_cv2`` mode, as CDDFuse scores them) in one call. ``--all`` adds the non-default
variants (FMI on pixels/gradients take minutes). The 1-minute load average is recorded before
and after: the machine may be shared. Uses ``shared/data/vifb_dev`` when present, otherwise a
random RGB triple of the same size. Results go to ``benchmarks/results/metrics.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UNIFUSE_SHARED", REPO.parent / "shared"))


def load_triple(device):
    from unifuse.metrics import to_tensor

    d = SHARED / "data" / "vifb_dev"
    if (d / "fused" / "GFF" / "carLight.jpg").is_file():
        paths = [d / "vi" / "carLight.jpg", d / "ir" / "carLight.jpg", d / "fused" / "GFF" / "carLight.jpg"]
        src = "VIFB carLight / GFF (630x460 RGB)"
        ts = [to_tensor(p)[None] for p in paths]
    else:
        g = torch.Generator().manual_seed(0)
        ts = [torch.randint(0, 256, (1, 3, 460, 630), generator=g).double() for _ in range(3)]
        src = "random 630x460 RGB triple"
    return [t.to(device) for t in ts], src


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timeit(fn, repeats, device):
    fn()  # warm-up (caches, lazy tables)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


CDDFUSE12 = {
    "en": {}, "sd": {}, "sf": {"convention": "cddfuse"}, "ag": {"convention": "cddfuse"}, "mi": {}, "mse": {},
    "cc": {}, "psnr": {"convention": "cddfuse"}, "scd": {}, "viff": {}, "qabf": {}, "ssim": {"convention": "cddfuse"},
}


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", default="native", choices=["native", "gray"])
    ap.add_argument("--all", action="store_true", help="also time the non-default variants (slow)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "metrics.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from unifuse import metrics as M

    load0 = _load()
    (a, b, f), src = load_triple(args.device)
    rows = []
    for name in M.list_metrics(default_only=not args.all):
        m = M.create(name)
        t = timeit(lambda: m(a, b, f, mode=args.mode), args.repeats, args.device)
        rows.append((name, t, M.metric_info(name).default))
        print(f"{name:14s} {t * 1e3:9.1f} ms", file=sys.stderr)
    suite = M.default_metrics()
    total = timeit(lambda: M.evaluate_batch(f, a, b, metrics=suite, mode=args.mode), args.repeats, args.device)
    print(f"{'SUITE':14s} {total * 1e3:9.1f} ms ({len(suite)} metrics)", file=sys.stderr)
    cdd = M.evaluate_batch  # CDDFuse's twelve, on cv2-gray images as CDDFuse computes them
    t_cdd = timeit(lambda: cdd(f, a, b, metrics=CDDFUSE12, mode="gray_cv2"), args.repeats, args.device)
    print(f"{'CDDFUSE-12':14s} {t_cdd * 1e3:9.1f} ms", file=sys.stderr)
    load1 = _load()
    lines = [
        "# Metric timings",
        "",
        f"Input: {src}, mode `{args.mode}`, device `{args.device}`, torch {torch.__version__}, "
        f"{args.threads} thread(s), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {datetime.date.today().isoformat()}. 1-minute load average "
        f"{load0:.1f} before / {load1:.1f} after (the machine is shared: other processes compete "
        f"for the cores). Median of {args.repeats} runs after one warm-up call.",
        "",
        f"Command: `python benchmarks/bench_metrics.py --threads {args.threads} --repeats {args.repeats} "
        f"--device {args.device} --mode {args.mode}{' --all' if args.all else ''}`",
        "",
        f"**Whole default suite ({len(suite)} metrics, one `evaluate_batch` call): {total * 1e3:.0f} ms**",
        "",
        f"**CDDFuse's twelve metrics (EN, SD, SF, AG, MI, MSE, CC, PSNR, SCD, VIFF, Qabf, SSIM; "
        f"`gray_cv2`, one call): {t_cdd * 1e3:.0f} ms**",
        "",
        "| metric | default suite | time (ms) |",
        "|---|:---:|---:|",
    ]
    for name, t, dflt in sorted(rows, key=lambda r: -r[1]):
        lines.append(f"| {name} | {'yes' if dflt else 'no'} | {t * 1e3:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
