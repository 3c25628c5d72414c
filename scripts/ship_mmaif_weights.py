"""Copy an MMAIF training run's EMA weights into the package as the shipped MMAIF weights.

Usage::

    python scripts/ship_mmaif_weights.py RUN_DIR [--step N] [--kind ema|live] [--dtype fp16|fp32] [--hardware "..."]
        [--unchanged FILE] [--init-json FILE]

Writes ``unifuse/weights/mmaif_small.safetensors`` (the weights of the run's newest checkpoint, or
of checkpoint ``--step``, with the model config in the metadata, so ``load_model("mmaif")`` builds
the matching network) and ``unifuse/weights/mmaif_small.json`` (what the model card needs: the
resolved training config, iterations, wall time, hardware, sha256). ``--dtype fp16`` (default)
stores the learned parameters in float16 to halve the file (the tokenizer's latent statistics stay
float32); the script loads the copy back through ``unifuse.load_model("mmaif")`` and reports the
largest parameter difference and the largest output difference on a test pair against the
float32 checkpoint, for every variant the file holds (flow: the configured sampler, seed 0).

A run that added a variant to a shipped model (``objective.init_weights``, the other DiT frozen):
``--unchanged FILE`` checks that every tensor of ``FILE`` (the model it started from) is bit-identical
in the new file (fails otherwise) and ``--init-json FILE`` keeps that model's description (its own
recipe, iterations, wall time) under ``"init_model"`` in the new json.
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

from unifuse.io.atomic import atomic_write_text  # noqa: E402
from unifuse.training.logging import wall_time_at  # noqa: E402
from unifuse.errors import ConfigError  # noqa: E402
from unifuse.training.ship import checkpoint_state, file_sha256, machine_description, run_checkpoint, utc_stamp  # noqa: E402

WEIGHTS_DIR = REPO / "unifuse" / "weights"
NAME = "mmaif_small"


def _fail(msg: str) -> int:
    print(f"ship_mmaif_weights: {msg}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="training run folder (with checkpoints/)")
    ap.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    ap.add_argument("--kind", choices=("ema", "live"), default="ema")
    ap.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16")
    ap.add_argument("--dest", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--hardware", default=None)
    ap.add_argument("--unchanged", type=Path, default=None,
                    help="weights file whose tensors must all be bit-identical in the shipped file (the frozen start)")
    ap.add_argument("--init-json", type=Path, default=None, help="json of the model the run started from (kept in the new json)")
    args = ap.parse_args(argv)
    init_info = json.loads(args.init_json.read_text()) if args.init_json else None  # read before dest is overwritten

    try:
        ckpt = run_checkpoint(args.run, args.step)
    except ConfigError as exc:
        return _fail(str(exc))
    step, config = checkpoint_state(ckpt)
    if config["model"]["name"] != "mmaif":
        return _fail(f"{ckpt}: not an MMAIF run ({config['model']['name']})")

    import unifuse
    from unifuse.models.mmaif import save_mmaif_weights

    torch.set_num_threads(1)
    model_kw = {k: v for k, v in config["model"].items() if k != "name"}
    sd = load_file(str(ckpt / ("ema.safetensors" if args.kind == "ema" else "model.safetensors")))
    ref = unifuse.create_model("mmaif", **model_kw)
    ref.load_weights(sd)
    ref.eval()
    ship = unifuse.create_model("mmaif", **model_kw)
    ship.load_weights(sd)
    if args.dtype == "fp16":
        for name, p in ship.named_parameters():
            p.data = p.data.half()
    args.dest.mkdir(parents=True, exist_ok=True)
    out = args.dest / f"{NAME}.safetensors"
    save_mmaif_weights(ship, out, {"step": str(step), "recipe": str(config.get("name")), "kind": args.kind, "dtype": args.dtype})
    sha = file_sha256(out)

    # check: the package loads these weights (as float32) and fuses like the checkpoint
    net = unifuse.load_model("mmaif", weights=str(out))
    loaded = net.state_dict()
    pdiff = max(float((loaded[k] - v.float()).abs().max()) for k, v in ref.state_dict().items())
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 96, 128, generator=g), torch.rand(1, 3, 96, 128, generator=g)
    with torch.no_grad():
        odiffs = {mode: float((net(a, b, prompt="remove the noise", mode=mode) - ref(a, b, prompt="remove the noise", mode=mode)).abs().max())
                  for mode in ref.config.variants}
    odiff = max(odiffs.values())
    if args.dtype == "fp32" and pdiff:
        return _fail(f"loaded weights differ from the checkpoint (max {pdiff})")
    unchanged = None
    if args.unchanged is not None:
        before, after = load_file(str(args.unchanged)), load_file(str(out))
        changed = [k for k, v in before.items() if k not in after or after[k].dtype != v.dtype or not torch.equal(after[k], v)]
        if changed:
            return _fail(f"{len(changed)} tensor(s) of {args.unchanged} changed, e.g. {', '.join(changed[:3])}")
        unchanged = {"file": args.unchanged.name, "sha256": file_sha256(args.unchanged),
                     "tensors_bit_identical": len(before)}

    info = {
        "model": "mmaif",
        "preset": model_kw.get("preset"),
        "variants": list(ref.config.variants),
        "parameters": sum(p.numel() for p in ref.parameters()),
        "weights": {"file": out.name, "sha256": sha, "dtype": args.dtype,
                    "kind": ("EMA (exponential moving average) of the training weights" if args.kind == "ema"
                             else "live training weights (not the EMA)"),
                    "max_abs_param_diff_vs_checkpoint": pdiff, "max_abs_output_diff_vs_checkpoint_96x128": odiff,
                    "max_abs_output_diff_vs_checkpoint_96x128_per_mode": odiffs},
        "step": step,
        "iterations_planned": config.get("iterations"),
        "wall_time_s": wall_time_at(args.run, step),
        "hardware": machine_description(args.hardware),
        "torch": torch.__version__,
        "checkpoint": str(ckpt),
        "shipped_at": utc_stamp(),
        "config": config,
    }
    if unchanged is not None:
        info["unchanged_from_init"] = unchanged
    if init_info is not None:
        info["init_model"] = init_info
    atomic_write_text(args.dest / f"{NAME}.json", json.dumps(info, indent=1) + "\n")
    print(f"wrote {out} (step {step}, {args.dtype}, sha256 {sha[:16]}, {out.stat().st_size / 2**20:.2f} MiB; "
          f"max |Δparam| {pdiff:.2e}, max |Δoutput| {odiff:.2e}) and {args.dest / (NAME + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
