"""Score a training run's checkpoints (EMA and live weights) on fixed training crops; pick what to ship.

The rule used for the shipped TITA weights (docs/model_card.md), fixed before looking at
any dev-set number: for every checkpoint of the run and both weight sets (``ema``, ``live``),
evaluate each task's own training objective on one fixed ``--crop``×``--crop`` crop per
training pair (the run's own datasets and ``split``; crop position from ``--seed``), average
over the pairs of the task, sum over the tasks; the lowest sum wins. The same numbers for the
element-wise maximum and the average of the sources are printed as training-free yardsticks.
Dev pairs are never touched.

Usage::

    python scripts/select_weights.py RUN_DIR [--steps 600,1200|all|latest] [--crop 64]
        [--seed 12345] [--batch 8] [--threads 1]

Prints one table row per candidate and ends with ``best: step N kind K`` — the arguments for
``python scripts/ship_weights.py RUN_DIR --step N --kind K``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unifuse.errors import UnifuseError  # noqa: E402
from unifuse.training.checkpoint import list_checkpoints  # noqa: E402
from unifuse.training.config import dataset_specs, from_dict, read_yaml  # noqa: E402
from unifuse.training.trainer import make_task_loss  # noqa: E402

KINDS = {"ema": "ema.safetensors", "live": "model.safetensors"}


def fixed_crops(cfg, task, crop: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One crop per training pair of ``task``: sources ``(n, 1, crop, crop)`` in [0, 1]."""
    from unifuse.data.datasets import build_dataset

    a, b = [], []
    for spec in dataset_specs(cfg, task):
        ds = build_dataset({**spec, "crop": crop})
        for i in range(len(ds)):
            s = ds.get(i, seed)
            a.append(s["A"])
            b.append(s["B"])
    return torch.stack(a), torch.stack(b)


@torch.no_grad()
def mean_loss(fn, fused_of, a: torch.Tensor, b: torch.Tensor, batch: int) -> float:
    vals = [float(fn(fused_of(a[i:i + batch], b[i:i + batch]), a[i:i + batch], b[i:i + batch]))
            for i in range(0, len(a), batch)]
    return sum(vals) / len(vals)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--steps", default="all", help="'all', 'latest' or comma-separated steps")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import unifuse

    try:
        cfg = from_dict(read_yaml(args.run / "config.yaml"), "select")
        ckpts = list_checkpoints(args.run / "checkpoints")
        if not ckpts:
            raise UnifuseError(f"{args.run}: no complete checkpoint under checkpoints/")
        if args.steps == "latest":
            ckpts = ckpts[-1:]
        elif args.steps != "all":
            want = {int(s) for s in args.steps.split(",")}
            ckpts = [c for c in ckpts if c[0] in want]
            if not ckpts:
                raise UnifuseError(f"none of the steps {sorted(want)} has a checkpoint in {args.run}")
        data = {t.name: (fixed_crops(cfg, t, args.crop, args.seed), make_task_loss(cfg, t)) for t in cfg.tasks}
    except (UnifuseError, OSError, KeyError, ValueError) as e:
        print(f"select_weights: {e}", file=sys.stderr)
        return 2

    names = list(data)
    print("| candidate | " + " | ".join(f"{t} ({len(data[t][0][0])} crops)" for t in names) + " | sum |")
    print("|---" * (len(names) + 2) + "|")

    def row(label, fused_of) -> float:
        vals = [mean_loss(fn, fused_of, a, b, args.batch) for (a, b), fn in (data[t] for t in names)]
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {sum(vals):.3f} |", flush=True)
        return sum(vals)

    row("max(A, B)", torch.maximum)
    row("(A + B) / 2", lambda x, y: (x + y) / 2)
    model_cfg = dict(cfg.model)
    model_name = model_cfg.pop("name")
    scores = {}
    for step, path in ckpts:
        for kind, fname in KINDS.items():
            net = unifuse.load_model(model_name, weights=str(path / fname), **model_cfg)
            scores[(step, kind)] = row(f"step {step} {kind}", net)
    (step, kind), best = min(scores.items(), key=lambda kv: kv[1])
    print(f"best: step {step} kind {kind} (sum {best:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
