"""Time one TITA training iteration and write ``benchmarks/results/train.md`` (or ``--output``).

One iteration = the paper's: 3 tasks × batch 8 × 64×64 crops, forward + losses, FAMO
backward, Adam step, FAMO re-evaluation (3 no-grad forwards) and logit step, EMA update
(:meth:`unifuse.training.trainer.Trainer.train_step`). Batches are random tensors held in
memory, so data loading is not included (``--data`` also times real batches from
``../shared/data`` when present).

With ``--official DIR`` (a checkout of ``github:huxingyuabc/TITA``, never committed; see
``benchmarks/official.py``) the official training step (its network, losses, FAMO and EMA,
driven as its ``train.py`` loop does) runs on the same batches, interleaved round by round
with ours, and the per-round speed-up is reported.

Usage::

    python benchmarks/bench_train.py [--iters 5] [--warmup 1] [--threads N] [--device cpu]
        [--config configs/tita.yaml] [--set model.depths_ex=1 ...] [--data] [--official DIR]
        [--no-write] [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from unifuse.training.config import from_dict, read_yaml, set_dotted  # noqa: E402
from unifuse.training.trainer import Trainer  # noqa: E402


def _dummy_folders(root: Path, size: int) -> list[dict]:
    """One tiny image pair per task so that the trainer can be built (batches are replaced)."""
    tasks = []
    for t in ("IVF", "MFF", "MEF"):
        for sub in ("a", "b"):
            (root / t / sub).mkdir(parents=True, exist_ok=True)
            for i in range(8):
                Image.fromarray(np.full((size, size), 100 + i, np.uint8)).save(root / t / sub / f"{i}.png")
        tasks.append({"name": t, "datasets": [{"type": "folder", "root": str(root / t), "sub_a": "a", "sub_b": "b"}]})
    return tasks


class RandomBatches:
    """Endless fixed random batches {task: {"A","B","names"}} of shape (b, 1, s, s)."""

    def __init__(self, tasks, b, s, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.batch = {t: {"A": torch.rand(b, 1, s, s, generator=g), "B": torch.rand(b, 1, s, s, generator=g),
                          "names": [f"{t}_{i}" for i in range(b)]} for t in tasks}

    def __next__(self):
        return {t: dict(v) for t, v in self.batch.items()}

    def state_dict(self):
        return {}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "tita.yaml"))
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (YAML value)")
    ap.add_argument("--diagnostics", action="store_true", help="also compute the gradient-conflict diagnostics every iteration")
    ap.add_argument("--data", action="store_true", help="also time loading real batches from the config's data_root")
    ap.add_argument("--official", type=Path, default=None,
                    help="checkout of huxingyuabc/TITA: also time its training step, interleaved with ours")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write the results file")
    ap.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "train.md"), help="results file (Markdown)")
    args = ap.parse_args(argv)

    import yaml

    if args.threads:
        torch.set_num_threads(args.threads)
    data = read_yaml(args.config)
    real_tasks = data.get("tasks")
    with tempfile.TemporaryDirectory() as tmp:
        data["tasks"] = _dummy_folders(Path(tmp) / "data", 8)
        for kv in args.set:
            k, _, v = kv.partition("=")
            set_dotted(data, k, yaml.safe_load(v))
        data.update(device=args.device, tensorboard=False, checkpoint_every=10**9, diagnostics_every=1 if args.diagnostics else 0)
        cfg = from_dict(data, "bench")
        cfg.data_root = str(REPO.parent / "shared" / "data") if cfg.data_root.startswith("..") else cfg.data_root
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        trainer.batches = RandomBatches(trainer.task_names, cfg.batch_size, cfg.crop_size, trainer.device)
        n_params = sum(p.numel() for p in trainer.model.parameters())

        def sync():
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)

        official = None
        if args.official is not None:
            from official import OfficialTrainStep

            if set(trainer.task_names) - {"IVF", "MFF", "MEF"}:
                ap.error("--official needs the tasks IVF, MFF and MEF")
            official = OfficialTrainStep(args.official, trainer.batches.batch, device=trainer.device)

        cpu = {"ours": [], "official": []}

        def timed(fn, who: str = "ours") -> float:
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            sync()
            cpu[who].append(time.process_time() - c0)
            return time.perf_counter() - t0

        for _ in range(args.warmup):
            trainer.train_step()
            if official is not None:
                official()
        sync()
        times, times_off = [], []
        for _ in range(args.iters):  # interleaved rounds: [ours, official]
            times.append(timed(trainer.train_step))
            if official is not None:
                times_off.append(timed(official, "official"))
        threads = torch.get_num_threads()
        if trainer.device.type == "cuda":
            peak = f"{torch.cuda.max_memory_allocated(trainer.device) / 2**30:.2f} GiB (CUDA, allocated)"
        else:
            import resource

            peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (process peak RSS)"
        trainer.close()

    data_line = ""
    if args.data and real_tasks:
        dcfg = from_dict({**read_yaml(args.config), "tensorboard": False}, "bench")
        from unifuse.training.config import resolve_data_root

        dcfg.data_root = str(resolve_data_root(dcfg.data_root, Path(args.config)))
        with tempfile.TemporaryDirectory() as tmp:
            tr = Trainer(dcfg, Path(tmp) / "run", progress=False)
            next(tr.batches)
            t0 = time.perf_counter()
            for _ in range(args.iters):
                next(tr.batches)
            data_line = f"| data loading (real images, {dcfg.num_workers} worker threads) | {(time.perf_counter() - t0) / args.iters:.3f} s |"
            tr.close()

    med, mean = statistics.median(times), statistics.fmean(times)
    dev = torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    lines = [
        "# Training iteration time",
        "",
        f"One TITA iteration as in the paper: {len(cfg.tasks)} tasks × batch {cfg.batch_size} × {cfg.crop_size}×{cfg.crop_size}, "
        f"forward + losses, {cfg.weighting.name} backward, Adam step"
        + (", FAMO re-evaluation (3 no-grad forwards) + logit step" if cfg.weighting.name == "famo" else "")
        + ", EMA update" + (", gradient-conflict diagnostics" if args.diagnostics else "") + ".",
        "Batches are in-memory random tensors (no data loading).",
        "",
        "| item | value |",
        "|---|---|",
        f"| model | `{cfg.model['name']}`, {n_params:,} parameters, overrides: {', '.join(args.set) or 'none'} |",
        f"| device | {dev}, torch {torch.__version__}, {threads} threads |",
        f"| load average at the end (1, 5, 15 min) | {load} |",
        f"| iterations timed (after {args.warmup} warm-up) | {args.iters} |",
        f"| peak memory | {peak} |",
        f"| **median time per iteration** | **{med:.3f} s** |",
        f"| mean / min / max | {mean:.3f} / {min(times):.3f} / {max(times):.3f} s |",
        f"| median process CPU time per iteration (all threads; robust to other processes on a 1-thread run) | "
        f"{statistics.median(cpu['ours']):.3f} s |",
        f"| projected {cfg.iterations:,} iterations | {med * cfg.iterations / 3600:.1f} h |",
    ]
    if data_line:
        lines.append(data_line)
    if official is not None:
        ratios = [o / u for o, u in zip(times_off, times)]
        lines += [
            f"| official step ({official.n_params:,} parameters; its network, losses, FAMO, Adam, EMA) | "
            f"median {statistics.median(times_off):.3f} s (min {min(times_off):.3f}, max {max(times_off):.3f}) |",
            f"| **speed-up, official ÷ ours (median of per-round ratios; target ≥ 2×)** | "
            f"**{statistics.median(ratios):.2f}×** (range {min(ratios):.2f}–{max(ratios):.2f}) |",
            f"| official step, median process CPU time | {statistics.median(cpu['official']):.3f} s |",
            f"| speed-up in process CPU time, official ÷ ours (median of per-round ratios) | "
            f"{statistics.median([o / u for o, u in zip(cpu['official'], cpu['ours'])]):.2f}× |",
            "",
            "Raw times (s), ours: " + ", ".join(f"{t:.2f}" for t in times)
            + "; official: " + ", ".join(f"{t:.2f}" for t in times_off) + ". Rounds are interleaved "
            "(ours, then official), both on the same in-memory batches and from their own random initialisation; "
            "the peak memory above is the process's, which ran both.",
        ]
    lines += ["", f"Command: `python benchmarks/bench_train.py {' '.join(argv if argv is not None else sys.argv[1:])}`", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
