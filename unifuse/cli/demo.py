"""`unifuse demo`: the main job on built-in inputs.

Fuses the built-in sample pairs (multi-focus and multi-exposure pairs synthesised from
photographs that scikit-image ships, with the sharp / well-exposed original as ground truth)
with every model that has usable weights, scores the results, and writes the fused images,
a metrics table (CSV + Markdown) and an HTML report that opens from the file system.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..io import write_image

BASELINES = ["average", "max", "laplacian", "mertens"]


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="fuse the built-in sample pairs and write an HTML report",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="unifuse-demo", help="output folder (default ./unifuse-demo)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def available_models() -> tuple[list[str], str]:
    """Models to show and a note about TITA's weights."""
    from ..models.tita import TITA

    if TITA.default_weights() is not None:
        return ["tita"] + BASELINES, "TITA uses the weights shipped with this package."
    return BASELINES, ("No trained TITA weights ship with this build yet, so the demo shows the "
                       "training-free baselines only (a randomly initialised network's output is not a result).")


def reference_scores(fused: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Full-reference scores against the ground truth: PSNR (dB) and SSIM on 8-bit RGB."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    f8 = np.floor(np.clip(fused, 0, 1) * 255 + 0.5).astype(np.uint8)
    g8 = np.floor(np.clip(gt, 0, 1) * 255 + 0.5).astype(np.uint8)
    if f8.ndim == 2:
        f8 = np.repeat(f8[..., None], 3, axis=-1)
    return {"PSNR_gt": float(peak_signal_noise_ratio(g8, f8, data_range=255)),
            "SSIM_gt": float(structural_similarity(g8, f8, channel_axis=-1, data_range=255))}


def fusion_scores(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """No-reference fusion metrics from :mod:`unifuse.metrics` when available (gray mode)."""
    try:
        from .. import metrics
    except ImportError:  # pragma: no cover - metrics package missing from this build
        return {}
    available = getattr(metrics, "list_metrics", lambda: [])()
    wanted = [m for m in ("mi", "qabf", "ssim", "vif", "sd", "en") if m in available]
    if not wanted:
        return {}
    return {k.upper(): float(v) for k, v in metrics.evaluate(fused, a, b, metrics=wanted, mode="gray").items()}


def run(args: argparse.Namespace) -> int:
    from ..data.samples import list_samples, load_sample
    from ..inference.fuse import Fuser
    from ..report import Figure, Section, write_html_report

    out = Path(args.output)
    (out / "images").mkdir(parents=True, exist_ok=True)
    names, note = available_models()
    print(note, file=sys.stderr)
    fusers = {n: Fuser(n, device=args.device) for n in names}
    rows, sections = [], []
    samples = [load_sample(s) for s in list_samples()]
    bar = tqdm(total=len(samples) * len(names), desc="demo", unit="fusion", disable=None)
    for s in samples:
        figs = []
        for role, img in (("A", s.a), ("B", s.b), ("ground truth", s.ground_truth)):
            rel = f"images/{s.name}_{role.replace(' ', '_')}.png"
            write_image(out / rel, img)
            figs.append(Figure(rel, f"{role}"))
        table = []
        for n, fuser in fusers.items():
            fused, _ = fuser.fuse_arrays(s.a, s.b)
            rel = f"images/{s.name}_{n}.png"
            write_image(out / rel, fused)
            figs.append(Figure(rel, n))
            scores = {**reference_scores(fused, s.ground_truth), **fusion_scores(fused, s.a, s.b)}
            rows.append({"sample": s.name, "task": s.task, "model": n, **scores})
            table.append([n] + [f"{v:.4f}" for v in scores.values()])
            bar.update()
        header = ["model"] + list(rows[-1].keys())[3:]
        sections.append(Section(f"{s.name} ({s.task})", s.description, figs, header, table))
    bar.close()

    keys = list(rows[0].keys())
    with open(out / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    md = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    md += ["| " + " | ".join(f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |" for r in rows]
    (out / "metrics.md").write_text("\n".join(md) + "\n")
    report = write_html_report(out / "report.html", "unifuse demo: built-in sample pairs",
                               note + " PSNR_gt/SSIM_gt compare with the ground truth (higher is better); "
                               "the other columns are no-reference fusion metrics (gray mode).", sections)
    print("\n".join(md))
    print(f"\nwrote {len(rows)} fused images, {out / 'metrics.csv'} and {report}")
    return 0
