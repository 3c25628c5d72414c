"""Robustness report: how much each fusion model's result degrades when its inputs are degraded.

``scripts/robustness_report.py`` -> ``docs/robustness.md`` (+ ``docs/robustness/robustness.csv`` and
contact sheets). For every model with weights (:func:`models_with_weights`), every split (the dev
splits of the benchmark report and ``vifb_dev``), every pair (resized so that its longer side is at
most ``max_side``, quantised to 8 bits) and every condition:

* ``clean`` — the clean pair;
* each degradation type of the task's pool alone (:func:`unifuse.data.degrade.degrade_pair`);
* ``n=2`` / ``n=3`` — seeded compounds drawn from the pool (``compounds`` of each);

the degraded pair (8-bit) is fused and the fusion is scored with no-reference fusion metrics
(:func:`unifuse.metrics.evaluate`) **against the clean sources**. The *change* of a metric is
``(score(degraded) − score(clean)) / |score(clean)|`` in percent, sign-flipped for
lower-is-better metrics, so negative = worse than the model's own clean-input fusion; a condition's
change is the mean over the metrics, then over the pairs. Every condition seed is derived from
``(seed, split, pair, condition)``, so the report is reproducible and a subset run gives the same
numbers for the pairs it covers.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..data.degrade import degrade_pair, derive_seed, task_pool
from ..errors import ConfigError
from ..io import read_image
from ..io.atomic import atomic_write_text
from .pairs import split_model_spec, with_prompt, with_task
from .benchmark.generalisation import contact_sheet
from .benchmark.provenance import machine, today
from .benchmark.suites import DEV_SPLITS, Pair, dev_suite, vifb_suite
from .benchmark.tables import higher_is_better, title

#: splits: (name, folder under data); ``vifb_dev`` uses the VIFB layout (vi/, ir/)
SPLITS = tuple(DEV_SPLITS) + (("vifb_dev", "vifb_dev"),)
#: no-reference metrics that compare the fusion with the sources (SD/EI/EN would reward added noise)
METRICS = ("mi", "qabf", "vif", "ssim")
SUBDIR = "robustness"


@dataclass
class RobustnessConfig:
    """What to evaluate (defaults: the documented report size)."""

    data: Path
    out: Path
    models: Optional[Sequence[str]] = None          # None: models_with_weights()
    weights: Dict[str, Any] = field(default_factory=dict)  # model -> weights (path / run folder)
    splits: Sequence[tuple] = SPLITS
    pairs: int = 1                                  # pairs per split (its first dev pairs)
    max_side: int = 128                             # resize so that max(H, W) <= max_side
    metrics: Sequence[str] = METRICS
    mode: str = "native"
    types: Optional[Sequence[str]] = None           # restrict the single-type conditions
    compounds: int = 1                              # seeded compounds per n in (2, 3)
    seed: int = 0
    sheets: int = 1                                 # contact sheets per split (first pairs, n=3 compound)
    progress: bool = True
    command: str = "python scripts/robustness_report.py"
    notes: Sequence[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- models
def models_with_weights() -> List[str]:
    """Registered fusion models that can be evaluated as shipped: learned models whose shipped weights
    exist (ablation variants excluded), then the training-free models. A new model (MMAIF, TC-MoA) is
    included as soon as its ``default_weights()`` returns an existing file."""
    import warnings

    from ..models import MODELS, _ensure_builtin, create_model

    _ensure_builtin()
    learned, free = [], []
    for entry in MODELS:
        if "ablation" in entry.description.lower():
            continue
        trainable = entry.tags.get("trainable")
        if trainable is False:
            free.append(entry.name)
            continue
        cls = getattr(entry.factory, "model_class", None)
        if cls is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    cls = create_model(entry.name)
                except Exception:  # noqa: BLE001 - a model that cannot even be built is skipped
                    continue
        if not getattr(cls, "trainable", False):
            free.append(entry.name)
            continue
        default = getattr(cls, "default_weights", None)
        path = default() if callable(default) else None
        if path is not None and Path(path).is_file():
            learned.append(entry.name)
    return learned + free


# --------------------------------------------------------------------------------------------- data
@dataclass
class SplitPairs:
    name: str
    task: str
    pairs: List[Pair]


def load_splits(cfg: RobustnessConfig) -> List[SplitPairs]:
    out = []
    for name, folder in cfg.splits:
        if name == "vifb_dev":
            s = vifb_suite(cfg.data, folder, methods=[])
            pairs = s.pairs[:cfg.pairs]
        else:
            s = dev_suite(cfg.data, name, folder, max_pairs=cfg.pairs)
            pairs = s.pairs
        out.append(SplitPairs(name, s.task, pairs))
    return out


def load_u8(path: Path, max_side: int) -> np.ndarray:
    """uint8 (H, W) (gray files and equal-channel RGB) or (H, W, 3), area-resized to max side ``max_side``."""
    im = read_image(path)
    data = im.gray() if im.is_gray else im.data
    u8 = np.floor(np.clip(data, 0, 1) * 255 + 0.5).astype(np.uint8)
    h, w = u8.shape[:2]
    s = max_side / max(h, w)
    if s < 1:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        u8 = np.asarray(Image.fromarray(u8).resize(size, Image.BOX))
    return u8


def _to_t(u8: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(u8.astype(np.float32) / 255)
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def _to_u8(t: torch.Tensor) -> np.ndarray:
    x = np.floor(t.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    return x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)


def conditions(task: str, cfg: RobustnessConfig) -> List[tuple[str, Optional[list], Optional[int]]]:
    """``(label, types or None, n or None)``: clean, each type alone, then the seeded compounds."""
    pool = task_pool(task)
    singles = [t for t in pool if cfg.types is None or t in cfg.types]
    out = [("clean", None, None)] + [(t, [t], None) for t in singles]
    for n in (2, 3):
        out += [(f"n={n}" + (f"#{k + 1}" if cfg.compounds > 1 else ""), None, n) for k in range(cfg.compounds)]
    return out


# --------------------------------------------------------------------------------------------- scoring
def relative_change(value: float, clean: float, metric: str) -> float:
    """Percent change vs the clean-input fusion, negative = worse (sign follows the metric's direction)."""
    if not (math.isfinite(value) and math.isfinite(clean)) or abs(clean) < 1e-12:
        return float("nan")
    r = 100.0 * (value - clean) / abs(clean)
    return -r if higher_is_better(metric) is False else r


def run(cfg: RobustnessConfig) -> tuple[List[dict], Dict[str, Any]]:
    """Score everything; returns the per-(split, pair, condition, model) rows and run info."""
    from ..inference.fuse import Fuser
    from ..metrics import evaluate

    models = list(cfg.models) if cfg.models else models_with_weights()
    if not models:
        raise ConfigError("no model to evaluate")
    fusers = {}
    for m in models:  # "NAME" or "NAME:OPT=VAL,..." (forward options, e.g. mmaif:mode=flow)
        name, opts = split_model_spec(m)
        fusers[m] = Fuser(name, weights=cfg.weights.get(m, cfg.weights.get(name)), model_options=opts or None)
    splits = load_splits(cfg)
    jobs = [(sp, pair, cond) for sp in splits for pair in sp.pairs for cond in conditions(sp.task, cfg)]
    rows: List[dict] = []
    sheets: List[tuple[str, Path]] = []
    fuse_time = {m: 0.0 for m in models}
    t_start = time.perf_counter()
    clean_scores: Dict[tuple, dict] = {}
    cache_src: Dict[tuple, tuple] = {}
    bar = tqdm(jobs, desc="robustness", unit="cond", disable=not cfg.progress, dynamic_ncols=True)
    for sp, pair, (label, types, n) in bar:
        key = (sp.name, pair.stem)
        if key not in cache_src:
            cache_src[key] = (load_u8(pair.a, cfg.max_side), load_u8(pair.b, cfg.max_side))
        a0, b0 = cache_src[key]
        if a0.shape[:2] != b0.shape[:2]:
            raise ConfigError(f"{pair.a} and {pair.b} differ in size")
        seed = derive_seed(cfg.seed, f"{sp.name}/{pair.stem}/{label}")
        if label == "clean":
            a, b, applied, prompt = a0, b0, (), ""
        else:
            r = degrade_pair(_to_t(a0), _to_t(b0), sp.task, seed=seed, n=n or (1, 3), types=types)
            a, b, applied, prompt = _to_u8(r.a), _to_u8(r.b), r.types, r.prompt
        fused_imgs = {}
        for m, fuser in fusers.items():
            t0 = time.perf_counter()
            # task-routed models (TC-MoA) get the split's task, language-guided ones (MMAIF) the degradation's prompt
            fused = with_prompt(with_task(fuser, sp.task), prompt)(a, b, output="pil")
            fuse_time[m] += time.perf_counter() - t0
            fused_imgs[m] = fused
            vals = evaluate(fused, a0, b0, metrics=list(cfg.metrics), mode=cfg.mode)
            if label == "clean":
                clean_scores[key + (m,)] = vals
            base = clean_scores[key + (m,)]
            ch = {mt: relative_change(vals[mt], base[mt], mt) for mt in cfg.metrics}
            finite = [v for v in ch.values() if math.isfinite(v)]
            rows.append({"split": sp.name, "task": sp.task, "image": pair.stem, "condition": label,
                         "types": ";".join(applied), "seed": seed if label != "clean" else "", "model": m,
                         **{mt: vals[mt] for mt in cfg.metrics}, **{f"{mt}_change": ch[mt] for mt in cfg.metrics},
                         "change": float(np.mean(finite)) if finite else float("nan"), "prompt": prompt})
        if label == "clean":
            cache_src[key + ("clean_fusions",)] = fused_imgs
        is_sheet_cond = label.startswith("n=3") and (label == "n=3" or label.endswith("#1"))
        if is_sheet_cond and sp.pairs.index(pair) < cfg.sheets:
            clean_f = cache_src[key + ("clean_fusions",)]
            tiles = [("A clean", a0), ("B clean", b0), ("A degraded", a), ("B degraded", b)]
            for m in models:
                tiles += [(f"{m} clean", np.asarray(clean_f[m])), (f"{m} degraded", np.asarray(fused_imgs[m]))]
            zoom = max(1, -(-256 // a0.shape[1]))  # small pairs are shown enlarged (nearest neighbour)
            tiles = [(lab, _rgbf(img, zoom)) for lab, img in tiles]
            path = cfg.out / SUBDIR / f"{sp.name}_{pair.stem}.jpg"
            contact_sheet(tiles, path, columns=4)
            sheets.append((f"{sp.name} / {pair.stem}: {', '.join(applied)} — “{prompt}”", path))
    info = {"models": models, "splits": splits, "sheets": sheets, "wall_s": time.perf_counter() - t_start,
            "fuse_s": fuse_time, "n_conditions": len(jobs)}
    return rows, info


def _rgbf(img: np.ndarray, zoom: int = 1) -> np.ndarray:
    if zoom > 1:
        img = np.asarray(Image.fromarray(img).resize((img.shape[1] * zoom, img.shape[0] * zoom), Image.NEAREST))
    x = img.astype(np.float32) / 255
    return np.repeat(x[..., None], 3, -1) if x.ndim == 2 else x


# --------------------------------------------------------------------------------------------- tables
def _mean(xs) -> float:
    xs = [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
    return float(np.mean(xs)) if xs else float("nan")


def _pct(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:+.1f}"


def change_table(rows: Sequence[dict], models: Sequence[str], split: str) -> tuple[List[str], Dict[str, Dict[str, float]]]:
    """Markdown rows: condition × model, mean change (%) over pairs; least degradation in bold."""
    conds = [c for c in dict.fromkeys(r["condition"] for r in rows if r["split"] == split) if c != "clean"]
    table: Dict[str, Dict[str, float]] = {}
    lines = ["| condition | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for c in conds:
        vals = {m: _mean(r["change"] for r in rows if r["split"] == split and r["condition"] == c and r["model"] == m) for m in models}
        table[c] = vals
        best = max((v for v in vals.values() if math.isfinite(v)), default=None)
        cells = [(f"**{_pct(v)}**" if best is not None and v == best and len(models) > 1 else _pct(v)) for v in vals.values()]
        label = c
        if c.startswith("n="):
            types = sorted({r["types"] for r in rows if r["split"] == split and r["condition"] == c})
            label = f"{c} ({' / '.join(t.replace(';', ' + ') for t in types)})"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines, table


def clean_table(rows: Sequence[dict], models: Sequence[str], split: str, metrics: Sequence[str]) -> List[str]:
    lines = ["| model (clean inputs) | " + " | ".join(title(m) for m in metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for m in models:
        sel = [r for r in rows if r["split"] == split and r["condition"] == "clean" and r["model"] == m]
        lines.append(f"| {m} | " + " | ".join(f"{_mean(r[mt] for r in sel):.4f}" for mt in metrics) + " |")
    return lines


def summary(rows: Sequence[dict], models: Sequence[str], splits: Sequence[str]) -> tuple[List[str], List[str]]:
    """Model × split table of the mean change over all degraded conditions, and plain sentences."""
    deg = [r for r in rows if r["condition"] != "clean"]
    lines = ["| model | " + " | ".join(splits) + " | all |", "|---|" + "---:|" * (len(splits) + 1)]
    per = {m: {s: _mean(r["change"] for r in deg if r["model"] == m and r["split"] == s) for s in splits} for m in models}
    for m in models:
        per[m]["all"] = _mean(r["change"] for r in deg if r["model"] == m)
        lines.append(f"| {m} | " + " | ".join(_pct(per[m][s]) for s in list(splits) + ["all"]) + " |")
    text = []
    if len(models) > 1:
        for s in list(splits) + ["all"]:
            ranked = sorted((per[m][s], m) for m in models if math.isfinite(per[m][s]))
            if ranked:
                where = "over all splits" if s == "all" else f"on {s}"
                text.append(f"* {where}: **{ranked[-1][1]}** degrades least ({_pct(ranked[-1][0])} %), "
                            f"{ranked[0][1]} most ({_pct(ranked[0][0])} %).")
        by_type = {}
        for r in deg:
            if not r["condition"].startswith("n="):
                by_type.setdefault(r["condition"], {}).setdefault(r["model"], []).append(r["change"])
        best_of = {}
        for t, per_m in by_type.items():
            means = {m: _mean(v) for m, v in per_m.items()}
            if any(math.isfinite(v) for v in means.values()):
                best_of.setdefault(max(means, key=lambda m: means[m] if math.isfinite(means[m]) else -1e9), []).append(t)
        if best_of:
            text.append("* per degradation type (all splits): " + "; ".join(
                f"**{m}** degrades least under {', '.join(ts)}" for m, ts in best_of.items()) + ".")
    return lines, text


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())


def _wall(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def document(cfg: RobustnessConfig, rows: Sequence[dict], info: Dict[str, Any], date: str, mach: str) -> str:
    models = info["models"]
    splits = [s.name for s in info["splits"]]
    L = ["# Robustness to degraded inputs", "",
         f"Generated by `{cfg.command}` on {date} ({mach}); wall time {_wall(info['wall_s'])} "
         f"({info['n_conditions']} pair-conditions × {len(models)} models).", "",
         f"**Size of this run:** {cfg.pairs} pair(s) per split (the first dev pairs: every 8th pair of each benchmark "
         f"folder, and the first of `vifb_dev`), resized so that the longer side is at most {cfg.max_side} px and "
         f"quantised to 8 bits; every degradation type of the task's pool alone, plus {cfg.compounds} seeded "
         f"compound(s) of n = 2 and of n = 3 types; metrics: {', '.join(title(m) for m in cfg.metrics)} "
         f"(mode `{cfg.mode}`); seed {cfg.seed}. Models: {', '.join(models)} (every registered model with shipped "
         "weights, ablation variants excluded, and the training-free baselines; a model added later with weights is "
         "picked up automatically).", "",
         "**How to read it.** Each degraded pair (`unifuse degrade`, spec `mmaif.md` §1: A = visible / over-exposed / "
         "far-focused, B = infrared / under-exposed / near-focused; in IVF weather only hits the visible image and the "
         "infrared one gets a mild blur) is fused by each model, and the fusion is scored **against the clean "
         "sources**. A cell is the change of the scores relative to the same model's fusion of the clean pair, in "
         "percent, averaged over the metrics and pairs: 0 = unaffected, negative = worse (the sign follows each "
         "metric's direction). The best (least negative) model of a row is in bold. A cell measures robustness, not "
         "quality: a model whose clean fusion is weak has little to lose, so read it next to the clean tables. Numbers from "
         f"{cfg.pairs} pair(s) per split at {cfg.max_side} px are indicative, not a benchmark; the spatial parameter "
         "ranges (rain streaks of 15–40 px, blur kernels, strip widths) are in pixels, so at this size they are "
         "strong relative to the image (the spec's training crops are 256 px). Per-pair values of "
         f"every metric: [`{SUBDIR}/robustness.csv`]({SUBDIR}/robustness.csv).", ""]
    L += [f"* {n}" for n in cfg.notes]
    L += ["## Which model degrades least", ""]
    tab, text = summary(rows, models, splits)
    L += tab + [""] + text + [""]
    for sp in info["splits"]:
        L += [f"## {sp.name} ({sp.task}; pairs: {', '.join(p.stem for p in sp.pairs)})", ""]
        L += clean_table(rows, models, sp.name, cfg.metrics) + [""]
        L += change_table(rows, models, sp.name)[0] + [""]
    if info["sheets"]:
        L += ["## Contact sheets", "",
              "Clean sources, degraded sources (the n = 3 compound), then for each model its fusion of the clean "
              "pair and of the degraded pair (enlarged with nearest-neighbour sampling where the pair is small).", ""]
        for caption, path in info["sheets"]:
            rel = path.relative_to(cfg.out)
            L += [f"**{caption}**", "", f"![{caption}]({rel.as_posix()})", ""]
    return "\n".join(L).rstrip() + "\n"


def build_report(cfg: RobustnessConfig) -> Path:
    """Run and write ``out/robustness.md``, ``out/robustness/robustness.csv`` and the sheets."""
    if cfg.pairs < 1 or cfg.max_side < 16:
        raise ConfigError("pairs must be >= 1 and max_side >= 16")
    date, mach = today(), machine()
    rows, info = run(cfg)
    write_csv(cfg.out / SUBDIR / "robustness.csv", rows)
    path = cfg.out / "robustness.md"
    atomic_write_text(path, document(cfg, rows, info, date, mach))
    return path
