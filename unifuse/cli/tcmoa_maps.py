"""``unifuse tcmoa-maps A B -o DIR``: TC-MoA prompt heat maps and adapter-usage histograms of one pair."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from .common import add_threads_arg, apply_threads


def add_parser(sub) -> None:
    p = sub.add_parser("tcmoa-maps", aliases=["tcmoa_maps"],
                       help="TC-MoA prompt maps (heat maps) and per-task adapter usage (histograms) of one pair",
                       description="Run TC-MoA on one pair and write, per module, the prompt map of each source "
                                   "as a heat map, per module a histogram of the adapter usage of every task "
                                   "router, adapter_usage.json and an index.html showing them.")
    p.add_argument("sources", nargs=2, metavar="IMAGE", help="source A (official x slot) and source B (y slot)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--model", default="tcmoa", help="tcmoa (large), tcmoa_base, tcmoa_small or tcmoa_tiny")
    p.add_argument("--weights", required=True, help="TC-MoA weights (official .pth or our .safetensors); 'random' for a test")
    p.add_argument("--task", default="ivf", help="router for the prompt maps: ivf, mef, mff or weights 'a,b,c' (default ivf)")
    p.add_argument("--alpha", type=float, default=None, help="prompt contrast slider (default 1: unchanged)")
    p.add_argument("--beta", type=float, default=None, help="prompt bias slider (default 0: unchanged)")
    p.add_argument("--prompt-where", choices=("all", "encoder", "decoder"), default="all", help="modules the sliders act on")
    p.add_argument("--max-side", type=int, default=None,
                   help="downscale so the longer side is at most this (default: 4 units, 448 px for base/large)")
    add_threads_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..inference.fuse import _rgb
    from ..io import as_loaded_image
    from ..models import MODELS, _ensure_builtin, load_model
    from ..models.tcmoa import PromptControl, TCMoA
    from ..report.tcmoa import write_tcmoa_maps

    apply_threads(args)
    _ensure_builtin()
    if MODELS.get(args.model).tags.get("family") != "tcmoa":
        raise ConfigError(f"--model must be a TC-MoA model (tcmoa, tcmoa_base, tcmoa_small, tcmoa_tiny), got {args.model!r}")
    net = load_model(args.model, weights=args.weights)
    assert isinstance(net, TCMoA)
    ia, ib = (as_loaded_image(s, f"source {n}") for s, n in zip(args.sources, "AB"))
    if ia.data.shape[:2] != ib.data.shape[:2]:
        raise ConfigError(f"source sizes differ: {ia.data.shape[1]}x{ia.data.shape[0]} vs {ib.data.shape[1]}x{ib.data.shape[0]}")
    unit = net.config.unit
    H, W = ia.data.shape[:2]
    cap = args.max_side or 4 * unit
    if cap < unit:
        raise ConfigError(f"--max-side must be >= {unit}")
    s = min(1.0, cap / max(H, W))
    size = (max(unit, round(H * s / unit) * unit), max(unit, round(W * s / unit) * unit))
    to_t = lambda im: torch.from_numpy(_rgb(im).copy()).permute(2, 0, 1)[None].float()  # noqa: E731
    a, b = (torch.nn.functional.interpolate(to_t(im), size=size, mode="bilinear", antialias=True).clamp(0, 1) for im in (ia, ib))
    control = None
    if args.alpha is not None or args.beta is not None or args.prompt_where != "all":
        control = PromptControl(alpha=1.0 if args.alpha is None else args.alpha, beta=0.0 if args.beta is None else args.beta,
                                where=args.prompt_where)
    paths = write_tcmoa_maps(net, a, b, args.output, task=args.task, control=control)
    print(f"wrote {len(paths)} files to {args.output} (index.html; network input {size[1]}x{size[0]})")
    return 0
