#!/usr/bin/env python
"""Regenerate docs/robustness.md: every fusion model with weights on degraded dev pairs.

    python scripts/robustness_report.py [--data ../shared/data] [--out docs] [--pairs 1] [--max-side 128]
        [--models tita,laplacian] [--weights NAME=PATH] [--metrics mi,qabf,vif,ssim] [--types haze,noise]
        [--splits tno,roadscene,mefb_train,mfifb_train,vifb_dev] [--compounds 1] [--seed 0] [--threads 1]

See unifuse/report/robustness.py for what is computed. Cost is dominated by TITA on CPU (about 4 s per
128x96 pair at 1 thread on the shared 2-core machine): pairs x (pool size + 1 + 2 x compounds) fusions
per split.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout, not another installed copy


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="shared benchmark data (default: ../shared/data or $UNIFUSE_SHARED/data)")
    p.add_argument("--out", type=Path, default=REPO / "docs", help="folder for robustness.md and robustness/ (default: docs)")
    p.add_argument("--pairs", type=int, default=1, help="pairs per split (default 1)")
    p.add_argument("--max-side", type=int, default=128, help="resize pairs so that the longer side is at most this (default 128)")
    p.add_argument("--models", type=_csv, default=None, help="comma-separated models (default: every model with weights); NAME:OPT=VAL gives forward options, e.g. mmaif:mode=flow")
    p.add_argument("--weights", action="append", default=[], metavar="NAME=PATH", help="weights for a model (repeatable)")
    p.add_argument("--metrics", type=_csv, default=None, help="comma-separated metrics (default: mi,qabf,vif,ssim)")
    p.add_argument("--types", type=_csv, default=None, help="restrict the single-type conditions to these types")
    p.add_argument("--splits", type=_csv, default=None, help="comma-separated splits (default: all dev splits and vifb_dev)")
    p.add_argument("--compounds", type=int, default=1, help="seeded compounds per n = 2, 3 (default 1)")
    p.add_argument("--sheets", type=int, default=1, help="contact sheets per split (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (use 1 on a shared machine)")
    p.add_argument("--note", action="append", default=[], help="extra note for the report (repeatable)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    import torch

    from unifuse.data.degrade import ORDER
    from unifuse.data.devpairs import default_data_dir
    from unifuse.errors import UnifuseError
    from unifuse.report.robustness import METRICS, SPLITS, RobustnessConfig, build_report

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        weights = {}
        for w in args.weights:
            if "=" not in w:
                raise UnifuseError(f"--weights expects NAME=PATH, got {w!r}")
            k, v = w.split("=", 1)
            weights[k] = v
        splits = SPLITS
        if args.splits:
            known = {s for s, _ in SPLITS}
            bad = [s for s in args.splits if s not in known]
            if bad:
                raise UnifuseError(f"unknown split(s) {', '.join(bad)}; choose from {', '.join(sorted(known))}")
            splits = tuple(s for s in SPLITS if s[0] in args.splits)
        if args.types:
            bad = [t for t in args.types if t not in ORDER]
            if bad:
                raise UnifuseError(f"unknown type(s) {', '.join(bad)}; valid: {', '.join(ORDER)}")
        cfg = RobustnessConfig(data=args.data or default_data_dir(), out=args.out, models=args.models, weights=weights,
                               splits=splits, pairs=args.pairs, max_side=args.max_side, metrics=args.metrics or METRICS,
                               types=args.types, compounds=args.compounds, seed=args.seed, sheets=args.sheets,
                               progress=not args.no_progress, notes=args.note,
                               command=shlex.join(["python", "scripts/robustness_report.py", *argv]))
        path = build_report(cfg)
    except UnifuseError as exc:
        print(f"robustness_report: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
