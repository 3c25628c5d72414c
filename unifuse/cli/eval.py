"""``unifuse eval``: score fused images against their sources with the fusion metrics.

    unifuse eval --fused DIR --a DIR --b DIR [--metrics en,mi,qabf] [--mode native] -o results.csv

Files are paired by stem (``fused/x.png`` <-> ``a/x.jpg`` <-> ``b/x.bmp``). If ``--fused``
holds one subfolder per method, every method is evaluated and a paper-style Markdown table
(mean ± std per metric, ↑/↓, best per column in bold) is printed. ``-o`` receives the
per-image values as CSV. A file that cannot be read or whose size does not match is reported
and skipped; the exit status is 1 if any triple failed.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..io.atomic import atomic_write_text
from .common import add_threads_arg, apply_threads

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="evaluate fused images with fusion metrics (VIFB/MEFB/CDDFuse conventions)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--fused", type=Path, help="folder of fused images, or of one subfolder per method")
    p.add_argument("--a", type=Path, help="folder of first source images (VIFB order: visible)")
    p.add_argument("--b", type=Path, help="folder of second source images (VIFB order: infrared)")
    p.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        help="metric names (comma or space separated; default: the default suite). Options as "
        "name:key=value[,key=value] (';' also separates options), e.g. psnr:convention=standard",
    )
    p.add_argument("--mode", default="native", choices=["native", "gray", "gray_cv2"],
                   help="native: RGB per-channel (VIFB/MEFB); gray: MATLAB rgb2gray first; gray_cv2: CDDFuse's conversion")
    p.add_argument("-o", "--output", type=Path, default=None, help="per-image CSV to write")
    p.add_argument("--markdown", type=Path, default=None, help="also write the summary table to this Markdown file")
    p.add_argument("--device", default=None, help="torch device (default cpu)")
    p.add_argument("--list", action="store_true", help="list the available metrics and exit")
    add_threads_arg(p)
    p.set_defaults(func=run)
    return p


# --------------------------------------------------------------------------- helpers
def parse_metrics(items: Optional[Sequence[str]]):
    """``['en,mi', 'psnr:convention=standard']`` -> list of Metric objects (None = defaults)."""
    from ..errors import ConfigError
    from ..metrics import create, default_metrics

    if not items:
        return [create(n) for n in default_metrics()]
    specs: list[tuple[str, dict]] = []
    for item in items:
        for tok in filter(None, (t.strip() for t in item.split(","))):
            if "=" in tok and ":" not in tok and specs:
                # "name:k=v,k2=v2": a bare option after a comma belongs to the metric before it
                # (the syntax of model specs such as ``mmaif:mode=flow,steps=5``)
                name, opt_s = specs[-1][0], tok
            else:
                name, _, opt_s = tok.partition(":")
                specs.append((name.strip(), {}))
            for kv in filter(None, opt_s.split(";")):
                k, eq, v = kv.partition("=")
                if not eq:
                    raise ConfigError(f"bad metric option {kv!r} in {tok!r}; use name:key=value")
                specs[-1][1][k.strip()] = _parse_value(v.strip())
    return [create(name, **opts) for name, opts in specs]


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _images_by_stem(folder: Path) -> Dict[str, Path]:
    out: Dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            out.setdefault(p.stem, p)
    return out


def discover_methods(fused: Path) -> Dict[str, Dict[str, Path]]:
    """``{method: {stem: path}}``: subfolders with images are methods; otherwise the folder
    itself is the only method (named after it)."""
    from ..errors import ImageReadError

    if not fused.is_dir():
        raise ImageReadError(f"{fused}: not a folder")
    subs = {d.name: _images_by_stem(d) for d in sorted(fused.iterdir()) if d.is_dir()}
    subs = {k: v for k, v in subs.items() if v}
    if subs:
        return subs
    own = _images_by_stem(fused)
    if not own:
        raise ImageReadError(f"{fused}: no images (or method subfolders with images) found")
    return {fused.name: own}


def metric_column(m, metrics) -> str:
    from ..metrics.api import _metric_key

    return _metric_key(m, metrics)


def _fmt(x: float) -> str:
    if x != x:
        return "nan"
    return f"{x:.2f}" if abs(x) >= 100 else f"{x:.4f}"


def summary_table(rows: List[dict], metrics, columns: List[str]) -> str:
    """Markdown table: one row per method, ``mean ± std`` per metric, best mean in bold."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    stats: Dict[str, Dict[str, Tuple[float, float, int]]] = {}
    for meth in methods:
        stats[meth] = {}
        for col in columns:
            vals = [r[col] for r in rows if r["method"] == meth and not math.isnan(r[col])]
            n = len(vals)
            mean = sum(vals) / n if n else float("nan")
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / n) if n else float("nan")
            stats[meth][col] = (mean, std, n)
    head = ["Method"]
    for m, col in zip(metrics, columns):
        arrow = {True: " ↑", False: " ↓"}.get(m.higher_is_better, "")
        base, br, rest = col.partition("[")
        head.append(base.upper() + br + rest + arrow)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + [":---:"] * len(columns)) + "|"]
    best: Dict[str, float] = {}
    for m, col in zip(metrics, columns):
        means = [stats[k][col][0] for k in methods if not math.isnan(stats[k][col][0])]
        if means and m.higher_is_better is not None and len(methods) > 1:
            best[col] = max(means) if m.higher_is_better else min(means)
    for meth in methods:
        cells = [meth]
        for col in columns:
            mean, std, n = stats[meth][col]
            cell = f"{_fmt(mean)} ± {_fmt(std)}" if n else "–"
            if col in best and n and mean == best[col]:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path: Path, rows: List[dict], columns: List[str]) -> None:
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", "image"] + columns)
    for r in rows:
        w.writerow([r["method"], r["image"]] + [repr(float(r[c])) for c in columns])
    atomic_write_text(path, buf.getvalue(), newline="")


