"""Time TC-MoA inference on CPU against the official implementation, same weights, interleaved.

Measures, with ``torch.set_num_threads(--threads)`` (default 2), batch 1, preset ``--preset``
(default ``base``), at each ``--sizes`` (default 224×224 and 448×448 inputs, i.e. 448² and
896² after the network's ×2 upsampling):

* the network forward (normalised inputs -> decoder output ``(1, 3, 2H, 2W)``) of the
  official code (``forward_encoder`` + ``forward_decoder``), the official inference call
  (``model(x, y, task)``, which its ``main_predict.py`` uses: the network plus the training
  losses it always computes), ours fp32 (``TCMoA.forward_features``) with
  ``packed_linear=False`` and with ``packed_linear=True`` (the default: oneDNN linears with
  reordered weights), and ours bf16 (autocast; the TC-MoA modules stay fp32), in ``--rounds`` interleaved rounds after one
  warm-up call each; medians and the per-round speed-ups against the official network;
* max |ours − official| of the decoder output and of the fused image (nearest resize,
  de-normalised, clipped), for fp32 and bf16.

Weights: one random network under official key names, routers drawn N(0, 0.3²) (the official
initialisation leaves them at zero, which would route every token alike); the official model
gets the same source embeddings (it keeps them outside its state dict). Inputs: the first
VIFB pair of ``../shared/data`` (visible -> x, infrared -> y), resized; random images otherwise.

The official code (``github:YangSun22/TC-MoA``; its ``model/`` and ``util/`` folders, never
committed here) is imported from ``--official`` at run time. Its third-party imports are
satisfied in-process without installing anything: ``timm`` (``Mlp``, ``DropPath``,
``to_2tuple``, ``trunc_normal_``, ``Attention``: minimal stand-ins defined below, matching
timm's modules for inference), ``torchvision.transforms`` (only used by loss helpers the
forward does not run) and ``np.float`` (removed from NumPy, used by ``util/pos_embed.py``);
``Tensor.cuda()`` is made a no-op while the official model is built and its full call runs
(its loss code moves constants with a hard-coded ``.cuda()``; CPU torch).

Usage::

    python benchmarks/bench_tcmoa.py --official /tmp/tcmoa_official [--preset base]
        [--sizes 224x224,448x448] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from official import cuda_as_identity  # noqa: E402  (Tensor.cuda() as a no-op for the official losses)
import unifuse  # noqa: E402
from unifuse.models.tcmoa import preset_config  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# ---------------------------------------------------------------- stand-ins for the official imports
class _Mlp(nn.Module):
    """timm's ``Mlp`` in eval (fc1 -> act -> fc2; dropout p=0)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0, **_):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features or in_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features or in_features, out_features or in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _DropPath(nn.Identity):
    def __init__(self, *args, **kwargs):
        super().__init__()


def install_stand_ins() -> None:
    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    vt = types.ModuleType("timm.models.vision_transformer")
    layers = types.ModuleType("timm.models.layers")
    vt.Mlp, vt.DropPath, vt.Attention = _Mlp, _DropPath, nn.Module  # Attention is imported, never used
    layers.DropPath, layers.to_2tuple = _DropPath, (lambda x: (x, x))
    layers.trunc_normal_ = lambda t, std=1.0, **kw: nn.init.trunc_normal_(t, std=std)
    timm.models, models.vision_transformer, models.layers = models, vt, layers
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.vision_transformer": vt,
                        "timm.models.layers": layers})
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:
            tv, tr, fn = (types.ModuleType(n) for n in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))
            tv.transforms, tr.functional = tr, fn
            sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})
    if not hasattr(np, "float"):
        np.float = float  # type: ignore[attr-defined]


OFFICIAL_CONFIG = {"interval_tau": 4, "tau_shift_value": 2, "shift_window_size": 14, "upsample": True, "task_num": 3,
                   "warmup_epochs": 2}


