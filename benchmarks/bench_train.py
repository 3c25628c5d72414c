"""Time one TITA training iteration and write ``benchmarks/results/train.md`` (or ``--output``).

One iteration = the paper's: 3 tasks × batch 8 × 64×64 crops, forward + losses, FAMO
backward, Adam step, FAMO re-evaluation (3 no-grad forwards) and logit step, EMA update
(:meth:`unifuse.training.trainer.Trainer.train_step`). Batches are random tensors held in
memory, so data loading is not included (``--data`` also times real batches from
``../shared/data`` when present).

With ``--official DIR`` (a checkout of ``github:huxingyuabc/TITA``, never committed; see
``benchmarks/official.py``) the official training step (its network, losses, FAMO and EMA,
driven as its ``train.py`` loop does) is timed first, on the same batches, in a child process
of its own (at the paper's settings the two steps together do not fit in 24 GB), and the
speed-up in process CPU time and in wall time is reported.

Warm-up: two untimed iterations by default. The official step's second iteration is ~30 %
slower than its later ones (it is still growing to its ~9 GiB: 35.0 s, then 25.1–26.3 s at
batch 2, 1 thread; BENCHMARKS.md, session 13), so with one warm-up iteration every round's
first timed official step is a slow one and the ratio comes out too high.

Usage::

    python benchmarks/bench_train.py [--iters 5] [--warmup 2] [--threads N] [--device cpu]
        [--config configs/tita.yaml] [--set model.depths_ex=1 ...] [--data] [--official DIR [--rounds R]]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Ours runs as `unifuse train` does: unifuse imported before torch, so it picks OpenMP's idle
# policy (unifuse/_openmp.py). The official child process keeps the environment's default.
_ENV_GIVEN = dict(os.environ)  # before unifuse may set an OpenMP variable
if "--official-child" not in sys.argv:
    import unifuse  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from unifuse._openmp import _KEYS as _OMP_KEYS  # noqa: E402
from unifuse.training.config import from_dict, key_value, read_yaml, set_dotted  # noqa: E402
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


def time_steps(step, device, warmup: int, iters: int) -> tuple[list[float], list[float]]:
    """Call ``step()`` ``warmup`` times untimed, then ``iters`` times; ``(wall times, process CPU times)`` in s."""
    device = torch.device(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    wall, cpu = [], []
    for _ in range(iters):
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        sync()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def official_child(args) -> int:
    """Child process: time the official step; print one JSON line (wall/CPU times, peak RSS)."""
    import json
    import resource

    from official import OfficialTrainStep

    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = args.official_child.split(",")
    batches = RandomBatches(tasks, args.child_batch, args.child_crop, args.device)
    step = OfficialTrainStep(args.official, batches.batch, device=args.device)
    wall, cpu = time_steps(step, step.device, args.warmup, args.iters)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_gib": peak, "n_params": step.n_params}))
    return 0


def _omp_settings(env) -> str:
    """The OpenMP idle settings in ``env`` (a mapping of environment variables), for the table."""
    return ", ".join(f"`{k}={env[k]}`" for k in _OMP_KEYS if k in env) or "OpenMP's defaults"


def run_official_child(args, tasks, batch: int, crop: int) -> dict:
    """Run :func:`official_child` in a fresh process; its JSON result, or ``{"error": ...}``."""
    import json
    import subprocess

    cmd = [sys.executable, __file__, "--official", str(args.official), "--official-child", ",".join(tasks),
           "--child-batch", str(batch), "--child-crop", str(crop), "--iters", str(args.iters),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--device", args.device]
    env = dict(os.environ)
    for k in _OMP_KEYS:  # the official code runs with the environment's own OpenMP settings
        if k not in _ENV_GIVEN:
            env.pop(k, None)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        if p.returncode in (-9, 137):
            return {"error": "the child process was killed by signal 9 (most likely the kernel's out-of-memory killer)"}
        return {"error": (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "tita.yaml"))
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations first (see the module docstring)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="with --official: alternate the official child process and ours this many times "
                         "(each time --warmup + --iters steps); medians over all rounds")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (YAML value)")
    ap.add_argument("--diagnostics", action="store_true", help="also compute the gradient-conflict diagnostics every iteration")
    ap.add_argument("--data", action="store_true", help="also time loading real batches from the config's data_root")
    ap.add_argument("--official", type=Path, default=None,
                    help="checkout of huxingyuabc/TITA: also time its training step, interleaved with ours")
    ap.add_argument("--official-child", default=None, help=argparse.SUPPRESS)  # internal: tasks of the child
    ap.add_argument("--child-batch", type=int, default=8, help=argparse.SUPPRESS)
    ap.add_argument("--child-crop", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--no-write", action="store_true", help="print only; do not write the results file")
    ap.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "train.md"), help="results file (Markdown)")
    args = ap.parse_args(argv)

    if args.official_child:
        return official_child(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = read_yaml(args.config)
    real_tasks = data.get("tasks")
    with tempfile.TemporaryDirectory() as tmp:
        data["tasks"] = _dummy_folders(Path(tmp) / "data", 8)
        for kv in args.set:
            set_dotted(data, *key_value(kv))
        data.update(device=args.device, tensorboard=False, checkpoint_every=10**9, diagnostics_every=1 if args.diagnostics else 0)
        cfg = from_dict(data, "bench")
        cfg.data_root = str(REPO.parent / "shared" / "data") if cfg.data_root.startswith("..") else cfg.data_root
        official = None
        if args.official is not None:
            if set(t.name for t in cfg.tasks) - {"IVF", "MFF", "MEF"}:
                ap.error("--official needs the tasks IVF, MFF and MEF")
        trainer = Trainer(cfg, Path(tmp) / "run", progress=False)
        trainer.batches = RandomBatches(trainer.task_names, cfg.batch_size, cfg.crop_size, trainer.device)
        n_params = sum(p.numel() for p in trainer.model.parameters())

        times, cpu_ours = [], []
        for r in range(args.rounds if args.official is not None else 1):
            if args.official is not None:
                print(f"round {r + 1}: timing the official step in a child process ...", file=sys.stderr, flush=True)
                res = run_official_child(args, [t.name for t in cfg.tasks], cfg.batch_size, cfg.crop_size)
                if official is None or "error" in res:
                    official = res
                else:
                    for key in ("wall", "cpu"):
                        official[key] += res[key]
                    official["peak_gib"] = max(official["peak_gib"], res["peak_gib"])
                print(f"round {r + 1}: timing ours ...", file=sys.stderr, flush=True)
            w, c = time_steps(trainer.train_step, trainer.device, args.warmup, args.iters)
            times += w
            cpu_ours += c
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
        "# Training iteration time" + (": ours and the official step" if official is not None else ""),
        "",
        f"One TITA training iteration (the paper's: 3 tasks × batch 8 × 64×64): {len(cfg.tasks)} tasks × batch {cfg.batch_size} × {cfg.crop_size}×{cfg.crop_size}, "
        f"forward + losses, {cfg.weighting.name} backward, Adam step"
        + (", FAMO re-evaluation (3 no-grad forwards) + logit step" if cfg.weighting.name == "famo" else "")
        + ", EMA update" + (", gradient-conflict diagnostics" if args.diagnostics else "") + ".",
        "Batches are in-memory random tensors (no data loading).",
        "",
        "| item | value |",
        "|---|---|",
        f"| model | `{cfg.model['name']}`, {n_params:,} parameters, overrides: {', '.join(args.set) or 'none'} |",
        f"| device | {dev}, torch {torch.__version__}, {threads} threads |",
        f"| OpenMP idle settings | ours {_omp_settings(os.environ)}"
        + (f", official {_omp_settings(_ENV_GIVEN)}" if args.official is not None else "") + " |",
        f"| load average at the end (1, 5, 15 min) | {load} |",
        f"| iterations timed (after {args.warmup} warm-up) | {args.iters}"
        + (f" per round × {args.rounds} rounds" if args.official is not None and args.rounds > 1 else "") + " |",
        f"| peak memory | {peak} |",
        f"| **median time per iteration** | **{med:.3f} s** |",
        f"| mean / min / max | {mean:.3f} / {min(times):.3f} / {max(times):.3f} s |",
        f"| median process CPU time per iteration (all threads; robust to other processes on a 1-thread run) | "
        f"{statistics.median(cpu_ours):.3f} s |",
        f"| projected {cfg.iterations:,} iterations | {med * cfg.iterations / 3600:.1f} h |",
    ]
    if data_line:
        lines.append(data_line)
    if official is not None and "error" in official:
        lines += [f"| official step | not measured: {official['error']} |"]
    elif official is not None:
        med_w, med_c = statistics.median(official["wall"]), statistics.median(official["cpu"])
        lines += [
            f"| official step ({official['n_params']:,} parameters; its network, losses, FAMO, Adam, EMA), own process | "
            f"median {med_w:.3f} s wall, {med_c:.3f} s process CPU; peak {official['peak_gib']:.2f} GiB (process peak RSS) |",
            f"| **speed-up in process CPU time, official ÷ ours (medians; target ≥ 2×)** | "
            f"**{med_c / statistics.median(cpu_ours):.2f}×** |",
            f"| speed-up in wall time, official ÷ ours (medians) | {med_w / med:.2f}× |",
            "",
            "Raw times (s), ours: wall " + ", ".join(f"{t:.2f}" for t in times) + ", CPU "
            + ", ".join(f"{t:.2f}" for t in cpu_ours) + "; official: wall "
            + ", ".join(f"{t:.2f}" for t in official["wall"]) + ", CPU " + ", ".join(f"{t:.2f}" for t in official["cpu"])
            + f". In each of the {args.rounds} round(s) the official step runs first, in a child process of its own "
            "(so neither's memory is held while the other runs), then ours, on the same in-memory batches (same seed) and from its own random "
            "initialisation. With one torch thread, process CPU time is the work done and is little "
            "affected by other processes on a shared machine; wall time is not.",
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
