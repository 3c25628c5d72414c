"""Fuse source pairs with several models and turn each pair into a report section.

Used by ``unifuse demo`` and reusable by other reports::

    from unifuse.inference.fuse import Fuser
    from unifuse.report.pairs import pair_sections, write_metrics_tables
    fusers = {"laplacian": Fuser("laplacian")}
    sections, rows = pair_sections(pairs, fusers, "out", group="unseen task")   # writes out/images/*.png
    write_metrics_tables(rows, "out")                                          # out/metrics.csv, .md

A pair is a :class:`unifuse.data.samples.SamplePair` (built-in samples, real held-out pairs of
:mod:`unifuse.data.devpairs`, unseen tasks of :mod:`unifuse.data.unseen`). Each section shows
the two sources, the ground truth when there is one, every model's fused image, and a table:

* with a ground truth: ``PSNR_gt`` (dB) and ``SSIM_gt`` on 8-bit RGB (and, for
  pan-sharpening, ``SAM_gt`` in degrees and ``ERGAS_gt``), plus one row per colour source
  scored the same way (what doing nothing gets);
* always: the no-reference fusion metrics of :mod:`unifuse.metrics` in gray mode (MI, Qabf,
  SSIM, VIF, SD, EN; higher is better for all of them);
* ``time_s``: wall time of the fusion call (model + colour handling, not the metrics).

Images are written as 8-bit PNG under ``out_dir/images`` and referenced relatively, so the
page opens from the file system.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from ..io import write_image
from .html import Figure, Section

__all__ = ["split_model_spec", "to_u8_rgb", "reference_scores", "fusion_scores", "score_fused", "with_color", "fuse_pair_section", "pair_sections",
           "write_metrics_tables", "markdown_table", "NO_REFERENCE_METRICS"]

#: no-reference metrics shown for every pair (gray mode)
NO_REFERENCE_METRICS = ("mi", "qabf", "ssim", "vif", "sd", "en")


def to_u8_rgb(x: np.ndarray) -> np.ndarray:
    """Float ``[0, 1]`` image (gray or RGB) -> 8-bit RGB ``(H, W, 3)`` (round half up, gray repeated)."""
    u8 = np.floor(np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(u8[..., None], 3, axis=-1) if u8.ndim == 2 else u8


def reference_scores(fused: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Full-reference scores against the ground truth: PSNR (dB) and SSIM on 8-bit RGB."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    f8, g8 = to_u8_rgb(fused), to_u8_rgb(gt)
    return {"PSNR_gt": float(peak_signal_noise_ratio(g8, f8, data_range=255)),
            "SSIM_gt": float(structural_similarity(g8, f8, channel_axis=-1, data_range=255))}


def fusion_scores(fused: np.ndarray, a: np.ndarray, b: np.ndarray,
                  names: Sequence[str] = NO_REFERENCE_METRICS) -> dict[str, float]:
    """No-reference fusion metrics from :mod:`unifuse.metrics` (gray mode), upper-case keys."""
    try:
        from .. import metrics
    except ImportError:  # pragma: no cover - metrics package missing from this build
        return {}
    available = getattr(metrics, "list_metrics", lambda: [])()
    wanted = [m for m in names if m in available]
    if not wanted:
        return {}
    return {k.upper(): float(v) for k, v in metrics.evaluate(fused, a, b, metrics=wanted, mode="gray").items()}


def score_fused(fused: np.ndarray, pair: Any, no_reference: bool = True) -> dict[str, float]:
    """All scores of one fused image of ``pair`` (see the module docstring)."""
    scores: dict[str, float] = {}
    gt = pair.ground_truth
    if gt is not None:
        scores.update(reference_scores(fused, gt))
        if pair.task == "PAN" and np.ndim(gt) == 3 and np.ndim(fused) == 3:
            from ..data.unseen import pansharpening_scores

            scores.update(pansharpening_scores(fused, gt))
    if no_reference:
        scores.update(fusion_scores(fused, pair.a, pair.b))
    return scores


def with_color(fuser: Any, color: str) -> Any:
    """A shallow copy of a :class:`~unifuse.inference.fuse.Fuser` (same loaded model) with another chroma rule."""
    if fuser.options.color == color:
        return fuser
    out = copy.copy(fuser)
    out.options = dataclasses.replace(fuser.options, color=color)
    return out


def split_model_spec(text: str) -> tuple[str, dict[str, Any]]:
    """``"NAME[:OPT=VAL,...]"`` -> ``(NAME, {OPT: VAL})``, values read as YAML scalars (``steps=5`` is
    an int, ``mode=flow`` a string): how report scripts name a model with forward options
    (e.g. ``mmaif:mode=flow``). Raises :class:`~unifuse.errors.ConfigError` on an item without ``=``."""
    from ..errors import ConfigError
    from ..training.config import key_value

    name, _, rest = text.partition(":")
    opts: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        try:
            key, value = key_value(item, "OPT=VAL")
        except ConfigError as exc:
            raise ConfigError(f"model {text!r}: {exc}") from None
        opts[key] = value
    return name.strip(), opts


def _with_option(fuser: Any, name: str, value: Any) -> Any:
    """``fuser`` with the forward option ``name=value`` when its model takes it and none was fixed."""
    model = getattr(fuser, "model", None)
    if name not in getattr(model, "call_options", ()) or name in fuser.model_options:
        return fuser
    out = copy.copy(fuser)
    out.model_options = {**fuser.model_options, name: value}
    return out


def with_task(fuser: Any, task: str) -> Any:
    """The fuser routing by ``task`` when its model takes a ``task`` forward option (e.g. TC-MoA's
    task routers) and none was fixed; otherwise ``fuser`` itself. ``task``: ``"IVF"``, ``"MEF"`` …"""
    return _with_option(fuser, "task", task.lower())


def with_prompt(fuser: Any, prompt: str) -> Any:
    """The fuser instructed by ``prompt`` when its model takes a ``prompt`` forward option (e.g.
    MMAIF's text instruction) and none was fixed; otherwise ``fuser`` itself."""
    return _with_option(fuser, "prompt", prompt)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "x"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))