# --------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import UnifuseError
    from ..metrics import evaluate, list_metrics, metric_info

    apply_threads(args)
    if args.list:
        for n in list_metrics():
            s = metric_info(n)
            arrow = {True: "↑", False: "↓"}.get(s.higher_is_better, " ")
            print(f"{n:14s} {arrow} {s.description}{'' if s.default else '  (not in default suite)'}")
        return 0
    if args.fused is None or args.a is None or args.b is None:
        raise UnifuseError("eval needs --fused, --a and --b (or --list)")
    metrics = parse_metrics(args.metrics)
    columns = [metric_column(m, metrics) for m in metrics]
    methods = discover_methods(args.fused)
    for d in (args.a, args.b):
        if not Path(d).is_dir():
            raise UnifuseError(f"{d}: not a folder")
    src_a, src_b = _images_by_stem(args.a), _images_by_stem(args.b)
    jobs = [(meth, stem, p) for meth, files in methods.items() for stem, p in files.items()]
    rows: List[dict] = []
    failures: List[str] = []
    bar = tqdm(jobs, desc="eval", unit="img", disable=not sys.stderr.isatty())
    for meth, stem, fpath in bar:
        bar.set_postfix_str(f"{meth}/{stem}", refresh=False)
        if stem not in src_a or stem not in src_b:
            missing = ", ".join(str(d) for d, s in ((args.a, src_a), (args.b, src_b)) if stem not in s)
            failures.append(f"{fpath}: no source image with stem {stem!r} in {missing}")
            continue
        try:
            res = evaluate(fpath, src_a[stem], src_b[stem], metrics=metrics, mode=args.mode, device=args.device)
        except UnifuseError as exc:
            failures.append(str(exc))
            continue
        rows.append({"method": meth, "image": stem, **res})
    bar.close()
    for msg in failures:
        print(f"unifuse eval: skipped: {msg}", file=sys.stderr)
    if rows:
        table = summary_table(rows, metrics, columns)
        print(table)
        if args.markdown:
            atomic_write_text(args.markdown, table + "\n", newline="")
        if args.output:
            write_csv(args.output, rows, columns)
            print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    else:
        print("unifuse eval: nothing was evaluated", file=sys.stderr)
    n_ok = len(rows)
    print(f"evaluated {n_ok} image(s) in {len(methods)} method(s); {len(failures)} failed", file=sys.stderr)
    return 1 if failures or not rows else 0
