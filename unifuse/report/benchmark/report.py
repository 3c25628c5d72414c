"""Build the benchmark report: score every suite, write the per-image CSVs and the Markdown page.

    from unifuse.report.benchmark import ReportConfig, build_report
    build_report(ReportConfig(data=Path("../shared/data"), out=Path("docs"), weights="runs/tita"))

writes ``out/benchmarks.md`` and, under ``out/benchmarks/``, ``<vifb>.csv`` (every method, per
image), ``<vifb>_published.csv`` (the published methods' cache), ``dev_<split>.csv``,
``generalisation.csv`` and the contact sheets ``generalisation/<pair>.jpg`` (:mod:`.generalisation`).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from ...io.atomic import atomic_write_text
from . import document, generalisation, provenance
from .cache import MetricCache
from .scoring import ModelSpec, make_fuser, score_model, score_published
from .suites import DEV_SPLITS, PAPER_METRICS, Suite, check_data_dir, dev_suite, vifb_suite

BASELINES = ("average", "max", "laplacian", "mertens")


@dataclass
class ReportConfig:
    """What to evaluate and where to write (defaults: the full report)."""

    data: Path
    out: Path
    weights: Any = None                       # TITA weights (None: the shipped ones)
    ours: Optional[str] = "tita"              # model ranked against the others (None: baselines only)
    ours_label: str = "TITA"
    baselines: Sequence[str] = BASELINES
    extra_models: Sequence[ModelSpec] = ()    # further models shown (e.g. TC-MoA when weights exist)
    metrics: Sequence[str] = PAPER_METRICS
    vifb: Optional[str] = "vifb_dev"          # VIFB-layout folder under data (None: skip)
    vifb_methods: Optional[Sequence[str]] = None
    vifb_images: Optional[Sequence[str]] = None
    splits: Sequence[tuple] = DEV_SPLITS      # (preset, folder under data)
    max_pairs: Optional[int] = None           # per dev split (tests)
    generalisation: bool = True               # the section on unseen tasks (unifuse.data.unseen)
    unseen: Optional[Sequence[str]] = None    # its pairs (None: all)
    mode: str = "native"
    recompute: bool = False                   # ignore the published-methods cache
    progress: bool = True
    command: str = "python scripts/benchmark_report.py"
    notes: Sequence[str] = field(default_factory=list)


def _specs(cfg: ReportConfig) -> List[ModelSpec]:
    specs = [ModelSpec(cfg.ours, cfg.weights, cfg.ours_label, "ours")] if cfg.ours else []
    return specs + [ModelSpec(b) for b in cfg.baselines] + list(cfg.extra_models)


def write_rows(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    """Per-image CSV: method, kind, image, then ``columns`` (exact float reprs)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "kind", "image"] + list(columns))
    for r in rows:
        w.writerow([r["method"], r["kind"], r["image"]] + [repr(float(r[c])) if c in r else "" for c in columns])
    atomic_write_text(path, buf.getvalue(), newline="")


def _wall(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min {s:02d} s"


def build_report(cfg: ReportConfig) -> Path:
    """Run everything ``cfg`` asks for; returns the path of the Markdown file."""
    t0 = time.perf_counter()
    date, machine = provenance.today(), provenance.machine()
    out = Path(cfg.out)
    data = check_data_dir(cfg.data) if cfg.vifb or cfg.splits else None  # the unseen pairs need no data
    csv_dir = out / "benchmarks"
    # find every input (and load every model) before the long computations start
    vifb: Optional[Suite] = vifb_suite(data, cfg.vifb, cfg.vifb_methods, cfg.vifb_images) if cfg.vifb else None
    splits = [(dev_suite(data, preset, folder, cfg.max_pairs), folder) for preset, folder in cfg.splits]
    specs = _specs(cfg)
    weights = provenance.describe_weights(cfg.weights) if cfg.ours else {"given": "not evaluated", "path": None}
    fusers = {s.title: make_fuser(s) for s in specs}
    ours = cfg.ours_label if cfg.ours else ""
    baselines = [s.title for s in specs if s.kind == "baseline"]

    body: List[str] = []
    if vifb is not None:
        metrics = vifb.metrics(cfg.metrics)
        cache = MetricCache(csv_dir / f"{vifb.name}_published.csv", enabled=not cfg.recompute)
        rows = score_published(vifb, metrics, cfg.mode, cache, cfg.progress, on_update=lambda: cache.save(metrics))
        cache.save(metrics)
        for s in specs:
            rows += score_model(vifb, s, metrics, cfg.mode, fusers[s.title], cfg.progress)
        write_rows(csv_dir / f"{vifb.name}.csv", rows, list(metrics) + ["fuse_s"])
        body += document.vifb_section(vifb.name, rows, metrics, ours, list(vifb.published))
    if splits:
        body += ["## Dev splits of the training folders (never trained on)", "",
                 f"Best mean in bold; the last row says whether {ours or 'our model'} beats every training-free "
                 "baseline on that metric (strictly better mean).", ""]
    for suite, folder in splits:
        metrics = suite.metrics(cfg.metrics)
        rows = []
        for s in specs:
            rows += score_model(suite, s, metrics, cfg.mode, fusers[s.title], cfg.progress)
        write_rows(csv_dir / f"dev_{suite.name}.csv", rows, list(metrics) + ["fuse_s"])
        body += document.split_section(suite.name, suite.task, folder, rows, metrics, ours, baselines)
    if cfg.generalisation:
        g0 = time.perf_counter()
        rows = generalisation.score_unseen(fusers, {s.title: s.kind for s in specs}, cfg.metrics, cfg.mode,
                                           csv_dir / generalisation.SUBDIR, cfg.unseen, cfg.progress)
        write_rows(csv_dir / "generalisation.csv", rows, generalisation.columns(rows, cfg.metrics))
        body += generalisation.section(rows, cfg.metrics, ours, baselines, time.perf_counter() - g0)

    head = document.header(cfg.command, date, _wall(time.perf_counter() - t0), machine, weights, ours or "TITA")
    text = "\n".join(head + document.notes(weights, ours or "TITA", cfg.notes) + body).rstrip() + "\n"
    md = out / "benchmarks.md"
    atomic_write_text(md, text, newline="")
    return md
