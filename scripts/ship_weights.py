"""Copy a training run's EMA weights into the package as the shipped TITA weights.

Usage::

    python scripts/ship_weights.py RUN_DIR [--step N] [--kind ema|live] [--hardware "2-core CPU ..."]

Writes ``unifuse/weights/tita.safetensors`` (the EMA weights — or with ``--kind live`` the
training weights — of the run's newest checkpoint, or of checkpoint ``--step``; float32) and ``unifuse/weights/tita.json`` (what the model card needs:
the resolved training config, iterations, wall time, hardware, sha256 of the weights). The run's
model config must be TITA's defaults (the paper architecture), because ``load_model('tita')``
builds the default network for the shipped file. The copy is checked by loading it back through
``unifuse.load_model('tita')`` and comparing every tensor with the checkpoint's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unifuse.models.tita import TITA  # noqa: E402
from unifuse.io.atomic import atomic_write_text  # noqa: E402
from unifuse.training.logging import wall_time_at  # noqa: E402
from unifuse.errors import ConfigError  # noqa: E402
from unifuse.training.checkpoint import atomic_save_safetensors  # noqa: E402
from unifuse.training.ship import checkpoint_state, file_sha256, machine_description, run_checkpoint, utc_stamp  # noqa: E402

WEIGHTS_DIR = REPO / "unifuse" / "weights"


def _fail(msg: str) -> int:
    print(f"ship_weights: {msg}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="training run folder (with checkpoints/)")
    ap.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    ap.add_argument("--kind", choices=("ema", "live"), default="ema",
                    help="which weights of the checkpoint: the EMA (default) or the live training weights")
    ap.add_argument("--dest", type=Path, default=WEIGHTS_DIR, help="output folder (default: unifuse/weights)")
    ap.add_argument("--hardware", default=None, help="description of the training machine (default: this machine)")
    args = ap.parse_args(argv)

    try:
        ckpt = run_checkpoint(args.run, args.step)
    except ConfigError as exc:
        return _fail(str(exc))
    step, config = checkpoint_state(ckpt)
    model_cfg = {k: v for k, v in config["model"].items() if k != "name"}
    default = TITA().config.to_dict()
    diff = {k: (v, default.get(k)) for k, v in model_cfg.items() if default.get(k) != v and not (
        isinstance(v, list) and list(default.get(k, ())) == v)}
    if config["model"]["name"] != "tita" or diff:
        return _fail(f"{ckpt}: not the default TITA architecture ({diff or config['model']['name']})")

    ema = load_file(str(ckpt / ("ema.safetensors" if args.kind == "ema" else "model.safetensors")))
    out = args.dest / "tita.safetensors"
    args.dest.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors({k: v.float().contiguous() for k, v in ema.items()}, out,
                            {"format": "unifuse", "model": "tita", "step": str(step), "recipe": str(config.get("name")),
                             "kind": args.kind})
    sha = file_sha256(out)

    # check: the package loads exactly these weights by default
    import unifuse

    net = unifuse.load_model("tita", weights=str(out))
    loaded = net.state_dict()
    bad = [k for k, v in ema.items() if not torch.equal(loaded[k], v.float())]
    if bad:
        return _fail(f"loaded weights differ from the checkpoint for {len(bad)} tensors, e.g. {bad[:3]}")

    wall = wall_time_at(args.run, step)
    info = {
        "model": "tita",
        "parameters": sum(v.numel() for v in ema.values()),
        "weights": {"file": out.name, "sha256": sha, "kind": ("EMA (exponential moving average) of the training weights" if args.kind == "ema"
                                                         else "live training weights (not the EMA)")},
        "step": step,
        "iterations_planned": config.get("iterations"),
        "wall_time_s": wall,
        "hardware": machine_description(args.hardware),
        "torch": torch.__version__,
        "checkpoint": str(ckpt),
        "shipped_at": utc_stamp(),
        "config": config,
    }
    atomic_write_text(args.dest / "tita.json", json.dumps(info, indent=1) + "\n")
    print(f"wrote {out} (step {step}, sha256 {sha[:16]}, {out.stat().st_size / 2**20:.2f} MiB) and {args.dest / 'tita.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
