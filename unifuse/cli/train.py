"""``unifuse train CONFIG.yaml --out DIR [--resume] [--iterations N] [--device D] ...``

Single process by default; under ``torchrun --nproc_per_node K -m unifuse train ...`` the
same command trains data-parallel (ranks from the environment; NCCL on GPU, gloo on CPU).
"""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..training.config import key_value


def _kv(text: str) -> tuple[str, object]:
    try:
        return key_value(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a fusion model from a YAML recipe (resumable; torchrun for data-parallel)",
        description="Train a fusion model from a YAML recipe (see configs/). Writes checkpoints, CSV logs and the final "
        "weights (model_ema.safetensors = EMA weights to evaluate) to --out. "
        "Data-parallel: torchrun --nproc_per_node K -m unifuse train CONFIG --out DIR.",
    )
    p.add_argument("config", help="YAML training recipe, e.g. configs/tita.yaml")
    p.add_argument("--out", required=True, help="run folder (checkpoints, logs, final weights)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out (fresh start if none); the recipe comes from the "
                   "checkpoint, only run options (iterations, device, threads, data_root, num_workers, tensorboard, "
                   "print/log/diagnostics/checkpoint frequency, keep_checkpoints) from this invocation")
    p.add_argument("--iterations", type=int, help="override the number of iterations (also to extend a resumed run)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the config's, normally auto)")
    p.add_argument("--data-root", help="folder the dataset roots are relative to (default: the config's data_root)")
    p.add_argument("--threads", type=int, help="torch CPU threads per process (default: the config's; 0 = torch default)")
    p.add_argument("--set", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key (dotted, YAML value), e.g. --set model.drop_path_rate=0; repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (periodic status lines instead)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_config, resolve_data_root
    from ..training.distributed import init_distributed, shutdown
    from ..training.trainer import Trainer

    overrides = dict(args.set)
    if args.iterations is not None:
        if args.iterations < 1:
            raise ConfigError(f"--iterations must be >= 1, got {args.iterations}")
        overrides["iterations"] = args.iterations
    if args.device is not None:
        overrides["device"] = args.device
    if args.threads is not None:
        overrides["threads"] = args.threads
    cfg = load_config(args.config, overrides)
    if args.data_root is not None:
        cfg.data_root = str(resolve_data_root(args.data_root))
    ctx = init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, args.out, resume=args.resume, ctx=ctx, progress=False if args.no_progress else None)
        summary = trainer.fit()
        if ctx.is_main:
            print(f"trained {summary['step']} iterations in {summary['seconds']:.0f} s; EMA weights: {args.out}/model_ema.safetensors")
    finally:
        shutdown(ctx)
    return 0