def fuse_pair_section(pair: Any, fusers: dict[str, Any], out_dir: str | os.PathLike, *, group: str = "",
                      image_dir: str = "images", on_fused: Optional[Callable[[str], None]] = None
                      ) -> tuple[Section, list[dict[str, Any]]]:
    """Fuse ``pair`` with every fuser, write the images, score them.

    Args:
        pair: a :class:`~unifuse.data.samples.SamplePair` (``ground_truth`` may be ``None``;
            ``pair.color`` is the chroma rule used for every model).
        fusers: display name -> :class:`~unifuse.inference.fuse.Fuser`.
        out_dir: report folder; images go to ``out_dir/image_dir``.
        group: label put in the section title and the ``group`` column of the rows.
        on_fused: called with the model name after each fusion (progress bars).
    Returns:
        the report section and one row (dict) per model and per scored source.
    """
    out = Path(out_dir)
    (out / image_dir).mkdir(parents=True, exist_ok=True)
    stem = _safe(pair.name)
    labels = tuple(getattr(pair, "labels", ("A", "B")))
    figs: list[Figure] = []
    sources = [(f"A: {labels[0]}", "A", pair.a), (f"B: {labels[1]}", "B", pair.b)]
    if pair.ground_truth is not None:
        sources.append(("ground truth", "ground_truth", pair.ground_truth))
    for caption, role, img in sources:
        rel = f"{image_dir}/{stem}_{role}.png"
        write_image(out / rel, img)
        figs.append(Figure(rel, caption))
    base = {"sample": pair.name, "task": pair.task}
    rows: list[dict[str, Any]] = []
    color = getattr(pair, "color", "weighted")
    for name, fuser in fusers.items():
        t0 = time.perf_counter()
        fused, _ = with_task(with_color(fuser, color), pair.task).fuse_arrays(pair.a, pair.b)
        seconds = time.perf_counter() - t0
        rel = f"{image_dir}/{stem}_{_safe(name)}.png"
        write_image(out / rel, fused)
        figs.append(Figure(rel, name))
        rows.append({**base, "model": name, **score_fused(fused, pair), "group": group, "time_s": seconds})
        if on_fused is not None:
            on_fused(name)
    if pair.ground_truth is not None:  # what the sources themselves score against the ground truth
        for (caption, _, img), label in zip(sources[:2], labels):
            if np.ndim(img) == 3:
                rows.append({**base, "model": f"(source: {label})", **score_fused(img, pair, no_reference=False),
                             "group": group, "time_s": None})
    keys = _score_keys(rows)
    header = ["model"] + keys + ["time (s)"]
    table = [[r["model"]] + [_fmt(r.get(k)) if k in r else "–" for k in keys]
             + ["" if r["time_s"] is None else f"{r['time_s']:.2f}"] for r in rows]
    title = f"{group}: {pair.name} ({pair.task})" if group else f"{pair.name} ({pair.task})"
    return Section(title, pair.description, figs, header, table), rows


