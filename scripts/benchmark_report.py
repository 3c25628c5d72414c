#!/usr/bin/env python
"""Regenerate docs/benchmarks.md (+ per-image CSVs in docs/benchmarks/) in one command.

    python scripts/benchmark_report.py [--weights PATH] [--data ../shared/data] [--out docs]

Scores TITA, the training-free baselines and (on vifb_dev) the 25 published methods with the
metrics of the TITA paper; see unifuse/report/benchmark/ for what is computed and how. The
published methods' values are cached in docs/benchmarks/vifb_dev_published.csv (keyed by file
content); --recompute ignores the cache (about 10 more minutes). On a shared machine use --threads 1.
The "Generalisation" section (tasks TITA never trained on: unifuse.data.unseen; contact sheets in
docs/benchmarks/generalisation/) is included unless --no-generalisation; --only SECTION (repeatable:
vifb, dev, generalisation) runs only those sections (--only generalisation needs no --data; about
1 min at 1 thread on the shared 2-core machine, TITA 7-13 s per pair).
--model NAME[:OPT=VAL,...] (repeatable) adds any registry model with forward options, e.g.
--model mmaif:mode=flow; with --skip-tita --baselines none a run scores only those models, and
scripts/model_dev_section.py puts them next to the full report's per-image values.

Cost: 37 min wall for the whole report on a 2-core Xeon at 1 thread while a training run used
both cores (TITA inference on CPU dominates: 30-100 s per image of 0.15-0.75 Mpx).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's unifuse, not another installed copy
SECTIONS = ("vifb", "dev", "generalisation")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None,
                   help="TITA weights: .safetensors/.pth file or training run folder (default: the shipped weights)")
    p.add_argument("--data", type=Path, default=None, help="shared benchmark data (default: ../shared/data or $UNIFUSE_SHARED/data)")
    p.add_argument("--out", type=Path, default=REPO / "docs", help="folder for benchmarks.md and benchmarks/*.csv (default: docs)")
    p.add_argument("--recompute", action="store_true", help="recompute the published methods' metrics (ignore the cache)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--no-generalisation", action="store_true", help="leave out the section on unseen tasks")
    p.add_argument("--only", action="append", choices=SECTIONS, default=None,
                   help="run only this section (repeatable; default: all)")
    p.add_argument("--tcmoa-weights", default=None,
                   help="TC-MoA weights: include TC-MoA (task router per suite) when given or when weights ship")
    p.add_argument("--tcmoa-model", default="tcmoa", help="TC-MoA registry name: tcmoa (large), tcmoa_base, tcmoa_small ...")
    p.add_argument("--model", action="append", default=[], metavar="NAME[:OPT=VAL,...]",
                   help="a further model of the registry shown next to the others (repeatable), with forward options, "
                        "e.g. 'mmaif:mode=flow' or 'mmaif:mode=reg,weights=PATH,label=MMAIF reg' (weights default to the "
                        "shipped ones; the label to NAME (OPTIONS))")
    p.add_argument("--max-pairs", type=int, default=None,
                   help="only the first N dev pairs of each split (a restricted run; say so with --note)")
    p.add_argument("--baselines", default=None,
                   help="comma-separated training-free baselines to include, or 'none' (default: average,max,laplacian,mertens)")
    p.add_argument("--skip-tita", action="store_true",
                   help="leave TITA out (baselines and TC-MoA only; nothing is ranked)")
    p.add_argument("--note", action="append", default=[], help="extra note for the report (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.max_pairs is not None and args.max_pairs < 1:
        p.error("--max-pairs must be at least 1")
    if args.only and args.no_generalisation and "generalisation" in args.only:
        p.error("--only generalisation and --no-generalisation contradict each other")
    return args


def _sections(args: argparse.Namespace) -> dict:
    """ReportConfig fields that leave out the sections not asked for (--only, --no-generalisation)."""
    only = set(args.only or SECTIONS)
    out = {"generalisation": "generalisation" in only and not args.no_generalisation}
    if "vifb" not in only:
        out["vifb"] = None
    if "dev" not in only:
        out["splits"] = ()
    return out


def _baselines(args: argparse.Namespace) -> dict:
    """ReportConfig.baselines from --baselines (absent: the config's default)."""
    if args.baselines is None:
        return {}
    names = [n.strip() for n in args.baselines.split(",") if n.strip() and n.strip() != "none"]
    return {"baselines": tuple(names)}


def model_spec(name: str, weights=None, label: str | None = None, options: dict | None = None,
               model_class=None) -> list:
    """``[ModelSpec]`` (kind ``other``) for registry model ``name`` with forward ``options``, when
    ``weights`` are given, ship with the package (``default_weights()`` of the registry entry's
    ``model_class``, else of ``model_class``) or the model trains no weights; else ``[]``."""
    from unifuse.models import MODELS, _ensure_builtin
    from unifuse.report.benchmark.scoring import ModelSpec

    _ensure_builtin()
    cls = getattr(MODELS.get(name).factory, "model_class", model_class or MODELS.get(name).factory)
    if weights is None and hasattr(cls, "default_weights"):
        weights = cls.default_weights()
        if weights is None and getattr(cls, "trainable", True):  # said after the report is written
            return []
    if label is None:
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else "")
    return [ModelSpec(name, weights, label, "other", options or None)]


def parse_model(text: str) -> list:
    """``--model NAME[:OPT=VAL,...]`` -> ``[ModelSpec]`` (``weights`` and ``label`` are not forward options)."""
    from unifuse.errors import ConfigError
    from unifuse.report.pairs import split_model_spec

    try:
        name, opts = split_model_spec(text)
    except ConfigError as exc:
        raise SystemExit(f"benchmark_report: --model: {exc}") from None
    weights, label = opts.pop("weights", None), opts.pop("label", None)
    return model_spec(name, None if weights is None else str(weights), None if label is None else str(label), opts)


def tcmoa_spec(name: str, weights) -> list:
    """``[ModelSpec]`` for TC-MoA when weights are given or ship with the package, else ``[]``."""
    from unifuse.models.tcmoa import TCMoA

    return model_spec(name, weights, "TC-MoA" if name == "tcmoa" else f"TC-MoA ({name})", model_class=TCMoA)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    import torch

    from unifuse.data.devpairs import default_data_dir
    from unifuse.errors import UnifuseError
    from unifuse.report.benchmark import ReportConfig, build_report

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = ReportConfig(data=args.data or default_data_dir(), out=args.out, weights=args.weights, recompute=args.recompute,
                       extra_models=tcmoa_spec(args.tcmoa_model, args.tcmoa_weights) + [s for m in args.model for s in parse_model(m)],
                       progress=not args.no_progress, notes=args.note, **_sections(args),
                       max_pairs=args.max_pairs, ours=None if args.skip_tita else "tita", **_baselines(args),
                       command=shlex.join(["python", "scripts/benchmark_report.py", *argv]))
    try:
        md = build_report(cfg)
    except UnifuseError as exc:
        print(f"benchmark_report: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchmark_report: interrupted (the published-methods cache keeps what was computed)", file=sys.stderr)
        return 130
    print(f"wrote {md}")
    if not cfg.extra_models:
        print("TC-MoA not included: no TC-MoA weights ship with this build (pass --tcmoa-weights PATH)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
