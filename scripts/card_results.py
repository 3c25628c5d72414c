"""Print the model card's "Dev-set results" tables from the benchmark report's per-image CSVs.

For every suite CSV under ``--csv-dir`` (default ``docs/benchmarks``: ``vifb_dev.csv`` and
``dev_*.csv``, written by ``scripts/benchmark_report.py``), one Markdown table: per metric,
the mean of our model over the suite's pairs, the best training-free baseline's mean (and which
baseline), and ✓ where ours is at least as good as every baseline. Paste the output into
``docs/model_card.md`` after regenerating the report.

Usage::

    python scripts/card_results.py [--csv-dir docs/benchmarks] [--ours tita]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unifuse.report.benchmark.tables import TITLES, means  # noqa: E402

#: the metrics of the card, in this order, where the CSV has them (all higher-is-better)
METRICS = ("mi", "fmi", "qabf", "qp", "qw", "vif", "sd", "ei", "ssim", "mef_ssim")


def suite_table(path: Path, ours: str) -> list[str]:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    cols = [m for m in METRICS if m in rows[0]]
    mean = means(rows, cols)  # {method: {metric: mean over its images}}, NaN left out as in the report
    mine = next(k for k in mean if k.lower() == ours)
    baselines = list(dict.fromkeys(r["method"] for r in rows if r["kind"] == "baseline"))
    cells = []
    for m in cols:
        b = max(baselines, key=lambda k: mean[k][m])
        ok = " ✓" if mean[mine][m] >= mean[b][m] else ""
        cells.append(f"{mean[mine][m]:.3f} / {mean[b][m]:.3f} ({b}){ok}")
    n_pairs = sum(1 for r in rows if r["method"] == mine)
    return [f"**{path.stem} ({n_pairs} pairs)**", "",
            "| " + " | ".join(TITLES[c] for c in cols) + " |",
            "|" + "---|" * len(cols),
            "| " + " | ".join(cells) + " |", ""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv-dir", type=Path, default=REPO / "docs" / "benchmarks")
    ap.add_argument("--ours", default="tita")
    args = ap.parse_args(argv)
    paths = [args.csv_dir / "vifb_dev.csv"] + sorted(args.csv_dir.glob("dev_*.csv"))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"card_results: {missing[0]} not found (run scripts/benchmark_report.py first)", file=sys.stderr)
        return 2
    out = [f"Means over each dev set (all metrics higher-is-better; our metric implementations, `native` mode). "
           f"Cell: {args.ours.upper()} / best training-free baseline (which); ✓ = {args.ours.upper()} ≥ every "
           "baseline. Full tables, per-image CSVs and the command: [benchmarks.md](benchmarks.md).", ""]
    for p in paths:
        out += suite_table(p, args.ours.lower())
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
