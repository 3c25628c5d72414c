"""The window-attention C++ kernel against an older version of it, interleaved in one process.

    python benchmarks/bench_attention_kernel.py --baseline /path/to/old/checkout [--rounds 40] [--threads 1]

Both sources (``unifuse/csrc/window_attention.cpp`` of the baseline checkout and of this one)
are compiled with the flags ``unifuse.native`` uses (``-O3 -march=native`` ...) into a
temporary folder and called through ctypes on the same inputs: TITA's training shape (batch 2
of 64×64 tokens: 2 images × 64 windows × 6 heads of 64 tokens, d = 10, float32, shift mask).
Each round times, for each version in turn, the forward without and with the softmax output
kept for the backward, and the backward; medians over the rounds, and old / new ratios. The
outputs of the two versions are compared first (largest absolute difference). The items run
on the calling thread (the kernel's own range splitting over threads is not involved).
Writes ``benchmarks/results/attention_kernel.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from unifuse.models.layers.attention_native import _strides as strides

REPO = Path(__file__).resolve().parents[1]
SOURCE = Path("unifuse") / "csrc" / "window_attention.cpp"
P = ctypes.c_void_p


def build(src: Path, out: Path) -> ctypes.CDLL:
    from unifuse import native

    cxx = native._compiler()
    if cxx is None:
        raise SystemExit("no C++ compiler found (g++, c++, clang++ or $CXX)")
    flags = [*native._FLAGS, *native._source_flags(src.read_bytes())]
    subprocess.run([cxx, *flags, str(src), "-o", str(out)], check=True)
    return ctypes.CDLL(str(out))


class Case:
    """Inputs ``(B, nW, heads, L, d)`` as strided head views of token-major tensors, and calls."""

    def __init__(self, B=2, nW=64, h=6, L=64, d=10, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.dims = (B, nW, h, L, d)
        self.q, self.k, self.v, self.g = (torch.randn(B, nW, L, h, d, generator=g).transpose(2, 3) for _ in range(4))
        self.bias = torch.randn(h, L, L, generator=g) * 0.5
        self.mask = (torch.rand(nW, L, L, generator=g) < 0.1).float() * -100.0

    def fwd(self, lib, probs=None):
        B, nW, h, L, d = self.dims
        out = self.q.new_empty(B, nW, L, h, d).transpose(2, 3)
        rc = lib.uf_wattn_fwd_f32(P(self.q.data_ptr()), strides(self.q), P(self.k.data_ptr()), strides(self.k),
                                  P(self.v.data_ptr()), strides(self.v), P(self.bias.data_ptr()),
                                  P(self.mask.data_ptr()), ctypes.c_double(d**-0.5), P(out.data_ptr()), strides(out),
                                  P(None if probs is None else probs.data_ptr()), L, nW, h, d,
                                  ctypes.c_int64(0), ctypes.c_int64(B * nW * h))
        if rc:
            raise RuntimeError("forward kernel refused the shape")
        return out

    def bwd(self, lib, probs):
        B, nW, h, L, d = self.dims
        dq, dk, dv = (self.q.new_empty(B, nW, L, h, d).transpose(2, 3) for _ in range(3))
        db = torch.zeros(h, L, L)
        rc = lib.uf_wattn_bwd_f32(P(self.q.data_ptr()), strides(self.q), P(self.k.data_ptr()), strides(self.k),
                                  P(self.v.data_ptr()), strides(self.v), P(probs.data_ptr()), P(self.g.data_ptr()),
                                  strides(self.g), ctypes.c_double(d**-0.5), P(dq.data_ptr()), strides(dq),
                                  P(dk.data_ptr()), strides(dk), P(dv.data_ptr()), strides(dv), P(db.data_ptr()),
                                  L, nW, h, d, ctypes.c_int64(0), ctypes.c_int64(B * nW * h))
        if rc:
            raise RuntimeError("backward kernel refused the shape")
        return dq, dk, dv, db


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, type=Path, help="older checkout whose kernel source is compared")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the kernel calls run on this thread)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "attention_kernel.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    case = Case()
    B, nW, h, L, d = case.dims
    with tempfile.TemporaryDirectory() as tmp:
        libs = {"before": build(args.baseline / SOURCE, Path(tmp) / "before.so"),
                "after": build(REPO / SOURCE, Path(tmp) / "after.so")}
        probs = {k: case.q.new_empty(B, nW, h, L, L) for k in libs}
        outs = {k: (case.fwd(lib, probs[k]), *case.bwd(lib, probs[k])) for k, lib in libs.items()}
        diff = max((a - b).abs().max().item() for a, b in zip(outs["before"], outs["after"]))
        diff = max(diff, (probs["before"] - probs["after"]).abs().max().item())
        times: dict = {(k, what): [] for k in libs for what in ("fwd", "fwd_p", "bwd")}
        for _ in range(args.rounds):
            for k, lib in libs.items():
                t0 = time.perf_counter()
                case.fwd(lib)
                t1 = time.perf_counter()
                case.fwd(lib, probs[k])
                t2 = time.perf_counter()
                case.bwd(lib, probs[k])
                t3 = time.perf_counter()
                for what, t in (("fwd", t1 - t0), ("fwd_p", t2 - t1), ("bwd", t3 - t2)):
                    times[k, what].append(t)
    med = {key: statistics.median(v) * 1e3 for key, v in times.items()}
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    names = {"fwd": "forward (inference: no softmax output kept)", "fwd_p": "forward, softmax output kept (training)",
             "bwd": "backward"}
    lines = [
        "# Window-attention kernel: before / after",
        "",
        f"Shape (images, windows, heads, tokens, head dim) = {case.dims}, float32, shift mask; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, load {load} at the end. "
        f"Before = `{args.baseline.resolve()}`, after = `{REPO}`; {args.rounds} interleaved rounds, medians. "
        f"Largest difference between the two versions' outputs (forward, softmax, dq, dk, dv, dbias): {diff:g}.",
        "",
        f"Command: `python benchmarks/bench_attention_kernel.py --baseline {args.baseline} --rounds {args.rounds} "
        f"--threads {args.threads}`",
        "",
        "| call | before (ms) | after (ms) | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for what, label in names.items():
        b, a = med["before", what], med["after", what]
        lines.append(f"| {label} | {b:.2f} | {a:.2f} | {b / a:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
