"""`unifuse demo`: the main job on built-in inputs, real held-out pairs and unseen tasks.

Fuses, with every model that has usable weights, (1) the built-in sample pairs (multi-focus
and multi-exposure pairs synthesised from photographs that scikit-image ships, with the
original as ground truth), (2) when the shared benchmark folder is present, a few real pairs
that training never sees (:mod:`unifuse.data.devpairs`; no ground truth) and (3) pairs of
tasks TITA never trained on (:mod:`unifuse.data.unseen`: simulated pan-sharpening, synthetic
medical-like pairs). Writes the fused images, a metrics table (CSV + Markdown) and an HTML
report that opens from the file system.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ConfigError
from .common import add_threads_arg, apply_threads

BASELINES = ["average", "max", "laplacian", "mertens"]

#: default ``--max-side``: the samples are fused at most this large (TITA's time grows with the
#: pixel count; at 256 px the structures the pairs are made to show are still several windows
#: wide, and the whole demo stays under 90 s on a slow, shared 2-core AVX2 CPU: BENCHMARKS.md, session 8)
DEFAULT_MAX_SIDE = 256

_CITATION = ("Real pairs come from public benchmarks: VIFB (Zhang et al., CVPRW 2020), MEFB (Zhang, Information "
             "Fusion 2021), MFIFB (Zhang, TPAMI 2021).")


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="fuse the built-in sample pairs (and real held-out pairs) and write an HTML report",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="unifuse-demo", help="output folder (default ./unifuse-demo)")
    p.add_argument("--device", default="cpu")
    add_threads_arg(p)
    p.add_argument("--weights", default=None,
                   help="TITA weights: a .safetensors/.pth file or a training run folder (default: the shipped weights)")
    p.add_argument("--tcmoa-weights", default=None,
                   help="TC-MoA weights: show TC-MoA too (each pair fused with its task's router); default: shipped, if any")
    p.add_argument("--tcmoa-model", default="tcmoa", help="TC-MoA registry name for --tcmoa-weights (tcmoa = large, tcmoa_base ...)")
    p.add_argument("--models", default=None,
                   help="comma-separated models to show (default: tita when weights exist, and the baselines "
                        + ", ".join(BASELINES) + ")")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="shared benchmark data folder (default: $UNIFUSE_SHARED/data or ../shared/data beside the repository)")
    p.add_argument("--no-data", action="store_true", help="do not include real benchmark pairs")
    p.add_argument("--no-unseen", action="store_true", help="do not include the unseen-task pairs (pan-sharpening, medical-like)")
    p.add_argument("--max-pairs", type=int, default=0, metavar="N",
                   help="at most N pairs per group (built-in, real, unseen); 0 = all (default)")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, metavar="PX",
                   help=f"shrink pairs whose longer side exceeds PX pixels (area resampling; sources and ground "
                        f"truth alike) to keep the demo quick on a CPU; 0 = full size (default {DEFAULT_MAX_SIDE})")
    p.set_defaults(func=run)


def available_models(weights: str | None = None) -> tuple[list[str], str]:
    """Models to show and a note about TITA's weights."""
    from ..models.tita import TITA

    if weights is not None:
        return ["tita"] + BASELINES, f"TITA uses the weights {weights}."
    if TITA.default_weights() is not None:
        return ["tita"] + BASELINES, "TITA uses the weights shipped with this package."
    return BASELINES, ("No trained TITA weights ship with this build yet, so the demo shows the "
                       "training-free baselines only (a randomly initialised network's output is not a result).")


def tcmoa_weights(weights: str | None = None, name: str = "tcmoa"):
    """TC-MoA weights to show (given, or shipped for the registry entry ``name``: only
    ``tcmoa_small`` ships any), or ``None``: TC-MoA is then left out."""
    from ..models import MODELS, _ensure_builtin
    from ..models.tcmoa import TCMoA

    if weights is not None:
        return weights
    _ensure_builtin()
    return getattr(MODELS.get(name).factory, "model_class", TCMoA).default_weights()


def _choose_models(args: argparse.Namespace) -> tuple[list[str], str]:
    names, note = available_models(args.weights)
    tname = getattr(args, "tcmoa_model", "tcmoa")
    tw = tcmoa_weights(getattr(args, "tcmoa_weights", None), tname)
    if tw is not None:
        names = [names[0], tname, *names[1:]] if names and names[0] == "tita" else [tname, *names]
    else:
        print("no TC-MoA weights (none ship; --tcmoa-weights PATH adds TC-MoA): TC-MoA skipped", file=sys.stderr)
    if args.models is None:
        return names, note
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    if not wanted:
        raise ConfigError("--models: give at least one model name")
    if "tita" in wanted and "tita" not in names:
        raise ConfigError("--models tita: no trained TITA weights ship with this build; pass --weights PATH")
    if any(w.startswith("tcmoa") for w in wanted) and tw is None:
        raise ConfigError("--models tcmoa: no TC-MoA weights ship with this build; pass --tcmoa-weights PATH")
    return wanted, (note if "tita" in wanted else "")


