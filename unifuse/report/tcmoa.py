"""TC-MoA pictures (PIL only): per-module prompt heat maps and per-task adapter-usage histograms.

``write_tcmoa_maps(net, a, b, out_dir)`` writes ``prompts_<task>_<module>_<x|y>.png`` heat
maps, ``adapters_<module>.png`` bar charts (one group of bars per task router) and an
``index.html`` that shows them, and returns the written paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..models.tcmoa.analysis import adapter_usage, prompt_maps
from ..training.plot import PALETTE, _font, nice_ticks
from .html import Figure, Section, write_html_report

TASK_NAMES = {"0": "IVF router", "1": "MEF router", "2": "MFF router"}
# perceptually ordered dark-blue -> teal -> yellow ramp (viridis anchors)
_ANCHORS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def colourise(m: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """``(H, W)`` values -> ``(H, W, 3)`` uint8 with a viridis-like ramp over ``[vmin, vmax]``."""
    t = np.clip((np.asarray(m, dtype=np.float64) - vmin) / max(vmax - vmin, 1e-12), 0, 1) * (len(_ANCHORS) - 1)
    pos = np.arange(len(_ANCHORS))
    rgb = np.stack([np.interp(t, pos, _ANCHORS[:, c]) for c in range(3)], axis=-1)
    return np.round(rgb).astype(np.uint8)


def heatmap_png(m: np.ndarray, path: str | os.PathLike, vmin: float = 0.0, vmax: float = 1.0, min_side: int = 224) -> Path:
    """Save a heat map, enlarged with nearest neighbours so its short side is at least ``min_side``."""
    img = Image.fromarray(colourise(m, vmin, vmax))
    k = max(1, -(-min_side // max(1, min(m.shape))))
    img = img.resize((m.shape[1] * k, m.shape[0] * k), Image.NEAREST)
    path = Path(path)
    img.save(path)
    return path


def bar_chart_png(groups: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str = "",
                  ylabel: str = "", labels: Sequence[str] | None = None, size: tuple[int, int] = (640, 380)) -> Path:
    """Grouped bars: one group per key of ``groups`` (e.g. task), one coloured bar per entry (adapter)."""
    W, H = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    f, ft = _font(13), _font(16)
    left, right, top, bottom = 70, 20, 40 if title else 18, 70
    vmax = max([max(v) for v in groups.values() if len(v)] + [1e-12])
    ticks = nice_ticks(0.0, vmax)
    ymax = max(ticks[-1] if ticks else vmax, vmax)
    py = lambda v: top + (H - top - bottom) * (1 - v / ymax)  # noqa: E731
    for t in ticks:
        d.line([(left, py(t)), (W - right, py(t))], fill="#e5e5e5")
        d.text((left - 6, py(t)), f"{t:g}", fill="#333", font=f, anchor="rm")
    d.line([(left, top), (left, H - bottom), (W - right, H - bottom)], fill="#333")
    n_groups = max(1, len(groups))
    gw = (W - left - right) / n_groups
    for gi, (name, vals) in enumerate(groups.items()):
        n = max(1, len(vals))
        bw = gw * 0.8 / n
        x0 = left + gi * gw + gw * 0.1
        for i, v in enumerate(vals):
            d.rectangle([x0 + i * bw, py(v), x0 + (i + 1) * bw - 2, H - bottom], fill=PALETTE[i % len(PALETTE)])
        d.text((left + (gi + 0.5) * gw, H - bottom + 8), str(name), fill="#222", font=f, anchor="mt")
    if labels:
        for i, lab in enumerate(labels):
            x = left + 10 + i * 110
            d.rectangle([x, H - 24, x + 12, H - 12], fill=PALETTE[i % len(PALETTE)])
            d.text((x + 18, H - 18), lab, fill="#222", font=f, anchor="lm")
    if title:
        d.text((W / 2, 12), title, fill="#111", font=ft, anchor="mt")
    if ylabel:
        d.text((8, top - 14), ylabel, fill="#333", font=f)
    path = Path(path)
    img.save(path)
    return path


def write_tcmoa_maps(net, a: torch.Tensor, b: torch.Tensor, out_dir: str | os.PathLike, task: Any = "ivf",
                     control=None, tasks: Sequence[Any] = (0, 1, 2)) -> list[Path]:
    """Prompt heat maps of ``task`` and adapter-usage histograms of every router in ``tasks``.

    ``a``, ``b``: ``(1, 3|1, H, W)`` in ``[0, 1]``, sides multiples of ``net.config.unit``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with torch.no_grad():
        out = net.forward_features(net.normalize(a.float()), net.normalize(b.float()), task, control)
    tag = str(task).replace(",", "-").replace(" ", "")
    figs = []
    for key, m in prompt_maps(out).items():
        name = f"prompts_{tag}_{key.replace('/', '_')}.png"
        arr = m[0].cpu().numpy()
        lo, hi = float(arr.min()), float(arr.max())
        written.append(heatmap_png(arr, out_dir / name, lo, hi if hi > lo else lo + 1e-6))
        mod, src = key.split("/")
        figs.append(Figure(name, f"{mod} p_{src}: {lo:.3f} (dark) to {hi:.3f} (yellow)"))
    usage = adapter_usage(net, a, b, tasks)
    modules = list(next(iter(usage.values())).keys()) if usage else []
    bars = []
    for mod in modules:
        groups = {TASK_NAMES.get(t, f"router {t}"): usage[t][mod]["share"] for t in usage}
        n = len(next(iter(groups.values())))
        name = f"adapters_{mod}.png"
        written.append(bar_chart_png(groups, out_dir / name, title=f"adapter usage, module {mod}",
                                     ylabel="share of gate mass", labels=[f"adapter {i}" for i in range(n)]))
        bars.append(Figure(name, f"module {mod}"))
    stats = out_dir / "adapter_usage.json"
    tmp = stats.with_name(stats.name + ".tmp")
    tmp.write_text(json.dumps(usage, indent=1))
    os.replace(tmp, stats)
    written.append(stats)
    written.append(write_html_report(
        out_dir / "index.html", "TC-MoA prompts and adapter usage",
        "Prompt maps: one value per token and source in (0, 1), each map stretched from its minimum (dark) to its "
        "maximum (yellow), the range in the caption; the network scales "
        "each source's features by its prompt before fusing. Adapter usage: the share of the gate mass each "
        "adapter receives from each task router on this pair.",
        [Section(f"Prompt maps, task {task}", figures=figs), Section("Adapter usage per task router", figures=bars)]))
    return written
