"""`unifuse fuse`: fuse one pair, or every pair of two folders matched by file stem."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ConfigError, InputMismatchError, UnifuseError
from ..io import write_image
from ..io.image import WRITE_FORMATS
from .common import (add_fuse_options, add_model_args, add_model_call_args, add_threads_arg, apply_threads, is_folder_mode,
                     model_call_options)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def add_parser(sub) -> None:
    p = sub.add_parser("fuse", help="fuse two or more images, or folders of images",
                       description="Fuse a pair (`unifuse fuse A B -o OUT`), a stack (`unifuse fuse A B C ... -o OUT`, "
                                   "`--stack DIR`, `--stacks DIR`) or folders matched by file stem "
                                   "(`unifuse fuse --a DIR --b DIR -o DIR`).")
    p.add_argument("sources", nargs="*", metavar="IMAGE", help="the source images (two: pair mode; more: a stack)")
    p.add_argument("--a", dest="dir_a", help="folder of source-A images (batch mode)")
    p.add_argument("--b", dest="dir_b", help="folder of source-B images (batch mode)")
    p.add_argument("-o", "--output", required=True, help="output file (pair mode) or folder (batch mode)")
    p.add_argument("--ext", default=None, help="output extension in batch mode (default: that of the A image)")
    add_model_args(p)
    add_fuse_options(p)
    add_model_call_args(p)
    add_threads_arg(p)
    from .fuse_stack import add_stack_args

    add_stack_args(p)
    p.set_defaults(func=run)


def list_images(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` keyed by stem; clear errors for missing/empty folders, duplicates."""
    if not folder.is_dir():
        raise InputMismatchError(f"{folder}: folder not found")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputMismatchError(f"{folder}: no images (png, jpg, bmp, tif) in folder")
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise InputMismatchError(f"{folder}: two images share the stem {f.stem!r} ({out[f.stem].name}, {f.name})")
        out[f.stem] = f
    return out


def pair_folders(dir_a: Path, dir_b: Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Match files by stem -> (pairs, list of problems for unpaired names)."""
    fa, fb = list_images(dir_a), list_images(dir_b)
    pairs = [(s, fa[s], fb[s]) for s in sorted(fa.keys() & fb.keys())]
    problems = [f"{fa[s]}: no partner named {s}.* in {dir_b}" for s in sorted(fa.keys() - fb.keys())]
    problems += [f"{fb[s]}: no partner named {s}.* in {dir_a}" for s in sorted(fb.keys() - fa.keys())]
    if not pairs:
        raise InputMismatchError(f"no file names in common between {dir_a} and {dir_b}")
    return pairs, problems


def _output_suffix(path: Path) -> None:
    if path.suffix.lower() not in WRITE_FORMATS:
        raise ConfigError(f"{path}: unsupported output format {path.suffix!r} (use one of {', '.join(sorted(WRITE_FORMATS))})")


def run(args: argparse.Namespace) -> int:
    from ..inference.fuse import Fuser

    apply_threads(args)
    from .fuse_stack import is_stack_mode, run_stack

    if is_stack_mode(args):
        return run_stack(args)
    batch = is_folder_mode(args)
    out = Path(args.output)
    if not batch:
        _output_suffix(out)
        for s in args.sources:
            if not Path(s).is_file():
                raise InputMismatchError(f"{s}: file not found")
    else:
        pairs, problems = pair_folders(Path(args.dir_a), Path(args.dir_b))
        if args.ext:
            _output_suffix(Path("x" + (args.ext if args.ext.startswith(".") else "." + args.ext)))
    fuser = Fuser(args.model, weights=args.weights, device=args.device, precision=args.precision,
                  color=args.color, tile=args.tile, overlap=args.overlap, resize_to=args.resize_to,
                  progress=not batch and sys.stderr.isatty(), model_options=model_call_options(args))
    if not batch:
        data, bits = fuser.fuse_arrays(*args.sources)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, data, bit_depth=bits if out.suffix.lower() in (".png", ".tif", ".tiff") else 8)
        print(f"wrote {out} ({args.model})")
        return 0

    out.mkdir(parents=True, exist_ok=True)
    for p in problems:
        print(f"unifuse: skipped: {p}", file=sys.stderr)
    failed = len(problems)
    done = 0
    for stem, pa, pb in tqdm(pairs, desc=f"fusing ({args.model})", unit="pair", disable=None):
        ext = args.ext or pa.suffix
        ext = ext if ext.startswith(".") else "." + ext
        target = out / f"{stem}{ext}"
        try:
            data, bits = fuser.fuse_arrays(pa, pb)
            write_image(target, data, bit_depth=bits if ext.lower() in (".png", ".tif", ".tiff") else 8)
            done += 1
        except UnifuseError as exc:
            failed += 1
            tqdm.write(f"unifuse: failed: {stem}: {exc}", file=sys.stderr)
    print(f"fused {done} pair(s) into {out}" + (f"; {failed} failed or skipped" if failed else ""))
    return 1 if failed else 0
