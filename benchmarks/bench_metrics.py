"""Time the fusion-metric suite on one 630x460 RGB triple (VIFB carLight/GFF, native mode).

    python benchmarks/bench_metrics.py [--threads 1,2] [--repeats 3] [--device cpu] [--all] [--out benchmarks/results/metrics.md]
    python benchmarks/bench_metrics.py --baseline /path/to/old/checkout --rounds 3 [--threads 2] [--metrics qp,qcb,suite]
    python benchmarks/bench_metrics.py --floor [--threads 2] [--rounds 5]

``--baseline``: before/after comparison. Child processes alternate between the old code
(``PYTHONPATH`` = the baseline checkout) and this checkout, ``--rounds`` times each, so both
see the same machine load; each child times every default metric once (after a warm-up) and
the whole suite in one ``evaluate_batch`` call (wall time, and the process CPU time of one more
call: on a loaded machine the wall time mostly measures the load). Reports medians and old/new ratios (written to
``benchmarks/results/metrics_compare.md``).

``--floor``: the suite against the floor set by Qp's Fourier transforms. In one process,
interleaved for ``--rounds`` rounds: the whole default suite (one ``evaluate_batch``), and only
the float64 transforms Qp's phase congruency needs for this input (for each distinct image
Qp sees, one ``fft2`` and, per orientation, the spectrum times the scales' filters and one
``ifft2`` of them all), image by image as phase congruency runs, with ``--threads`` workers,
by scipy's pocketfft and by ``torch.fft``. Exact results need these transforms at the image size in
float64, so no implementation of the suite can be faster than them (written to
``benchmarks/results/metrics_floor.md``).

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


def _run(M, a, b, f, threads: int, args):
    """Per-metric times, suite time and CDDFuse-12 time with ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    load0 = _load()
    times = {}
    for name in M.list_metrics(default_only=not args.all):
        m = M.create(name)
        times[name] = timeit(lambda: m(a, b, f, mode=args.mode), args.repeats, args.device)
        print(f"[{threads} thr] {name:14s} {times[name] * 1e3:9.1f} ms", file=sys.stderr)
    suite = M.default_metrics()
    total = timeit(lambda: M.evaluate_batch(f, a, b, metrics=suite, mode=args.mode), args.repeats, args.device)
    print(f"[{threads} thr] {'SUITE':14s} {total * 1e3:9.1f} ms ({len(suite)} metrics)", file=sys.stderr)
    # CDDFuse's twelve, on cv2-gray images as CDDFuse computes them
    t_cdd = timeit(lambda: M.evaluate_batch(f, a, b, metrics=CDDFUSE12, mode="gray_cv2"), args.repeats, args.device)
    print(f"[{threads} thr] {'CDDFUSE-12':14s} {t_cdd * 1e3:9.1f} ms", file=sys.stderr)
    return times, total, t_cdd, (load0, _load())


def _child(args) -> int:
    """One timing pass (used by ``--baseline``): JSON ``{metric: seconds, "SUITE": seconds}``."""
    import json

    from unifuse import metrics as M

    torch.set_num_threads(int(str(args.threads).split(",")[0]))
    (a, b, f), _ = load_triple(args.device)
    res = {}
    names = args.metrics.split(",") if args.metrics else M.list_metrics(default_only=True) + ["suite"]
    for name in (n for n in names if n != "suite"):
        m = M.create(name)
        res[name] = timeit(lambda: m(a, b, f, mode=args.mode), 1, args.device)
    suite = M.default_metrics()
    if "suite" in names:
        run_suite = lambda: M.evaluate_batch(f, a, b, metrics=suite, mode=args.mode)  # noqa: E731
        res["SUITE"] = timeit(run_suite, 1, args.device)
        # CPU time of the process (all threads) for one more call: on a loaded machine the wall
        # time mostly measures the load, the CPU time the work done
        c0 = time.process_time()
        run_suite()
        res["SUITE_CPU"] = time.process_time() - c0
    res["_module"] = M.__file__
    Path(args.child_json).write_text(json.dumps(res))
    return 0