def build_official(path: Path, preset: str):
    install_stand_ins()
    sys.path.insert(0, str(path))
    with cuda_as_identity(), contextlib.redirect_stdout(sys.stderr):
        from model import ViT_MAE  # official code

        fn = {"base": ViT_MAE.mae_vit_base_patch16_dec512d8b, "large": ViT_MAE.mae_vit_large_patch16_dec512d8b}[preset]
        return fn(dict(OFFICIAL_CONFIG)).eval()


# ---------------------------------------------------------------- inputs and runs
def make_inputs(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    from unifuse.data.devpairs import find_data_root

    root = find_data_root(None)
    vi = sorted((root / "vifb_dev" / "vi").glob("*")) if root else []
    if vi:
        ir = root / "vifb_dev" / "ir" / vi[0].name
        load = lambda p: torch.from_numpy(np.asarray(__import__("PIL.Image", fromlist=["x"]).open(p).convert("RGB"),  # noqa: E731
                                                     np.float32) / 255).permute(2, 0, 1)[None]
        a, b = (F.interpolate(load(p), size=(h, w), mode="bilinear", antialias=True).clamp(0, 1) for p in (vi[0], ir))
        return a, b, f"VIFB {vi[0].stem} (visible -> x, infrared -> y), resized"
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, h, w, generator=g), torch.rand(1, 3, h, w, generator=g), "random images"


