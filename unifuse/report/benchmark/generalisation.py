"""The report's "Generalisation" section: our models on tasks TITA never trained on.

The pairs are those of :mod:`unifuse.data.unseen` (simulated pan-sharpening with a ground
truth; SYNTHETIC medical-like phantoms without). Each model fuses a pair with the pair's chroma
rule (``pair.color``: colour from the multispectral image, from the PET image, or gray) and is
scored, like the other sections, on the 8-bit image the fuser returns:

* against the ground truth, where there is one: ``PSNR_gt``, ``SSIM_gt``, ``SAM_gt``,
  ``ERGAS_gt`` of :func:`unifuse.report.pairs.score_fused` (the colour sources are scored the
  same way: what doing nothing gets);
* the report's no-reference metrics in the report's mode (:func:`unifuse.metrics.evaluate`).

One labelled contact sheet per pair (sources, ground truth, every model's result, at full size)
is written as JPEG under ``benchmarks/generalisation/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..pairs import to_u8_rgb
from .scoring import Row, _bar
from .tables import beats_row, means_table

SUBDIR = "generalisation"
#: scores against the ground truth, in column order (see :func:`unifuse.report.pairs.score_fused`)
GT_SCORES = ("PSNR_gt", "SSIM_gt", "SAM_gt", "ERGAS_gt")
COLUMNS, LABEL_H, GAP, QUALITY = 4, 22, 4, 80


def contact_sheet(tiles: Sequence[tuple[str, np.ndarray]], path: Path, columns: int = COLUMNS) -> Path:
    """Images (float ``[0, 1]``, gray or RGB, one size) in a labelled grid, saved as JPEG."""
    from ...training.plot import _font

    h, w = tiles[0][1].shape[:2]
    rows = -(-len(tiles) // columns)
    cell_w, cell_h = w + GAP, h + LABEL_H
    sheet = Image.new("RGB", (columns * cell_w - GAP, rows * cell_h), "white")
    draw, font = ImageDraw.Draw(sheet), _font(14)
    for k, (label, img) in enumerate(tiles):
        x, y = (k % columns) * cell_w, (k // columns) * cell_h
        draw.text((x + 4, y + 3), label, fill="black", font=font)
        sheet.paste(Image.fromarray(to_u8_rgb(img)), (x, y + LABEL_H))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=QUALITY, optimize=True)
    return path


def score_unseen(fusers: Dict[str, Any], kinds: Dict[str, str], metrics: Sequence[str], mode: str, image_dir: Path,
                 names: Optional[Sequence[str]] = None, progress: bool = True) -> List[Row]:
    """Fuse and score every unseen pair (``names``: a subset); writes ``image_dir/<pair>.jpg``.

    Rows: ``method``, ``image`` (the pair's name), ``kind`` (``kinds[method]``, or ``source``
    for a colour source scored against the ground truth), the scores, ``fuse_s``.
    """
    from ...data.unseen import load_all_unseen
    from ...metrics import evaluate
    from ..pairs import score_fused, with_color, with_task

    rows: List[Row] = []
    for pair in load_all_unseen(names):
        labels = tuple(pair.labels)
        sources = [(f"A: {labels[0]}", pair.a), (f"B: {labels[1]}", pair.b)]
        tiles = sources + ([("ground truth", pair.ground_truth)] if pair.ground_truth is not None else [])
        base = {"image": pair.name}
        for label, fuser in _bar(list(fusers.items()), f"{SUBDIR} {pair.name}", progress):
            t0 = time.perf_counter()
            fused = np.asarray(with_task(with_color(fuser, pair.color), pair.task)(pair.a, pair.b, output="pil"), np.float32) / 255
            dt = time.perf_counter() - t0
            vals = {**score_fused(fused, pair, no_reference=False),
                    **evaluate(fused, pair.a, pair.b, metrics=list(metrics), mode=mode)}
            rows.append({"method": label, **base, "kind": kinds.get(label, "baseline"), **vals, "fuse_s": dt})
            tiles.append((label, fused))
        if pair.ground_truth is not None:
            rows += [{"method": f"source {s}", **base, "kind": "source", **score_fused(img, pair, no_reference=False)}
                     for s, img in sources if np.ndim(img) == 3]
        contact_sheet(tiles, Path(image_dir) / f"{pair.name}.jpg")
    return rows


def columns(rows: Sequence[Row], metrics: Sequence[str]) -> List[str]:
    """The score columns present in ``rows``: ground-truth scores, ``metrics``, ``fuse_s``."""
    return [c for c in (*GT_SCORES, *metrics, "fuse_s") if any(c in r for r in rows)]


def section(rows: Sequence[Row], metrics: Sequence[str], ours: str, baselines: Sequence[str],
            seconds: float, csv_name: str = "generalisation.csv") -> List[str]:
    """Markdown lines: an introduction, then per pair a description, its contact sheet and a table."""
    from ...data.unseen import load_unseen

    pairs, model = list(dict.fromkeys(r["image"] for r in rows)), ours or "TITA"
    lines = [f"## Generalisation: tasks {model} never trained on", "",
             f"{model} trains on infrared–visible, multi-exposure and multi-focus pairs only. The pairs below "
             "come from other tasks, built offline by `unifuse.data.unseen`: **simulated** pan-sharpening from two "
             "photographs (Wald's protocol: the photograph is the ground truth, A = its colours at 1/4 resolution, "
             "B = a full-resolution gray band) and **synthetic medical-like** pairs rendered from one hand-made head "
             "phantom (no real scan, no ground truth; they only mimic the contrast relations of CT, MRI and PET). "
             "Each model fuses with the pair's chroma rule (luma fused, colour from the multispectral / PET image, "
             "or gray; `mertens` fuses RGB). (GT) columns compare with the ground truth; the others are the "
             "report's no-reference metrics, in the same mode as elsewhere. One image per row: no mean, and small "
             "differences mean nothing. Best in bold (a source row in bold: no model beats doing nothing there); "
             f"the last row says whether {ours or 'our model'} is strictly better than every training-free baseline. "
             f"Per-image values: `benchmarks/{csv_name}`; this section took {seconds:.0f} s.", ""]
    for name in pairs:
        pair = load_unseen(name)
        mine = [r for r in rows if r["image"] == name]
        cols = [c for c in columns(mine, metrics) if c != "fuse_s"]
        h, w = pair.a.shape[:2]
        table, m = means_table(mine, cols, extra=("fuse_s",))
        link = f"benchmarks/{SUBDIR}/{name}.jpg"  # relative to benchmarks.md
        lines += [f"### {name} ({pair.task}, {w}×{h})", "", pair.description, "",
                  f"![{name}: sources and each model's fused image]({link})", "", table]
        rivals = [b for b in baselines if b in m]
        if ours in m and rivals:
            lines.append(beats_row(m, cols, ours, rivals) + " |")
        lines.append("")
    return lines
