"""Stack mode of `unifuse fuse`: three or more images, a folder per stack, alignment.

    unifuse fuse IMG1 IMG2 IMG3 ... -o OUT
    unifuse fuse --stack DIR -o OUT                 # every image of DIR, in file-name order
    unifuse fuse --stacks DIR -o OUT_DIR            # one output per sub-folder of DIR
    unifuse fuse a.jpg b.jpg c.jpg -o f.png --align homography --save-transforms t.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ConfigError, InputMismatchError, UnifuseError
from ..io import write_image
from .common import model_call_options

MOTION_CHOICES = ("none", "translation", "euclidean", "affine", "homography")


def add_stack_args(p: argparse.ArgumentParser) -> None:
    from ..inference.reduce import DEFAULT_ORDER, DEFAULT_REDUCTION, ORDERS, REDUCTIONS

    g = p.add_argument_group("stacks and alignment (see README: Stacks and alignment)")
    g.add_argument("--stack", dest="stack_dir", help="fuse every image of this folder (file-name order) into -o FILE")
    g.add_argument("--stacks", dest="stacks_dir", help="one stack per sub-folder of this folder, outputs into -o DIR")
    g.add_argument("--align", default="none", choices=MOTION_CHOICES,
                   help="register every source to the reference before fusing (default none)")
    g.add_argument("--reference", type=int, default=None, metavar="N",
                   help="reference frame, 1-based (default: middle exposure of a bracket, else the first)")
    g.add_argument("--reduction", default=None, choices=REDUCTIONS,
                   help=f"how two-input networks fuse more than two sources (default {DEFAULT_REDUCTION}; "
                        f"measured in docs/stacks.md)")
    g.add_argument("--order", default=None, choices=ORDERS,
                   help=f"source order for the reduction (default {DEFAULT_ORDER}: brightest first)")
    g.add_argument("--save-transforms", default=None, metavar="FILE.json",
                   help="write the estimated transforms (with --stacks: a folder, one <stack>.json each)")
    g.add_argument("--transforms", default=None, metavar="FILE.json",
                   help="apply these transforms instead of estimating (with --stacks: a folder of <stack>.json)")


def is_stack_mode(args: argparse.Namespace) -> bool:
    """True when the stack path handles the call (anything but a plain pair or --a/--b folders)."""
    stack_opts = (args.align != "none" or args.transforms or args.save_transforms or args.reference is not None
                  or args.reduction or args.order)
    if args.dir_a or args.dir_b:
        if args.stack_dir or args.stacks_dir or stack_opts:
            raise ConfigError("--a/--b folder pairs take no stack or alignment options (use --stacks DIR)")
        return False
    return bool(args.stack_dir or args.stacks_dir or len(args.sources) != 2 or stack_opts)


def _stack_options(args: argparse.Namespace) -> dict:
    from ..inference.reduce import DEFAULT_ORDER, DEFAULT_REDUCTION

    if args.reference is not None and args.reference < 1:
        raise ConfigError(f"--reference is 1-based, got {args.reference}")
    if args.save_transforms and args.align == "none" and not args.transforms:
        raise ConfigError("--save-transforms needs --align MODE (nothing is estimated without it)")
    if args.transforms and args.align != "none":
        raise ConfigError("give either --align MODE (estimate) or --transforms FILE (apply), not both")
    return dict(align=args.align, reference=None if args.reference is None else args.reference - 1,
                reduction=args.reduction or DEFAULT_REDUCTION, order=args.order or DEFAULT_ORDER)


def _write(out: Path, res) -> None:
    write_image(out, res.data, bit_depth=res.bit_depth if out.suffix.lower() in (".png", ".tif", ".tiff") else 8)


def run_stack(args: argparse.Namespace) -> int:
    from ..align import save_transforms
    from ..inference.fuse import Fuser
    from ..inference.stack import StackFuser, StackOptions
    from .fuse import _output_suffix, list_images

    modes = sum(bool(x) for x in (args.stack_dir, args.stacks_dir, args.sources, args.dir_a or args.dir_b))
    if modes > 1:
        raise ConfigError("give one of: images, --stack DIR, --stacks DIR, --a DIR --b DIR")
    opts = _stack_options(args)
    out = Path(args.output)
    if args.stacks_dir:
        root = Path(args.stacks_dir)
        if not root.is_dir():
            raise InputMismatchError(f"{root}: folder not found")
        stacks = sorted(d for d in root.iterdir() if d.is_dir())
        if not stacks:
            raise InputMismatchError(f"{root}: no sub-folders (one stack per sub-folder)")
        if args.ext:
            _output_suffix(Path("x" + (args.ext if args.ext.startswith(".") else "." + args.ext)))
    else:
        if args.stack_dir:
            sources = [str(p) for p in list_images(Path(args.stack_dir)).values()]
            sources.sort(key=lambda s: Path(s).name)
        else:
            sources = list(args.sources)
        if len(sources) < 2:
            raise InputMismatchError(f"a stack needs at least two images, got {len(sources)}"
                                     + (f" in {args.stack_dir}" if args.stack_dir else ""))
        _output_suffix(out)
        if args.save_transforms and Path(args.save_transforms).suffix.lower() != ".json":
            raise ConfigError(f"--save-transforms {args.save_transforms}: use a .json file name")
        for s in sources:
            if not Path(s).is_file():
                raise InputMismatchError(f"{s}: file not found")
    fuser = Fuser(args.model, weights=args.weights, device=args.device, precision=args.precision,
                  color=args.color, tile=args.tile, overlap=args.overlap, resize_to=args.resize_to,
                  progress=not args.stacks_dir and sys.stderr.isatty(), model_options=model_call_options(args))
    say = (lambda msg: print(f"unifuse: {msg}", file=sys.stderr)) if sys.stderr.isatty() else None

    if not args.stacks_dir:
        sf = StackFuser(fuser, StackOptions(transforms=args.transforms, **opts))
        res = sf.fuse_arrays(sources, progress=say)
        for note in res.notes:
            print(f"unifuse: note: {note}", file=sys.stderr)
        if args.save_transforms:
            save_transforms(args.save_transforms, res.registration)
        _write(out, res)
        extra = f", aligned ({res.registration.motion})" if res.registration is not None else ""
        print(f"wrote {out} ({args.model}; {len(sources)} frames, reference {res.reference + 1}, {res.method}{extra})")
        return 0

    out.mkdir(parents=True, exist_ok=True)
    failed = done = 0
    for d in tqdm(stacks, desc=f"fusing stacks ({args.model})", unit="stack", disable=None):
        try:
            files = list_images(d)
            sources = sorted((str(p) for p in files.values()), key=lambda s: Path(s).name)
            if len(sources) < 2:
                raise InputMismatchError(f"a stack needs at least two images, got {len(sources)}")
            ext = args.ext or Path(sources[0]).suffix
            ext = ext if ext.startswith(".") else "." + ext
            transforms = str(Path(args.transforms) / f"{d.name}.json") if args.transforms else None
            res = StackFuser(fuser, StackOptions(transforms=transforms, **opts)).fuse_arrays(sources)
            for note in res.notes:
                tqdm.write(f"unifuse: note: {d.name}: {note}", file=sys.stderr)
            if args.save_transforms:
                save_transforms(Path(args.save_transforms) / f"{d.name}.json", res.registration)
            _write(out / f"{d.name}{ext}", res)
            done += 1
        except UnifuseError as exc:
            failed += 1
            tqdm.write(f"unifuse: failed: {d.name}: {exc}", file=sys.stderr)
    print(f"fused {done} stack(s) into {out}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0