def official_forward(net, x, y, task):
    lat, t, *_rest, info = net.forward_encoder(x, y, task)
    return net.forward_decoder(lat, t, task, info)[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official", type=Path, required=True, help="folder holding the official model/ and util/ folders")
    p.add_argument("--preset", default="base", choices=("base", "large"))
    p.add_argument("--sizes", default="224x224,448x448")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--task", type=int, default=1)
    p.add_argument("--calls", default="official,official_call,fp32,fp32_packed,bf16",
                   help="what to time (official network, official inference call, ours fp32 / fp32 with packed oneDNN linears / bf16)")
    p.add_argument("--flops", action="store_true",
                   help="also report achieved GFLOP/s against this CPU's fp32 torch.mm peak (measured before and after the timing)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load_start = common.load_average()

    official = build_official(args.official, args.preset)
    with torch.no_grad():
        for name, prm in official.named_parameters():
            if name.endswith((".w_gate", ".w_noise")):
                prm.normal_(0, 0.3)
    sd = {k: v for k, v in official.state_dict().items() if not k.startswith(("MaxGradLoss.", "MFFselect."))}
    ours = unifuse.load_model("tcmoa", weights="random", preset=args.preset)
    ours.load_weights(sd)
    for off_mod, our_mod in zip([*official.blocks_MoA, *official.decoder_blocks_MoA], ours.moa_modules().values()):
        for i, prm in enumerate(our_mod.modal_shifts):
            off_mod.modal_shifts[i] = prm.detach().clone()
    print(f"config {preset_config(args.preset).embed_dim=}; {ours.parameter_summary()}", file=sys.stderr)

    rows, flop_rows = [], []
    peaks = [common.matmul_peak(torch.float32)] if args.flops else []
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        a, b, src = make_inputs(h, w)
        x, y = (a - MEAN) / STD, (b - MEAN) / STD
        with torch.no_grad():
            ref = official_forward(official, x, y, args.task)  # also the warm-up call
            fo = (F.interpolate(ref, size=(h, w)) * STD + MEAN).clamp(0, 1)
            errs = {}
            for prec in ("fp32", "bf16"):
                ours.set_precision(prec)
                with ours._autocast(x):
                    mine = ours.forward_features(x, y, args.task).decoder.float()
                errs[prec] = (float((mine - ref).abs().max()), float((ours.decoder_to_image(mine, (h, w)) - fo).abs().max()))
            with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings(), cuda_as_identity():
                warnings.simplefilter("ignore")
                official(x, y, args.task)  # warm-up of the full official call

                def ours_at(prec, packed=False):
                    ours.set_precision(prec)
                    default, ours.config.packed_linear = ours.config.packed_linear, packed
                    try:
                        with ours._autocast(x):
                            return ours.forward_features(x, y, args.task)
                    finally:
                        ours.config.packed_linear = default

                every = {"official": lambda: official_forward(official, x, y, args.task),
                         "official_call": lambda: official(x, y, args.task),
                         "fp32": lambda: ours_at("fp32"), "fp32_packed": lambda: ours_at("fp32", True),
                         "bf16": lambda: ours_at("bf16")}
                wanted = args.calls.split(",")
                calls = {k: every[k] for k in every if k in wanted}
                if "fp32_packed" in calls:  # accuracy of the packed path, and its one-time weight reordering
                    errs["fp32_packed"] = (float((ours_at("fp32", True).decoder - ref).abs().max()), float("nan"))
                times = {k: [] for k in calls}
                for _ in range(args.rounds):
                    for k, fn in calls.items():
                        t0 = time.perf_counter()
                        fn()
                        times[k].append(time.perf_counter() - t0)
            ours.set_precision("fp32")
            if args.flops:
                flops = {"official": common.count_flops(lambda: official_forward(official, x, y, args.task)),
                         "fp32": common.count_flops(lambda: ours_at("fp32"))}
                flops["fp32_packed"] = flops["fp32"]
                flop_rows += [(f"{h}x{w}", k, flops[k], common.median(v)) for k, v in times.items() if k in flops]
        ratio = lambda a, b: sorted(p / q for p, q in zip(times[a], times[b]))  # noqa: E731
        fmt = lambda a, b: (lambda r: f"{common.median(r):.2f} ({r[0]:.2f}-{r[-1]:.2f})")(ratio(a, b)) if a in times and b in times else "–"  # noqa: E731
        med = {k: f"{common.median(v):.2f}" for k, v in times.items()}
        rows.append([f"{h}x{w}", med.get("official", "–"), med.get("official_call", "–"), med.get("fp32", "–"),
                     med.get("fp32_packed", "–"), med.get("bf16", "–"), fmt("official", "fp32"), fmt("official_call", "fp32"),
                     fmt("official", "fp32_packed"), fmt("official", "bf16"),
                     f"{errs['fp32'][0]:.1e} / {errs['fp32'][1]:.1e}",
                     f"{errs['fp32_packed'][0]:.1e}" if "fp32_packed" in errs else "–",
                     f"{errs['bf16'][0]:.1e} / {errs['bf16'][1]:.1e}"])
        print(rows[-1], file=sys.stderr)
    print(f"TC-MoA {args.preset}, fp32, batch 1, task router {args.task}, {args.threads} threads, {args.rounds} interleaved "
          f"rounds after a warm-up call; {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {common.machine_line(args.threads)}; "
          f"inputs: {src}; load average (1/5/15 min) at start {load_start}, at end {common.load_average()}\n")
    print(common.md_table(["input", "official network s", "official call s", "ours fp32 s", "ours fp32 packed s", "ours bf16 s",
                           "fp32 vs official network", "fp32 vs official call", "fp32 packed vs official network",
                           "bf16 vs official network", "fp32 max |Δ| decoder / fused", "fp32 packed max |Δ| decoder",
                           "bf16 max |Δ| decoder / fused"], rows))
    print("\nTimes are medians over the rounds in seconds; speed-ups are median (min-max) of the per-round ratios.")
    if args.flops:
        peaks.append(common.matmul_peak(torch.float32))
        peak = max(peaks)
        print(f"\nfp32 matmul peak ({args.threads} threads, `torch.mm` 2048², best of 8, before / after the timing): "
              f"{peaks[0] / 1e9:.1f} / {peaks[1] / 1e9:.1f} GFLOP/s; the fraction uses the higher. FLOPs: "
              "`torch.utils.flop_counter.FlopCounterMode` (matmul, conv, attention products).\n")
        print(common.md_table(["input", "call", "GFLOP / forward", "median s", "GFLOP/s", "fraction of fp32 matmul peak"],
                              [[sz, k, f"{f / 1e9:.1f}", f"{t:.2f}", f"{f / t / 1e9:.1f}", f"{f / t / peak:.0%}"]
                               for sz, k, f, t in flop_rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