def _score_keys(rows: Iterable[dict[str, Any]]) -> list[str]:
    fixed = {"sample", "task", "model", "group", "time_s"}
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in fixed and k not in keys]
    return sorted(keys, key=lambda k: not k.endswith("_gt"))  # full-reference scores first (stable)


def pair_sections(pairs: Iterable[Any], fusers: dict[str, Any], out_dir: str | os.PathLike, *, group: str = "",
                  on_fused: Optional[Callable[[str], None]] = None) -> tuple[list[Section], list[dict[str, Any]]]:
    """:func:`fuse_pair_section` for each pair: ``(sections, rows)``."""
    sections, rows = [], []
    for pair in pairs:
        s, r = fuse_pair_section(pair, fusers, out_dir, group=group, on_fused=on_fused)
        sections.append(s)
        rows += r
    return sections, rows


def generalisation_sections(fusers: dict[str, Any], out_dir: str | os.PathLike, names: Optional[Iterable[str]] = None,
                            group: str = "unseen task", on_fused: Optional[Callable[[str], None]] = None):
    """Fuse the unseen-task pairs of :mod:`unifuse.data.unseen` with ``fusers`` and build report sections.

    Writes the images under ``out_dir/images``; returns ``(sections, rows)`` for
    :func:`unifuse.report.write_html_report` and :func:`write_metrics_tables`
    (or :func:`markdown_table` for a Markdown document).

    Args:
        fusers: display name -> :class:`~unifuse.inference.fuse.Fuser` (each pair uses its own
            chroma rule with the same loaded model).
        names: pairs to include (default: all of :func:`unifuse.data.unseen.list_unseen`).
    """
    from ..data.unseen import load_all_unseen

    return pair_sections(load_all_unseen(names), fusers, out_dir, group=group, on_fused=on_fused)


def write_metrics_tables(rows: list[dict[str, Any]], out_dir: str | os.PathLike) -> tuple[Path, str]:
    """Write ``metrics.csv`` and ``metrics.md`` (all rows; blank where a score does not apply).

    Columns: ``sample, task, model``, the scores in order of first appearance, ``group, time_s``.
    Returns the CSV path and the Markdown text.
    """
    out = Path(out_dir)
    keys = ["sample", "task", "model"] + _score_keys(rows) + ["group", "time_s"]
    with open(out / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, restval="")
        w.writeheader()
        w.writerows({k: ("" if r.get(k) is None else r[k]) for k in keys} for r in rows)
    text = markdown_table(rows)
    (out / "metrics.md").write_text(text)
    return out / "metrics.csv", text


def markdown_table(rows: list[dict[str, Any]], columns: Optional[Sequence[str]] = None) -> str:
    """Rows as a Markdown table (4 decimals; blank where a score does not apply).

    ``columns`` default: ``sample, task, model``, the scores, ``group, time_s``.
    """
    keys = list(columns) if columns is not None else ["sample", "task", "model"] + _score_keys(rows) + ["group", "time_s"]
    md = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    md += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(md) + "\n"