def compare(args) -> int:
    """Interleaved before/after rounds of :func:`_child` in subprocesses."""
    import json
    import subprocess

    base = Path(args.baseline).resolve()
    runs: dict = {"before": [], "after": []}
    for r in range(args.rounds):
        order = (("before", base), ("after", REPO))
        for label, root in (order if r % 2 == 0 else order[::-1]):  # alternate who runs first
            with tempfile.TemporaryDirectory() as td:
                out = Path(td) / "t.json"
                env = dict(os.environ, PYTHONPATH=str(root))
                cmd = [sys.executable, str(Path(__file__).resolve()), "--child-json", str(out), "--threads",
                       str(args.threads), "--device", args.device, "--mode", args.mode]
                if args.metrics:
                    cmd += ["--metrics", args.metrics]
                subprocess.run(cmd, env=env, cwd=td, check=True)
                res = json.loads(out.read_text())
            if not res.pop("_module").startswith(str(root)):
                raise SystemExit(f"child did not import unifuse from {root}")
            runs[label].append(res)
            print(f"round {r + 1} {label}: " + ", ".join(f"{k} {v:.2f} s" for k, v in res.items()) + f", load {_load():.1f}",
                  file=sys.stderr)
    med = {k: {n: statistics.median(x[n] for x in v) for n in v[0]} for k, v in runs.items()}
    names = sorted((n for n in med["before"] if n not in ("SUITE", "SUITE_CPU")), key=lambda n: -med["before"][n])
    lines = [
        "# Metric timings: before / after",
        "",
        f"Input: {load_triple('cpu')[1]}, mode `{args.mode}`, {args.threads} thread(s), device `{args.device}`, "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
        f"Before = `{base}`, after = `{REPO}`; {args.rounds} interleaved rounds (child processes alternate), "
        "medians; each child times every metric once after a warm-up call. Ratio = before / after.",
        "",
        f"Command: `python benchmarks/bench_metrics.py --baseline {base} --rounds {args.rounds} --threads {args.threads}"
        + (f" --metrics {args.metrics}" if args.metrics else "") + "`",
        "",
        "| metric | before (ms) | after (ms) | speed-up |",
        "|---|---:|---:|---:|",
    ]
    if "SUITE" in med["before"]:
        lines.append(f"| **whole default suite (one `evaluate_batch`)** | **{med['before']['SUITE'] * 1e3:.0f}** | "
                     f"**{med['after']['SUITE'] * 1e3:.0f}** | **{med['before']['SUITE'] / med['after']['SUITE']:.2f}x** |")
    if "SUITE_CPU" in med["before"] and "SUITE_CPU" in med["after"]:
        lines.append(f"| whole default suite: CPU time of the process, all threads (ms) | {med['before']['SUITE_CPU'] * 1e3:.0f} | "
                     f"{med['after']['SUITE_CPU'] * 1e3:.0f} | {med['before']['SUITE_CPU'] / med['after']['SUITE_CPU']:.2f}x |")
    for n in names:
        lines.append(f"| {n} | {med['before'][n] * 1e3:.1f} | {med['after'][n] * 1e3:.1f} | "
                     f"{med['before'][n] / med['after'][n]:.2f}x |")
    out = args.out if args.out != REPO / "benchmarks" / "results" / "metrics.md" else REPO / "benchmarks" / "results" / "metrics_compare.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _qp_images(M, a, b, f):
    """The ``(N, H, W)`` float64 batch Qp's phase congruency receives for this triple (distinct
    images only, as :func:`~unifuse.metrics.functional.shared.map_unique` computes them)."""
    from unittest import mock

    from unifuse.metrics.functional import phase as fph
    from unifuse.metrics.functional.shared import unique_images

    seen = []
    real = fph.phase_congruency
    with mock.patch.object(fph, "phase_congruency", lambda x, *r, **k: seen.append(x) or real(x, *r, **k)):
        M.create("qp")(a, b, f, mode="native")
    x = seen[0].double()
    keep, _ = unique_images(x)
    return x[keep].contiguous()


