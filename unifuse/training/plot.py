"""Training curves as PNG files, drawn with PIL only (no matplotlib dependency).

:func:`line_plot` is a small line-chart helper (axes, "nice" ticks, grid, legend, optional
log-scale y); :func:`plot_training` turns a run folder's CSV logs into

* ``losses.png``    — per-task losses (the values the trainer logs; with ``smooth`` a trailing
  moving average drawn over the faint raw curves),
* ``weights.png``   — per-task weights (FAMO ``softmax(ξ)``, or 1/T for ``mean``),
* ``conflicts.png`` — pairwise angles between task gradients (degrees), and
* ``gradnorms.png`` — per-task gradient norms,

skipping a figure whose data are absent.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .logging import prefixed_columns, read_columns

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

Series = Tuple[Sequence[float], Sequence[float]]
SS = 3  # supersampling factor of the data lines


def nice_ticks(lo: float, hi: float, target: int = 6) -> List[float]:
    """Round tick positions (1, 2, 2.5 or 5 × 10^k steps) covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, target)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    k = 0
    while start + k * step <= hi + step * 1e-9:
        ticks.append(round(start + k * step, 12))
        k += 1
    return [t for t in ticks if t >= lo - step * 1e-9]


def _log_ticks(lo: float, hi: float) -> List[float]:
    """log10 positions of 1×, (2×, 5×) 10^k ticks inside ``[lo, hi]`` (log10 units)."""
    for mults in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        t = [math.log10(m) + k for k in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in mults]
        t = [v for v in t if lo <= v <= hi]
        if len(t) >= 3:
            return t
    return nice_ticks(lo, hi)


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.1e}"
    return f"{v:.6g}"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def line_plot(
    series: Mapping[str, Series],
    path: str | os.PathLike,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: Tuple[int, int] = (900, 520),
    logy: bool = False,
    ylim: Optional[Tuple[float, float]] = None,
    hlines: Sequence[float] = (),
    yticks: Optional[Sequence[float]] = None,
    faint: Optional[Mapping[str, Series]] = None,
) -> Path:
    """Draw named ``(x, y)`` series as lines and save a PNG.

    Non-finite points (and, with ``logy``, non-positive ones) break a line. ``hlines``
    draws dashed horizontal reference lines (e.g. 90° in an angle plot); ``yticks``
    overrides the automatic linear y ticks. ``faint`` series (keyed like ``series``, e.g.
    the raw values under a moving average) are drawn first in a light tint of the same
    colour; they count for the axis range.
    """
    faint = dict(faint or {})
    W, H = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    f_small, f_title = _font(13), _font(16)
    left, right, top, bottom = 78, 20, 40 if title else 18, 58

    tr = (lambda v: math.log10(v)) if logy else (lambda v: v)
    ok = (lambda v: math.isfinite(v) and v > 0) if logy else math.isfinite
    every = list(series.values()) + list(faint.values())
    pts = [(float(x), tr(float(y))) for s in every for x, y in zip(*s) if math.isfinite(float(x)) and ok(float(y))]
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if ylim is not None:
        y0, y1 = (tr(ylim[0]), tr(ylim[1]))
    else:
        y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if x1 <= x0:
        x1 = x0 + 1.0
    if y1 <= y0:
        pad = abs(y0) * 0.05 or 0.5
        y0, y1 = y0 - pad, y1 + pad
    else:
        pad = 0.04 * (y1 - y0)
        y0, y1 = (y0 if ylim else y0 - pad), (y1 if ylim else y1 + pad)

    pw, ph = W - left - right, H - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1.0 - (y - y0) / (y1 - y0)) * ph

    # grid, ticks and labels
    for t in nice_ticks(x0, x1):
        X = px(t)
        d.line([(X, top), (X, top + ph)], fill="#e6e6e6")
        d.line([(X, top + ph), (X, top + ph + 5)], fill="black")
        lab = _fmt_tick(t)
        d.text((X - d.textlength(lab, font=f_small) / 2, top + ph + 8), lab, fill="black", font=f_small)
    if logy:
        yt = _log_ticks(y0, y1)
        ylabs = [_fmt_tick(10**t) for t in yt]
    elif yticks is not None:
        yt = [float(t) for t in yticks if y0 <= t <= y1]
        ylabs = [_fmt_tick(t) for t in yt]
    else:
        yt = nice_ticks(y0, y1)
        ylabs = [_fmt_tick(t) for t in yt]
    for t, lab in zip(yt, ylabs):
        Y = py(t)
        d.line([(left, Y), (left + pw, Y)], fill="#e6e6e6")
        d.line([(left - 5, Y), (left, Y)], fill="black")
        d.text((left - 8 - d.textlength(lab, font=f_small), Y - 7), lab, fill="black", font=f_small)
    for hv in hlines:
        if ok(hv) and y0 <= tr(hv) <= y1:
            Y = py(tr(hv))
            for xs_ in range(int(left), int(left + pw), 12):
                d.line([(xs_, Y), (min(xs_ + 6, left + pw), Y)], fill="#888888")
    d.rectangle([left, top, left + pw, top + ph], outline="black")

    # data: drawn at SS× resolution on a transparent layer and downsampled (anti-aliased lines)
    layer = Image.new("RGBA", (W * SS, H * SS), (255, 255, 255, 0))
    dl = ImageDraw.Draw(layer)
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    layers = [(faint[n], _tint(colours.get(n, "#7f7f7f"))) for n in faint] + [(series[n], colours[n]) for n in series]
    for data, colour in layers:
        seg: List[Tuple[float, float]] = []
        # split into runs of valid points, in the original order
        for x, y in zip(*data):
            x, y = float(x), float(y)
            if math.isfinite(x) and ok(y):
                seg.append((px(x) * SS, py(min(max(tr(y), y0), y1)) * SS))
            else:
                _draw_seg(dl, seg, colour)
                seg = []
        _draw_seg(dl, seg, colour)
    img.paste(layer.resize((W, H), Image.Resampling.LANCZOS), (0, 0), layer.resize((W, H), Image.Resampling.LANCZOS))
    d = ImageDraw.Draw(img)

    # title, axis labels, legend
    if title:
        d.text(((W - d.textlength(title, font=f_title)) / 2, 10), title, fill="black", font=f_title)
    if xlabel:
        d.text((left + (pw - d.textlength(xlabel, font=f_small)) / 2, H - 22), xlabel, fill="black", font=f_small)
    if ylabel:
        lab = Image.new("RGBA", (int(d.textlength(ylabel, font=f_small)) + 4, 18), (255, 255, 255, 0))
        ImageDraw.Draw(lab).text((2, 1), ylabel, fill="black", font=f_small)
        lab = lab.rotate(90, expand=True)
        img.paste(lab, (6, int(top + (ph - lab.size[1]) / 2)), lab)
    names = list(series)
    if names:
        lw = max(d.textlength(n, font=f_small) for n in names) + 40
        lh = 18 * len(names) + 8
        lx, ly = left + pw - lw - 8, top + 8
        d.rectangle([lx, ly, lx + lw, ly + lh], fill="white", outline="#999999")
        for i, n in enumerate(names):
            yy = ly + 6 + 18 * i + 7
            d.line([(lx + 6, yy), (lx + 28, yy)], fill=PALETTE[i % len(PALETTE)], width=3)
            d.text((lx + 34, yy - 7), n, fill="black", font=f_small)

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, out)
    return out


