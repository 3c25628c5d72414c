"""``unifuse plot-training DIR [--out PLOTS]``: PNG curves of a training run (PIL only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot-training",
        aliases=["plot_training"],
        help="plot losses, task weights and gradient-conflict angles of a training run",
        description="Write losses.png, weights.png, conflicts.png and gradnorms.png from the CSV logs of a "
        "`unifuse train` run folder (and, with --table N, print a Markdown summary table).",
    )
    p.add_argument("run_dir", metavar="DIR", help="run folder written by `unifuse train`")
    p.add_argument("--out", help="folder for the PNG files (default: DIR/plots)")
    p.add_argument("--smooth", type=int, metavar="N",
                   help="draw the losses as a moving average over N iterations over the faint raw curves "
                   "(default: about 1/50 of the run, none for runs under 250 iterations; 0 = raw only)")
    p.add_argument("--table", type=int, metavar="N",
                   help="also print a Markdown table of the run in blocks of N iterations (mean per-task loss, "
                   "task weights at the block's end, seconds per iteration)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..training.plot import plot_training

    run_dir = Path(args.run_dir)
    if not (run_dir / "train_log.csv").is_file():
        raise ConfigError(f"{run_dir}: no train_log.csv here (not a `unifuse train` run folder)")
    if args.smooth is not None and args.smooth < 0:
        raise ConfigError(f"--smooth must be >= 0, got {args.smooth}")
    for path in plot_training(run_dir, args.out, smooth=args.smooth):
        print(path)
    if args.table is not None:
        from ..training.summary import loss_table

        print(loss_table(run_dir, args.table), end="")
    return 0
