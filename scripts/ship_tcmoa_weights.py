"""Copy a TC-MoA stage-1 training run's weights into the package as shipped weights.

Usage::

    python scripts/ship_tcmoa_weights.py RUN_DIR --stage0 MAE_RUN_DIR [--name tcmoa_small] [--hardware "..."]

Writes ``unifuse/weights/<name>.safetensors`` (the weights ``unifuse.load_model("tcmoa", weights=RUN_DIR)``
loads: the run's final EMA weights, or those of its newest checkpoint; float32, official key
names, the network config as metadata) and ``unifuse/weights/<name>.json`` (what the model card
needs: both stages' configs, iterations, wall times, hardware, sha256). ``<name>`` must be a
registry entry of one preset (``tcmoa_small`` ...) and the run's network must be that preset
exactly, because ``load_model(<name>)`` builds the preset for the shipped file. The copy is
checked by loading it back through ``unifuse.load_model(<name>)`` and comparing every tensor.
Ship only weights whose dev-split numbers were measured (scripts/benchmark_report.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unifuse.io.atomic import atomic_write_text  # noqa: E402
from unifuse.training.logging import wall_time_at  # noqa: E402
from unifuse.training.ship import file_sha256, machine_description, utc_stamp  # noqa: E402

WEIGHTS_DIR = REPO / "unifuse" / "weights"


def _fail(msg: str) -> int:
    print(f"ship_tcmoa_weights: {msg}", file=sys.stderr)
    return 2


def _run_info(run: Path) -> dict:
    """Step, wall time and config of a run folder (finished: model.json; else its newest checkpoint)."""
    from unifuse.training.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(run / "checkpoints") if (run / "checkpoints").is_dir() else None
    state = json.loads((ckpt / "state.json").read_text()) if ckpt is not None else None
    step = None
    if (run / "model.json").is_file():
        step = json.loads((run / "model.json").read_text()).get("step")
    if step is None and state is not None:
        step = state["step"]
    config = state["state"]["config"] if state is not None else None
    mae = run / "mae_backbone.safetensors"  # stage 0: the exported backbone says which step it is
    if mae.is_file():
        from safetensors import safe_open

        with safe_open(str(mae), framework="pt") as f:
            step = int((f.metadata() or {}).get("step", step))
    wall = wall_time_at(run, step) if step is not None else None
    return {"folder": str(run), "step": step, "wall_time_s": wall, "checkpoint": str(ckpt) if ckpt else None,
            "config": config}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="stage-1 training run folder (unifuse train --out DIR)")
    ap.add_argument("--stage0", type=Path, required=True, help="the stage-0 (tcmoa_mae) run folder of its backbone")
    ap.add_argument("--name", default="tcmoa_small", help="registry entry to ship for (default: tcmoa_small)")
    ap.add_argument("--dest", type=Path, default=WEIGHTS_DIR, help="output folder (default: unifuse/weights)")
    ap.add_argument("--hardware", default=None, help="description of the training machine (default: this machine)")
    args = ap.parse_args(argv)

    import unifuse
    from unifuse.errors import UnifuseError
    from unifuse.models import MODELS, _ensure_builtin
    from unifuse.models.tcmoa import save_tcmoa_weights

    _ensure_builtin()
    if args.name not in MODELS.names() or not args.name.startswith("tcmoa_"):
        return _fail(f"{args.name!r} is not a TC-MoA preset entry (tcmoa_small, tcmoa_tiny, tcmoa_base)")
    try:
        net = unifuse.load_model("tcmoa", weights=str(args.run))
    except UnifuseError as exc:
        return _fail(str(exc))
    preset_net = unifuse.create_model(args.name)
    if net.config.to_dict() != preset_net.config.to_dict():
        diff = {k: v for k, v in net.config.to_dict().items() if preset_net.config.to_dict().get(k) != v}
        return _fail(f"{args.run}: not the {args.name} preset ({diff})")
    stage1, stage0 = _run_info(args.run), _run_info(args.stage0)

    args.dest.mkdir(parents=True, exist_ok=True)
    out = args.dest / f"{args.name}.safetensors"
    save_tcmoa_weights(net, out, {"model": args.name, "step": str(stage1["step"]),
                                  "stage0_step": str(stage0["step"]), "recipe": "configs/tcmoa_small_cpu.yaml"})
    sha = file_sha256(out)

    # check: load_model(name) without weights loads exactly these
    loaded = unifuse.load_model(args.name).state_dict()
    bad = [k for k, v in net.state_dict().items() if not torch.equal(loaded[k], v)]
    if bad:
        return _fail(f"loaded weights differ from the run's for {len(bad)} tensors, e.g. {bad[:3]}")

    info = {
        "model": args.name,
        "parameters": sum(v.numel() for v in net.state_dict().values()),
        "weights": {"file": out.name, "sha256": sha, "kind": "final weights of the stage-1 run (ema_decay 0: EMA = live weights)"},
        "step": stage1["step"],
        "wall_time_s": stage1["wall_time_s"],
        "stage1": stage1,
        "stage0": stage0,
        "hardware": machine_description(args.hardware),
        "torch": torch.__version__,
        "shipped_at": utc_stamp(),
    }
    atomic_write_text(args.dest / f"{args.name}.json", json.dumps(info, indent=1) + "\n")
    print(f"wrote {out} (step {stage1['step']}, sha256 {sha[:16]}, {out.stat().st_size / 2**20:.2f} MiB) "
          f"and {args.dest / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
