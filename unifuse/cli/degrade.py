"""`unifuse degrade`: seeded degradation of one pair or of two folders matched by file stem.

``unifuse degrade A B -o DIR --task ivf [--types haze,rain] [--n 1-3] [--seed S]`` writes ``DIR/a/<A name>``,
``DIR/b/<B name>`` (same format and bit depth as the inputs) and ``DIR/degradations.csv`` (per pair: file
names, seeds, types, every drawn parameter as JSON, the prompt). Folder mode: ``--a DIR --b DIR``.
The per-pair seed is derived from ``(--seed, stem of A)``, so outputs do not depend on folder order and
the same seed gives byte-identical files. ``--list`` prints the types, their ranges and pools.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.degrade import ORDER, TASKS, TYPES, canonical, check_types, degrade_pair, derive_seed, parse_n, task_pool
from ..errors import ConfigError, InputMismatchError, UnifuseError
from ..io import read_image, write_image
from ..io.atomic import atomic_write_text
from .common import add_threads_arg, apply_threads, is_folder_mode
from .fuse import pair_folders

CSV_COLUMNS = ("name_a", "name_b", "task", "seed", "pair_seed", "types", "applied_to", "params", "prompt")


def add_parser(sub) -> None:
    p = sub.add_parser("degrade", help="degrade a source pair (or two folders) reproducibly from a seed",
                       description="Apply seeded degradations (haze, rain, snow, blur, noise, JPEG, ...; spec mmaif §1) "
                                   "to a pair (`unifuse degrade A B -o DIR --task ivf`) or to folders matched by stem "
                                   "(`--a DIR --b DIR`). A = visible / over-exposed / far-focused, B = infrared / "
                                   "under-exposed / near-focused. `--list` shows the types.")
    p.add_argument("sources", nargs="*", metavar="IMAGE", help="the two source images A B (single-pair mode)")
    p.add_argument("--a", dest="dir_a", help="folder of source-A images (folder mode)")
    p.add_argument("--b", dest="dir_b", help="folder of source-B images (folder mode)")
    p.add_argument("-o", "--output", help="output folder (gets a/, b/ and degradations.csv)")
    p.add_argument("--task", help="ivf | mef | mff (chooses the pool and the per-source rules)")
    p.add_argument("--types", help="comma-separated types to apply together (default: drawn from the task pool)")
    p.add_argument("--n", default=None, help="number of drawn types: 1, 2, 3 or a range such as 1-3 (default 1-3)")
    p.add_argument("--seed", type=int, default=0, help="base seed; each pair uses a seed derived from (seed, A stem)")
    p.add_argument("--list", action="store_true", help="print the degradation types, parameter ranges and task pools")
    add_threads_arg(p)
    p.set_defaults(func=run)


def pair_seed(seed: int, stem: str) -> int:
    """63-bit seed of a pair from the base seed and the A file stem (independent of folder order)."""
    return derive_seed(seed, stem)


def list_text() -> str:
    """The ``--list`` table: type, pools, parameter ranges."""
    lines = ["type            tasks          parameters"]
    for name in ORDER:
        pools = ",".join(t.lower() for t in TASKS if name in task_pool(t))
        lines.append(f"{name:<15} {pools:<14} {TYPES[name].ranges}")
    lines.append("")
    lines.append("A = visible / over-exposed / far-focused, B = infrared / under-exposed / near-focused. IVF: weather on A only "
                 "(B gets a mild blur), blur/down-sample/noise/JPEG on A and on B with p=0.5, low exposure on A, low contrast "
                 "on A or B, IR strips on B. MEF/MFF: every type on both with the same parameters.")
    return "\n".join(lines)


def _to_tensor(data: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def _to_array(t: torch.Tensor) -> np.ndarray:
    return t[0].numpy() if t.shape[0] == 1 else t.permute(1, 2, 0).numpy()


def _degrade_one(pa: Path, pb: Path, out: Path, args, types, n) -> dict:
    ia, ib = read_image(pa), read_image(pb)
    if ia.data.shape[:2] != ib.data.shape[:2]:
        raise InputMismatchError(f"{pa} is {ia.width}x{ia.height} but {pb} is {ib.width}x{ib.height}")
    ta, tb = out / "a" / pa.name, out / "b" / pb.name
    for src, dst in ((pa, ta), (pb, tb), (pa, tb), (pb, ta)):
        if src.resolve() == dst.resolve():
            raise ConfigError(f"output {dst} would overwrite the input {src}; choose another -o folder")
    seed = pair_seed(args.seed, pa.stem)
    r = degrade_pair(_to_tensor(ia.data), _to_tensor(ib.data), args.task, seed=seed, n=n, types=types)
    write_image(ta, _to_array(r.a), bit_depth=ia.bit_depth)
    write_image(tb, _to_array(r.b), bit_depth=ib.bit_depth)
    app = r.applied_to()
    return {"name_a": pa.name, "name_b": pb.name, "task": r.task.lower(), "seed": args.seed, "pair_seed": seed,
            "types": ";".join(r.types), "applied_to": ";".join(f"{t}:{'+'.join(app[t])}" for t in r.types),
            "params": json.dumps(r.params, sort_keys=True), "prompt": r.prompt}


def _write_csv(path: Path, rows: list[dict]) -> None:
    """Write the record; rows of an existing record for other pairs are kept (same A name: replaced)."""
    if path.is_file():
        try:
            with open(path, newline="", encoding="utf-8") as f:
                old = [r for r in csv.DictReader(f) if list(r) == list(CSV_COLUMNS)]
        except (OSError, csv.Error, UnicodeDecodeError):
            old = []
        names = {r["name_a"] for r in rows}
        rows = sorted([r for r in old if r["name_a"] not in names] + list(rows), key=lambda r: r["name_a"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_text())
        return 0
    apply_threads(args)
    if args.task is None:
        raise ConfigError("--task is required: ivf, mef or mff")
    args.task = canonical(args.task).lower()
    if args.types is not None and args.n is not None:
        raise ConfigError("give --types (applied together) or --n (drawn from the pool), not both")
    types = check_types(args.task, [t for t in args.types.split(",") if t.strip()]) if args.types is not None else None
    n = parse_n(args.n) if args.n is not None else (1, 3)
    if not args.output:
        raise ConfigError("-o/--output DIR is required")
    batch = is_folder_mode(args)
    out = Path(args.output)
    if not batch:
        pa, pb = Path(args.sources[0]), Path(args.sources[1])
        row = _degrade_one(pa, pb, out, args, types, n)
        _write_csv(out / "degradations.csv", [row])
        print(f"wrote {out / 'a' / pa.name}, {out / 'b' / pb.name} ({row['types']}): {row['prompt']}")
        return 0
    pairs, problems = pair_folders(Path(args.dir_a), Path(args.dir_b))
    for p in problems:
        print(f"unifuse: skipped: {p}", file=sys.stderr)
    failed, rows = len(problems), []
    for stem, pa, pb in tqdm(pairs, desc="degrading", unit="pair", disable=None):
        try:
            rows.append(_degrade_one(pa, pb, out, args, types, n))
        except UnifuseError as exc:
            failed += 1
            tqdm.write(f"unifuse: failed: {stem}: {exc}", file=sys.stderr)
    if rows:
        _write_csv(out / "degradations.csv", rows)
    print(f"degraded {len(rows)} pair(s) into {out}" + (f"; {failed} failed or skipped" if failed else ""))
    return 1 if failed else 0