def shrink_pair(pair, max_side: int):
    """``pair`` with every image resized (area averaging) so its longer side is at most
    ``max_side`` pixels; the pair itself when it is already that small or ``max_side`` is 0.
    Sources and ground truth share one size, so full-reference scores stay aligned."""
    import dataclasses

    import numpy as np
    import torch
    import torch.nn.functional as F

    h, w = pair.a.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return pair
    scale = max_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))

    def rs(x):
        if x is None:
            return None
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
        y = F.interpolate(t, size=size, mode="area")[0]
        return (y[0] if np.ndim(x) == 2 else y.permute(1, 2, 0)).clamp(0, 1).numpy().astype(x.dtype)

    return dataclasses.replace(pair, a=rs(pair.a), b=rs(pair.b), ground_truth=rs(pair.ground_truth))


def collect_pairs(args: argparse.Namespace) -> list[tuple[str, list]]:
    """``[(group label, [SamplePair, ...]), ...]`` for the demo (see the module docstring)."""
    from ..data.devpairs import find_data_root, load_dev_pairs
    from ..data.samples import list_samples, load_sample
    from ..data.unseen import load_all_unseen

    cap = (lambda xs: xs[: args.max_pairs]) if args.max_pairs > 0 else (lambda xs: xs)
    groups = [("built-in sample", [load_sample(s) for s in cap(list_samples())])]
    if not args.no_data:
        root = find_data_root(args.data)
        if root is None:
            print("no shared benchmark data found (set UNIFUSE_SHARED or pass --data): real pairs skipped", file=sys.stderr)
        else:
            groups.append(("real held-out pair", cap(load_dev_pairs(root))))
    if not args.no_unseen:
        groups.append(("unseen task", cap(load_all_unseen())))
    side = getattr(args, "max_side", 0)
    return [(g, [shrink_pair(p, side) for p in ps]) for g, ps in groups if ps]


def run(args: argparse.Namespace) -> int:
    from ..inference.fuse import Fuser
    from ..report import write_html_report
    from ..report.pairs import pair_sections, write_metrics_tables

    apply_threads(args)
    if args.max_pairs < 0:
        raise ConfigError(f"--max-pairs must be >= 0, got {args.max_pairs}")
    if args.max_side < 0 or 0 < args.max_side < 16:
        raise ConfigError(f"--max-side must be 0 (full size) or >= 16 pixels, got {args.max_side}")
    t0 = time.perf_counter()
    out = Path(args.output)
    (out / "images").mkdir(parents=True, exist_ok=True)
    names, note = _choose_models(args)
    if note:
        print(note, file=sys.stderr)
    weights = {"tita": args.weights, args.tcmoa_model: tcmoa_weights(args.tcmoa_weights, args.tcmoa_model)}
    fusers = {n: Fuser(n, weights=weights.get(n), device=args.device) for n in names}
    groups = collect_pairs(args)
    total = sum(len(ps) for _, ps in groups) * len(fusers)
    bar = tqdm(total=total, desc="demo", unit="fusion", disable=None)
    done = [0]

    def progress(model: str) -> None:
        bar.update()
        done[0] += 1
        if bar.disable:  # no terminal (log file, CI): one plain line per fusion instead of a bar
            print(f"demo: {done[0]}/{total} fusions ({model}), {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    sections, rows = [], []
    for group, pairs in groups:
        s, r = pair_sections(pairs, fusers, out, group=group, on_fused=progress)
        sections += s
        rows += r
    bar.close()

    _, md = write_metrics_tables(rows, out)
    intro = (f"{note} Sections: built-in sample pairs (synthetic, with ground truth)"
             + (", real held-out benchmark pairs (no ground truth; never trained on)" if any(g.startswith("real") for g, _ in groups) else "")
             + (", tasks never trained on (pan-sharpening, synthetic medical-like)" if any(g.startswith("unseen") for g, _ in groups) else "")
             + ". PSNR_gt/SSIM_gt compare with the ground truth (higher is better; '(source: ...)' rows score a source itself); "
             "SAM_gt/ERGAS_gt are spectral errors (lower is better); MI, QABF, SSIM, VIF, SD, EN are no-reference fusion "
             "metrics in gray mode (higher is better). time (s): the fusion call on this machine."
             + (" " + _CITATION if any(g.startswith("real") for g, _ in groups) else ""))
    report = write_html_report(out / "report.html", "unifuse demo", intro.strip(), sections)
    print(md)
    n_fused = sum(1 for r in rows if r.get("time_s") is not None)
    print(f"\nwrote {n_fused} fused images of {sum(len(ps) for _, ps in groups)} pairs, {out / 'metrics.csv'} and {report} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0