def floor(args) -> int:
    """The suite against Qp's transforms alone (see the module docstring), interleaved."""
    import numpy as np
    import scipy.fft

    from unifuse import metrics as M
    from unifuse.metrics.functional.phase import PhaseCongruencyConfig, _filter_bank

    threads = int(str(args.threads).split(",")[0])
    torch.set_num_threads(threads)
    (a, b, f), src = load_triple(args.device)
    x = _qp_images(M, a, b, f)
    n, rows, cols = x.shape
    cfg = PhaseCongruencyConfig()
    bank = _filter_bank(rows, cols, cfg, "cpu").filters  # (norient, nscale, rows, cols)
    xn, filt = x.numpy(), bank.numpy()

    # one image at a time, as phase congruency runs (a batch of all images allocates ~130 MB
    # per product and ran slower); scipy shares each orientation's scales out to its workers
    def scipy_fft():
        for i in range(n):
            xf = scipy.fft.fft2(xn[i], workers=threads)
            for o in range(cfg.norient):
                scipy.fft.ifft2(np.multiply(xf[None], filt[o]), overwrite_x=True, workers=threads)

    def torch_fft():
        for i in range(n):
            xf = torch.fft.fft2(x[i])
            for o in range(cfg.norient):
                torch.fft.ifft2(xf[None] * bank[o])

    suite = M.default_metrics()
    cases = {
        "whole default suite (one `evaluate_batch`)": lambda: M.evaluate_batch(f, a, b, metrics=suite, mode="native"),
        "Qp's transforms and spectrum products, scipy (pocketfft)": scipy_fft,
        "Qp's transforms and spectrum products, `torch.fft`": torch_fft,
    }
    for fn in cases.values():
        fn()  # warm-up
    times: dict = {k: [] for k in cases}
    load0 = _load()
    for r in range(args.rounds):
        for k, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
        print(f"round {r + 1}: " + ", ".join(f"{v[-1]:.3f} s" for v in times.values()), file=sys.stderr)
    n_t = n * (1 + cfg.norient * cfg.nscale)
    lines = [
        "# The metric suite against the floor of Qp's Fourier transforms",
        "",
        f"Input: {src}; Qp transforms {n} distinct {rows}x{cols} float64 images ({n_t} complex 2-D transforms: "
        f"per image one `fft2` and {cfg.norient} orientations x {cfg.nscale} scales of `ifft2`). "
        f"{threads} thread(s) (scipy `workers={threads}`, torch threads {threads}), torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, load {load0:.1f} -> {_load():.1f}. "
        f"{args.rounds} interleaved rounds after a warm-up; median and minimum wall time.",
        "",
        f"Command: `python benchmarks/bench_metrics.py --floor --threads {threads} --rounds {args.rounds}`",
        "",
        "| what | median (ms) | min (ms) |",
        "|---|---:|---:|",
    ]
    for k, v in times.items():
        lines.append(f"| {k} | {statistics.median(v) * 1e3:.0f} | {min(v) * 1e3:.0f} |")
    out = args.out if args.out != REPO / "benchmarks" / "results" / "metrics.md" else REPO / "benchmarks" / "results" / "metrics_floor.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="2", help="intra-op thread counts, comma-separated (e.g. 1,2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", default="native", choices=["native", "gray"])
    ap.add_argument("--all", action="store_true", help="also time the non-default variants (slow)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "metrics.md")
    ap.add_argument("--baseline", default=None, metavar="DIR", help="old checkout to compare with (interleaved)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds for --baseline and --floor")
    ap.add_argument("--floor", action="store_true", help="the suite against Qp's Fourier transforms alone (see above)")
    ap.add_argument("--metrics", default=None, help="with --baseline: comma-separated metrics to time one by one, 'suite' for the whole "
                    "default suite in one call (default: every default metric and 'suite')")
    ap.add_argument("--child-json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_json:
        return _child(args)
    if args.baseline:
        return compare(args)
    if args.floor:
        return floor(args)
    thread_counts = [int(t) for t in str(args.threads).split(",")]
    from unifuse import metrics as M

    (a, b, f), src = load_triple(args.device)
    runs = {t: _run(M, a, b, f, t, args) for t in thread_counts}
    suite = M.default_metrics()
    lines = [
        "# Metric timings",
        "",
        f"Input: {src}, mode `{args.mode}`, device `{args.device}`, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{datetime.date.today().isoformat()}. Median of {args.repeats} runs after one warm-up call. "
        "The machine is shared: other processes compete for the cores (1-minute load averages "
        "below); with more runnable processes than cores, intra-op threading stalls at every "
        "barrier, so 2-thread times can be far worse than 1-thread times.",
        "",
        f"Command: `python benchmarks/bench_metrics.py --threads {args.threads} --repeats {args.repeats} "
        f"--device {args.device} --mode {args.mode}{' --all' if args.all else ''}`",
        "",
        "| threads | load before / after | whole default suite "
        f"({len(suite)} metrics, one `evaluate_batch`) | CDDFuse's twelve (EN, SD, SF, AG, MI, MSE, CC, "
        "PSNR, SCD, VIFF, Qabf, SSIM; `gray_cv2`, one call) |",
        "|---:|:---:|---:|---:|",
    ]
    for t, (_, total, t_cdd, (l0, l1)) in runs.items():
        lines.append(f"| {t} | {l0:.1f} / {l1:.1f} | **{total * 1e3:.0f} ms** | **{t_cdd * 1e3:.0f} ms** |")
    lines += [
        "",
        "| metric | default suite | " + " | ".join(f"{t} thread(s) (ms)" for t in thread_counts) + " |",
        "|---|:---:|" + "---:|" * len(thread_counts),
    ]
    first = runs[thread_counts[0]][0]
    for name in sorted(first, key=lambda n: -first[n]):
        dflt = M.metric_info(name).default
        cells = " | ".join(f"{runs[t][0][name] * 1e3:.1f}" for t in thread_counts)
        lines.append(f"| {name} | {'yes' if dflt else 'no'} | {cells} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
