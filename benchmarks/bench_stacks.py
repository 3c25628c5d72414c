"""Peak memory and time of fusing a large exposure bracket (default 9 frames x 12 megapixels).

    python benchmarks/bench_stacks.py                         # 12 MP, N = 3 and 9, laplacian + mertens
    python benchmarks/bench_stacks.py --megapixels 1 --frames 3 --models laplacian   # quick check

The bracket is written once as JPEG files (quality 95; a scikit-image photograph upscaled to the
requested size, re-exposed by -3 ... +3 stops through a gamma-2.2 curve). Every (model, N)
fusion then runs in a **fresh child process** (`StackFuser`, as `unifuse fuse --stack` does:
read, fuse, write a PNG), which reports its wall time and peak RSS (``VmHWM``), and the RSS
after imports (the fixed cost of Python + torch). Results: a Markdown section (printed, and
appended to ``--output`` if given).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import current_rss_mib, load_average, machine_line, md_table, peak_rss_mib  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--megapixels", type=float, default=12.0)
    p.add_argument("--frames", default="3,9", help="stack sizes to measure (the first frames of the bracket)")
    p.add_argument("--models", default="laplacian,mertens")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workdir", default=None, help="where the bracket is written (default: a temporary folder)")
    p.add_argument("--output", default=None, help="append the Markdown section to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def make_bracket(folder: Path, megapixels: float, n: int) -> list[Path]:
    import numpy as np
    import skimage.data
    from PIL import Image

    photo = Image.fromarray(skimage.data.chelsea())
    h = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    big = np.asarray(photo.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    lin = big**2.2
    del big
    files = []
    for k, stops in enumerate(np.linspace(-3, 3, n)):
        f = folder / f"frame{k:02d}_{stops:+.2f}EV.jpg"
        frame = np.clip(lin * 2.0**stops, 0, 1) ** (1 / 2.2)
        Image.fromarray(np.floor(frame * 255 + 0.5).astype(np.uint8)).save(f, quality=95)
        files.append(f)
    return files


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from unifuse.inference.fuse import Fuser
    from unifuse.inference.stack import StackFuser
    from unifuse.io import write_image

    fuser = Fuser(args.model)
    base = current_rss_mib()
    files = sorted(str(p) for p in Path(args.workdir).glob("frame*.jpg"))
    # take the n frames spread over the bracket (n = all: the whole bracket)
    idx = [round(i * (len(files) - 1) / (args.n - 1)) for i in range(args.n)]
    t = time.perf_counter()
    res = StackFuser(fuser).fuse_arrays([files[i] for i in idx])
    t_fuse = time.perf_counter() - t
    write_image(Path(args.workdir) / f"out_{args.model}_{args.n}.png", res.data, res.bit_depth)
    total = time.perf_counter() - t
    h, w = res.data.shape[:2]
    print(json.dumps({"model": args.model, "n": args.n, "size": [w, h], "fuse_s": t_fuse, "total_s": total,
                      "peak_rss_mib": peak_rss_mib(), "base_rss_mib": base}))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args)
        return 0
    ns = [int(x) for x in args.frames.split(",")]
    models = args.models.split(",")
    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_stacks_")
        work = Path(tmp.name)
    t = time.perf_counter()
    files = make_bracket(work, args.megapixels, max(ns))
    print(f"wrote {len(files)} frames in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    rows = []
    for model in models:
        for n in ns:
            cmd = [sys.executable, __file__, "--child", "--model", model, "--n", str(n), "--workdir", str(work),
                   "--threads", str(args.threads)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                rows.append([model, n, "failed", "", "", "", ""])
                continue
            d = json.loads(r.stdout.strip().splitlines()[-1])
            w, h = d["size"]
            naive = n * w * h * 3 * 4 / 2**20
            rows.append([model, n, f"{w}x{h} ({w * h / 1e6:.1f} MP)", f"{d['fuse_s']:.1f}", f"{d['fuse_s'] / n:.1f}",
                         f"{d['peak_rss_mib']:.0f}", f"{d['peak_rss_mib'] - d['base_rss_mib']:.0f}", f"{naive:.0f}"])
            print(rows[-1], file=sys.stderr, flush=True)
    cmd_line = "python benchmarks/bench_stacks.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:]))
    md = (f"\n## Stacks: fusing a {max(ns)}-frame {args.megapixels:g}-megapixel bracket "
          f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
          f"Command: `{cmd_line.strip()}`  \nMachine: {machine_line(args.threads)}; load average at the end "
          f"{load_average()}.\n\n"
          "Each row is a fresh process fusing the first-to-last-spread N JPEG frames with `StackFuser` (read, "
          "fuse, colour, no alignment) and writing a PNG; *fuse s* excludes the PNG write. Peak RSS is the "
          "process's `VmHWM`; *above imports* subtracts the RSS after importing torch/unifuse and loading the "
          "model. *N float copies* is arithmetic, for comparison: what holding every frame as float32 RGB "
          "would take.\n\n"
          + md_table(["model", "N", "size", "fuse s", "s / frame", "peak RSS MiB", "above imports MiB",
                      "N float copies MiB"], rows) + "\n")
    print(md)
    if args.output:
        with open(args.output, "a") as fh:
            fh.write(md)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