def _draw_seg(d: ImageDraw.ImageDraw, seg: List[Tuple[float, float]], colour: str) -> None:
    """A polyline (or a dot for a single point) on the supersampled layer."""
    r = 2 * SS
    if len(seg) == 1:
        x, y = seg[0]
        d.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    elif len(seg) > 1:
        d.line(seg, fill=colour, width=2 * SS, joint="curve")


def _tint(colour: str, amount: float = 0.7) -> str:
    """``colour`` (``#rrggbb``) mixed with ``amount`` of white."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def moving_average(y: Sequence[float], window: int) -> List[float]:
    """Trailing mean over the last ``window`` values, ignoring non-finite ones (NaN where a
    window holds none); the first values average over what exists so far."""
    v = np.asarray(y, dtype=np.float64)
    good = np.isfinite(v)
    csum = np.concatenate([[0.0], np.cumsum(np.where(good, v, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(good)])
    hi = np.arange(1, v.size + 1)
    lo = np.maximum(hi - window, 0)
    n = ccnt[hi] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (csum[hi] - csum[lo]) / n, np.nan).tolist()


def auto_smooth(n_points: int) -> int:
    """Default moving-average window for ``n_points`` logged iterations: about 1/50 of the
    run, and none below 5 (short runs are shown raw)."""
    w = n_points // 50
    return w if w >= 5 else 0


def _prefixed(cols: Dict[str, List[float]], prefix: str) -> Dict[str, Series]:
    steps = cols.get("step", [])
    return {name: (steps, v) for name, v in prefixed_columns(cols, prefix).items()}


def plot_training(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, smooth: Optional[int] = None) -> List[Path]:
    """Write the training figures of ``run_dir`` (see module doc); returns the PNG paths.

    ``smooth``: moving-average window (iterations) of the loss curves; ``None`` picks one
    with :func:`auto_smooth`, ``0`` or ``1`` draws the raw losses only.
    """
    if smooth is not None and smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth}")
    run = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run / "plots"
    written: List[Path] = []
    train_csv, conf_csv = run / "train_log.csv", run / "conflicts.csv"
    if train_csv.is_file():
        cols = read_columns(train_csv)
        losses = _prefixed(cols, "loss_")
        if losses:
            positive = all(y > 0 for _, ys in losses.values() for y in ys if math.isfinite(y))
            window = auto_smooth(len(cols.get("step", []))) if smooth is None else smooth
            if window > 1:
                mean = {k: (x, moving_average(y, window)) for k, (x, y) in losses.items()}
                written.append(line_plot(mean, out / "losses.png", f"Per-task training loss (mean of the last {window} iterations; raw: light)",
                                         "iteration", "loss", logy=positive, faint=losses))
            else:
                written.append(line_plot(losses, out / "losses.png", "Per-task training loss", "iteration", "loss", logy=positive))
        weights = _prefixed(cols, "weight_")
        if weights:
            written.append(line_plot(weights, out / "weights.png", "Task weights", "iteration", "weight", hlines=(1.0 / len(weights),)))
    if conf_csv.is_file():
        cols = read_columns(conf_csv)
        angles = _prefixed(cols, "angle_")
        if angles:
            written.append(
                line_plot(angles, out / "conflicts.png", "Angle between task gradients", "iteration", "degrees", ylim=(0.0, 180.0), hlines=(90.0,),
                          yticks=range(0, 181, 30))
            )
        norms = _prefixed(cols, "gradnorm_")
        if norms:
            written.append(line_plot(norms, out / "gradnorms.png", "Per-task gradient norm (shared parameters)", "iteration", "||g||", logy=True))
    return written
