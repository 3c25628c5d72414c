"""Time TITA inference on CPU against the official implementation; write ``benchmarks/results/tita.md``.

Measures, with ``torch.set_num_threads(--threads)`` (default 2) and batch 1:

1. **Forward time** at each ``--sizes`` (default 256×256 and 640×512) of the official
   network (fp32), ours fp32 and ours bf16, in ``--rounds`` interleaved rounds of
   [official, ours fp32, ours bf16] after ``--warmup`` calls of each; medians and the
   speed-up ratios from the same run (on a shared machine only same-run ratios mean much).
2. **Accuracy**: max |ours fp32 − official| and the PSNR of ours bf16 against ours fp32
   (peak = dynamic range of the fp32 output, and after clamping both to [0, 1]).
3. **FLOP/s**: this CPU's measured ``torch.mm`` peak (fp32 and bf16, best of several) and
   the forward pass's FLOPs (``torch.utils.flop_counter.FlopCounterMode``: matmul, conv and
   attention FLOPs; element-wise work is not counted), giving achieved FLOP/s and the
   fraction of the matmul peak.
4. **Peak memory** (``VmHWM``, each case in a fresh subprocess) and wall time of a
   ``--tiled-size`` (default 4096) square tiled fusion (``tiled_forward``, default
   ``TileSpec`` 512/64) and of an untiled ``--untiled-size`` (default 1024) forward.

Weights: the official-layout state dict of ``../shared/reference/tita_official_case1.pt``
(both networks load the same tensors); without it, the official network's own random
initialisation (or ours, if the official code is absent). Inputs: the first TNO
infrared/visible pair of ``../shared/data`` converted to luma and resized (bicubic) to
each size; random smooth images when the data folder is absent.

The official code (``github:huxingyuabc/TITA``, never committed here) is imported from
``--official`` (default ``/work/official``) at run time. It needs ``timm``'s ``DropPath``,
``to_2tuple`` and ``trunc_normal_``: if ``timm`` is not importable, a stand-in package is
expected under ``<official>/_shim`` (see ``benchmarks/official.py``). ``mmcv`` must not be
installed (the official OAF then uses its pure-PyTorch CARAFE, which ours matches). When
the folder is absent the official comparison is skipped and said so.

Usage::

    python benchmarks/bench_tita.py [--official /work/official] [--rounds 5] [--warmup 1]
        [--threads 2] [--sizes 256x256,640x512] [--tiled-size 4096] [--untiled-size 1024]
        [--skip-memory] [--skip-flops] [--out benchmarks/results/tita.md] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from official import OFFICIAL_KWARGS, build_official, load_official  # noqa: E402
from unifuse.io.atomic import atomic_write_text  # noqa: E402

SHARED = Path(os.environ.get("UNIFUSE_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference" / "tita_official_case1.pt"
# ----------------------------------------------------------------------------- setup
def official_state_dict(official_cls) -> tuple[dict | None, str]:
    """The weights both networks load (official key layout) and a description."""
    if REFERENCE.is_file():
        sd = torch.load(REFERENCE, map_location="cpu", weights_only=False)["state_dict"]
        return dict(sd), f"`{REFERENCE.name}` state dict (official layout, {len(sd)} entries)"
    if official_cls is not None:
        torch.manual_seed(0)
        return official_cls(**OFFICIAL_KWARGS).state_dict(), "official network's random initialisation (seed 0)"
    return None, "our random initialisation (no reference weights, no official code)"


def build_ours(sd, precision: str):
    import unifuse

    return unifuse.load_model("tita", weights=sd if sd is not None else "random", precision=precision)


def make_inputs(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Two ``(1, 1, h, w)`` float32 images in [0, 1]: a real TNO pair resized, else smooth noise."""
    ir_dir = SHARED / "data" / "ivf" / "tno" / "ir"
    if ir_dir.is_dir():
        from PIL import Image

        name = sorted(os.listdir(ir_dir))[0]
        out = []
        for sub in ("ir", "vi"):
            im = Image.open(ir_dir.parent / sub / name).convert("L").resize((w, h), Image.BICUBIC)
            out.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0)[None, None])
        return out[0], out[1], f"TNO pair `{name}` (luma, bicubic-resized)"
    g = torch.Generator().manual_seed(0)
    smooth = lambda: torch.nn.functional.interpolate(  # noqa: E731
        torch.rand(1, 1, h // 8 + 1, w // 8 + 1, generator=g), size=(h, w), mode="bilinear", align_corners=False)
    return smooth(), smooth(), "random smooth images (data folder absent)"


# ----------------------------------------------------------------------------- measurements
def psnr(x: torch.Tensor, ref: torch.Tensor, peak: float) -> float:
    mse = torch.mean((x.double() - ref.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(peak**2 / mse)


def time_sizes(args, official, ours32, ours16, sizes):
    """Interleaved timing + accuracy per size. Returns a list of per-size result dicts."""
    results = []
    for h, w in sizes:
        a, b, desc = make_inputs(h, w)
        nets = [("official fp32", official), ("ours fp32", ours32), ("ours bf16", ours16)]
        nets = [(n, m) for n, m in nets if m is not None]
        outs, times = {}, {n: [] for n, _ in nets}
        with torch.no_grad():
            for _ in range(args.warmup):
                for n, m in nets:
                    outs[n] = m(a, b).float()
            for r in range(args.rounds):
                for n, m in nets:
                    times[n].append(common.time_call(lambda: m(a, b)))
                print(f"  {h}x{w} round {r + 1}/{args.rounds}: "
                      + ", ".join(f"{n} {times[n][-1]:.2f}s" for n, _ in nets), flush=True)
        res = {"size": (h, w), "inputs": desc, "times": times, "median": {n: common.median(t) for n, t in times.items()}}
        f32, f16 = outs["ours fp32"], outs["ours bf16"]
        res["psnr_range"] = psnr(f16, f32, (f32.max() - f32.min()).item())
        res["psnr_clamped"] = psnr(f16.clamp(0, 1), f32.clamp(0, 1), 1.0)
        res["bf16_maxdiff"] = (f16 - f32).abs().max().item()
        res["out_range"] = (f32.min().item(), f32.max().item())
        if "official fp32" in outs:
            res["maxdiff"] = (f32 - outs["official fp32"]).abs().max().item()
            t_off = times["official fp32"]
            res["ratio32"] = [o / u for o, u in zip(t_off, times["ours fp32"])]
            res["ratio16"] = [o / u for o, u in zip(t_off, times["ours bf16"])]
        results.append(res)
    return results


def contention_probe(threads: int, repeats: int = 50) -> dict:
    """Median time of one small element-wise op (65536×60 add) with ``threads`` and with 1 thread.

    On an idle machine more threads make it faster; when other processes occupy the cores
    every parallel region waits for a descheduled thread (a scheduler time slice, ~ms),
    so a multi-threaded time far above the 1-thread time flags a contended measurement.
    """
    x = torch.rand(65536, 60)
    out = {}
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        x + x
        out[n] = common.median([common.time_call(lambda: x + x) for _ in range(repeats)])
    torch.set_num_threads(threads)
    return out


def count_flops(net, h: int, w: int) -> float:
    """Forward FLOPs of ``net`` on an ``h × w`` luma input (see :func:`common.count_flops`)."""
    a = torch.rand(1, 1, h, w)
    return common.count_flops(lambda: net(a, a.clone()))


def memory_child(args) -> int:
    """Fresh-process memory probe: prints one JSON line with peak RSS and wall time."""
    from unifuse.inference.tiling import TileSpec, tiled_forward

    torch.set_num_threads(args.threads)
    sd, _ = official_state_dict(None)
    net = build_ours(sd, args.precision)
    n = args.size
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 1, n, n, generator=g), torch.rand(1, 1, n, n, generator=g)
    base = common.current_rss_mib()
    with torch.no_grad():
        if args.mode == "tiled":
            t = common.time_call(lambda: tiled_forward(net, a, b, TileSpec()))
        else:
            t = common.time_call(lambda: net(a, b))
    print(json.dumps({"peak_rss_mib": common.peak_rss_mib(), "rss_before_mib": base, "seconds": t}))
    return 0


def run_memory_case(args, mode: str, size: int, precision: str) -> dict:
    cmd = [sys.executable, __file__, "--memory-child", "--mode", mode, "--size", str(size), "--precision", precision,
           "--threads", str(args.threads)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report
def fmt_ratio(xs: list[float]) -> str:
    return f"{common.median(xs):.2f}× (range {min(xs):.2f}–{max(xs):.2f})"


def render(args, info, results, flops, mem) -> str:
    L = ["## TITA inference on CPU", ""]
    L.append(f"Command: `{info['command']}`  ")
    L.append(f"Date: {info['date']}  ")
    L.append(f"Machine: {info['machine']}  ")
    L.append(f"Load average (1/5/15 min) at start: {info['load_start']}; at end: {info['load_end']} "
             f"(the machine is shared; only ratios measured within this run are comparable)  ")
    L.append(f"Weights: {info['weights']}  ")
    L.append(f"Official code: {info['official']}  ")
    L.append(f"Inputs: {info['inputs']}; batch 1; the networks receive the image at exactly this size "
             "(a multiple of 8, so neither pads; the official test script would add 8 symmetric rows/columns first).")
    L.append("")
    if "probe_start" in info:
        pr = [info["probe_start"], info["probe_end"]]
        L.append("Contention probe (median time of a 65536×60 tensor add, 1 thread vs "
                 f"{args.threads} threads; on an idle machine {args.threads} threads are faster): "
                 + "; ".join(f"{w}: " + " vs ".join(f"{p[n] * 1e3:.2f} ms" for n in sorted(p))
                             for w, p in zip(("before timing", "after timing"), pr)) + ".")
        L.append("")
    if not results:
        head = [f"### Memory run: `{info['command']}`", "", f"Date: {info['date']}  ", f"Machine: {info['machine']}  ",
                f"Load average (1/5/15 min) at start: {info['load_start']}; at end: {info['load_end']}", ""]
        return "\n".join(head) + "\n" + render_memory(mem)
    L.append(f"### Forward time (median of {args.rounds} interleaved rounds after {args.warmup} warm-up call(s), eval, no_grad)")
    L.append("")
    rows = []
    for r in results:
        h, w = r["size"]
        med = r["median"]
        off = f"{med['official fp32']:.3f}" if "official fp32" in med else "skipped"
        s32 = fmt_ratio(r["ratio32"]) if "ratio32" in r else "–"
        s16 = fmt_ratio(r["ratio16"]) if "ratio16" in r else "–"
        best = {n: min(t) for n, t in r["times"].items()}
        b32 = b16 = "–"
        if "official fp32" in best:
            b32 = f"{best['official fp32'] / best['ours fp32']:.2f}×"
            b16 = f"{best['official fp32'] / best['ours bf16']:.2f}×"
        rows.append([f"{h}×{w}", off, f"{med['ours fp32']:.3f}", f"{med['ours bf16']:.3f}", s32, s16,
                     " / ".join(f"{best[n]:.2f}" for n in best), b32, b16])
    L.append(common.md_table(["size (H×W)", "official fp32 (s)", "ours fp32 (s)", "ours bf16 (s)",
                              "speed-up fp32 (target ≥ 2×)", "speed-up bf16 vs official fp32 (target ≥ 4×)",
                              "best-of-rounds times (s)", "fp32 speed-up, best times", "bf16 speed-up, best times"], rows))
    L.append("")
    L.append("Time columns are medians over rounds; speed-ups are medians of the per-round ratios (official time ÷ ours "
             "in the same round). The best-of-rounds columns (official / ours fp32 / ours bf16) are the least "
             "disturbed by other processes on a shared machine. Raw times (s):")
    L.append("")
    for r in results:
        h, w = r["size"]
        L.append(f"- {h}×{w}: " + "; ".join(f"{n}: " + ", ".join(f"{t:.2f}" for t in ts) for n, ts in r["times"].items()))
    L.append("")
    L.append("### Accuracy")
    L.append("")
    rows = []
    for r in results:
        h, w = r["size"]
        md = f"{r['maxdiff']:.2e}" if "maxdiff" in r else "skipped"
        rows.append([f"{h}×{w}", md, f"{r['psnr_range']:.1f}", f"{r['psnr_clamped']:.1f}", f"{r['bf16_maxdiff']:.2e}",
                     f"[{r['out_range'][0]:.3f}, {r['out_range'][1]:.3f}]"])
    L.append(common.md_table(["size", "max abs diff ours fp32 vs official (target ≤ 1e-5)",
                              "PSNR bf16 vs fp32, peak = fp32 dynamic range (dB)",
                              "PSNR bf16 vs fp32, both clamped to [0,1] (dB, target ≥ 40)",
                              "max abs diff bf16 vs fp32", "fp32 output range"], rows))
    L.append("")
    if flops:
        L.append("### Achieved FLOP/s vs this CPU's matmul peak")
        L.append("")
        L.append(f"Matmul peak ({args.threads} threads, `torch.mm` {flops['n']}×{flops['n']}, best of {flops['repeats']} "
                 "before and after the timing): "
                 f"fp32 {flops['peak32'] / 1e9:.1f} GFLOP/s, bf16 {flops['peak16'] / 1e9:.1f} GFLOP/s"
                 + ("" if flops["bf16_native"] else " (emulated bf16: 512×512, best of 2)") + ".  ")
        L.append("Forward FLOPs counted with `torch.utils.flop_counter.FlopCounterMode` on our fp32 forward at each "
                 "size (matmul/linear, convolution and attention products; element-wise ops, LayerNorm, softmax and "
                 "GELU are not counted). Same counter on the official forward: "
                 + ", ".join(f"{h}×{w}: {v / 1e9:.1f} GFLOP" for (h, w), v in flops["official"].items())
                 + (" (it also counts IPA's redundant key/value projections that ours folds away)." if flops["official"] else "skipped."))
        L.append("")
        rows = []
        # a CPU without native bf16 runs a bf16 request in fp32 (unifuse.models.precision)
        bf16_row = (("bf16", flops["peak16"]) if flops["bf16_native"]
                    else ("bf16 requested, ran fp32 (no native bf16)", flops["peak32"]))
        for r in results:
            h, w = r["size"]
            f = flops["ours"][(h, w)]
            for prec, key, peak in (("fp32", "ours fp32", flops["peak32"]), (bf16_row[0], "ours bf16", bf16_row[1])):
                t = r["median"][key]
                rows.append([f"{h}×{w}", prec, f"{f / 1e9:.1f}", f"{t:.3f}", f"{f / t / 1e9:.1f}", f"{f / t / peak:.1%}"])
            if "official fp32" in r["median"] and (h, w) in flops["official"]:
                t = r["median"]["official fp32"]
                fo = flops["official"][(h, w)]
                rows.append([f"{h}×{w}", "official fp32", f"{fo / 1e9:.1f}", f"{t:.3f}", f"{fo / t / 1e9:.1f}",
                             f"{fo / t / flops['peak32']:.1%}"])
        L.append(common.md_table(["size", "precision", "GFLOP / forward", "median time (s)", "achieved GFLOP/s",
                                  "fraction of matmul peak"], rows))
        L.append("")
    return "\n".join(L) + "\n" + render_memory(mem)


def render_memory(mem) -> str:
    L = []
    if mem:
        L.append("### Peak memory (fresh process per case; VmHWM = peak resident set size, includes Python, torch and the inputs)")
        L.append("")
        rows = []
        for (mode, size, prec), m in mem.items():
            case = f"{size}×{size} tiled (TileSpec 512/64, 2 passes)" if mode == "tiled" else f"{size}×{size} untiled"
            if "error" in m:
                rows.append([case, prec, "error: " + m["error"], "", ""])
            else:
                rows.append([case, prec, f"{m['peak_rss_mib']:.0f}", f"{m['rss_before_mib']:.0f}", f"{m['seconds']:.1f}"])
        L.append(common.md_table(["case", "precision", "peak RSS (MiB)", "RSS before the forward (MiB)", "wall time (s)"], rows))
        L.append("")
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------- main
def parse_sizes(s: str) -> list[tuple[int, int]]:
    out = []
    for part in s.split(","):
        h, w = part.lower().split("x")
        out.append((int(h), int(w)))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official", type=Path, default=Path("/work/official"), help="checkout of huxingyuabc/TITA")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", type=str, default="256x256,640x512", help="comma-separated HxW")
    p.add_argument("--tiled-size", type=int, default=4096)
    p.add_argument("--memory-modes", default="untiled,tiled", help="memory cases to run: untiled,tiled")
    p.add_argument("--memory-precisions", default="fp32,bf16", help="precisions of the memory cases: fp32,bf16")
    p.add_argument("--untiled-size", type=int, default=1024)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-flops", action="store_true")
    p.add_argument("--skip-timing", action="store_true", help="only the memory cases (implies no FLOP section)")
    p.add_argument("--append", action="store_true", help="append the report to --out instead of replacing it")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "tita.md")
    p.add_argument("--no-write", action="store_true")
    # internal: memory probe in a fresh process
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("tiled", "untiled"), help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--precision", choices=("fp32", "bf16"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warmup < 1 and not args.skip_timing:
        p.error("--warmup must be at least 1 (the accuracy columns compare the warm-up calls' outputs)")
    if args.memory_child:
        return memory_child(args)

    torch.set_num_threads(args.threads)
    sizes = parse_sizes(args.sizes)
    info = {"command": "python benchmarks/bench_tita.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "machine": common.machine_line(args.threads), "load_start": common.load_average()}
    official_cls, why = load_official(args.official)
    sd, info["weights"] = official_state_dict(official_cls)
    official = build_official(official_cls, sd) if official_cls is not None else None
    info["official"] = ("`huxingyuabc/TITA` network `models/network_swinfusion.SwinFusion` built as in its test.py, "
                        "pure-PyTorch CARAFE (no mmcv)" if official is not None else f"comparison skipped: {why}")
    if official is None:
        print(f"official comparison skipped: {why}", flush=True)
    ours32, ours16 = build_ours(sd, "fp32"), build_ours(sd, "bf16")
    info["inputs"] = make_inputs(8, 8)[2]

    results = []
    peaks = []
    from unifuse.models.precision import cpu_bf16_support

    # whether bf16 is native decides how a bf16 request runs (unifuse.models.precision) and the peak
    # measured: emulated bf16 runs a 2048² product at ~0.3 GFLOP/s (a minute per call), a 512² one says as much
    bf16_native = cpu_bf16_support() is not None
    bf16_peak = (lambda: common.matmul_peak(torch.bfloat16)) if bf16_native else (
        lambda: common.matmul_peak(torch.bfloat16, n=512, repeats=2))
    if not args.skip_timing and not args.skip_flops:  # measured before and after timing, best kept
        peaks.append((common.matmul_peak(torch.float32), bf16_peak()))
    if not args.skip_timing:
        info["probe_start"] = contention_probe(args.threads)
        print("timing forward passes ...", flush=True)
        results = time_sizes(args, official, ours32, ours16, sizes)
        info["probe_end"] = contention_probe(args.threads)

    flops = None
    if not args.skip_flops and results:
        print("matmul peak and FLOP counts ...", flush=True)
        peaks.append((common.matmul_peak(torch.float32), bf16_peak()))
        flops = {"n": 2048, "repeats": 8, "bf16_native": bf16_native, "peak32": max(p[0] for p in peaks), "peak16": max(p[1] for p in peaks),
                 "ours": {s: count_flops(ours32, *s) for s in sizes},
                 "official": {s: count_flops(official, *s) for s in sizes} if official is not None else {}}

    mem = {}
    if not args.skip_memory:
        modes = [m for m in (("untiled", args.untiled_size), ("tiled", args.tiled_size)) if m[0] in args.memory_modes.split(",")]
        for mode, size in modes:
            for prec in args.memory_precisions.split(","):
                print(f"memory: {mode} {size}x{size} {prec} ...", flush=True)
                mem[(mode, size, prec)] = run_memory_case(args, mode, size, prec)
                print(f"  {mem[(mode, size, prec)]}", flush=True)
    info["load_end"] = common.load_average()

    text = render(args, info, results, flops, mem)
    print(text)
    if not args.no_write:
        if args.append and args.out.is_file():
            text = args.out.read_text() + "\n" + text
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
