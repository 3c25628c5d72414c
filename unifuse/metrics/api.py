"""User-facing evaluation API: input conversion, :func:`evaluate`, :func:`evaluate_batch`.

``evaluate(fused, a, b)`` scores one fused image against its two sources; inputs may be file
paths, numpy arrays (uint8, uint16 or float), PIL images or torch tensors. Values are brought
to the MATLAB convention of the reference toolboxes: 0..255 integers held in float64
(``double(imread(...))``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..backend import cpu_tuned
from ..errors import ConfigError, ImageReadError, InputMismatchError
from .base import MODES, Metric, check_triple
from .functional.matlab import round_half_away
from ..parallel import parallel_map, parallel_scope
from .functional.shared import shared_cache
from .registry import create, default_metrics

Tensor = torch.Tensor
ImageLike = Union[str, os.PathLike, np.ndarray, "PIL.Image.Image", Tensor]  # noqa: F821
MetricsArg = Union[None, str, Metric, Sequence[Union[str, Metric]], Mapping[str, Mapping[str, Any]]]


# --------------------------------------------------------------------------- input conversion
def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read an image file as ``(H, W)`` or ``(H, W, 3)`` numpy array (uint8 or uint16).

    Palette/alpha/CMYK images are converted to RGB. Raises :class:`ImageReadError`.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"{p}: no such image file")
    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("L", "RGB"):
                arr = np.asarray(im)
            elif im.mode in ("I;16", "I;16B", "I;16L"):
                arr = np.asarray(im).astype(np.uint16)
            elif im.mode in ("1", "LA"):
                arr = np.asarray(im.convert("L"))
            else:
                arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageReadError(f"{p}: cannot read image ({exc.__class__.__name__}: {exc})") from None
    return arr


def to_tensor(x: ImageLike, data_range: Optional[float] = None, quantize: bool = True, name: str = "image") -> Tensor:
    """Convert one image to a ``(C, H, W)`` float64 tensor with values 0..255 (C in {1, 3}).

    * paths are read with PIL; numpy arrays are ``(H, W)`` or ``(H, W, C)``; tensors are
      ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)``; a 4th (alpha) channel is dropped.
    * uint8 is used as is; uint16 is scaled by 255/65535; float/other input is scaled by
      ``255 / data_range`` where ``data_range=None`` means 1.0 if ``max <= 1`` else 255.
    * ``quantize`` (default): round half away from zero and clamp to [0, 255], i.e. the
      uint8 image the MATLAB toolboxes read. Histogram metrics (EN, CE, MI, ...) need it.
    """
    label = name
    if isinstance(x, (str, os.PathLike)):
        label = str(x)
        x = read_image(x)
    if not isinstance(x, (np.ndarray, Tensor)):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None
        if Image is not None and isinstance(x, Image.Image):
            im = x if x.mode in ("L", "RGB") else x.convert("RGB")
            x = np.asarray(im)
        else:
            raise ConfigError(f"{label}: unsupported image type {type(x).__name__}")
    if isinstance(x, np.ndarray):
        is_u8, is_u16 = x.dtype == np.uint8, x.dtype == np.uint16
        if x.dtype == bool:
            x = x.astype(np.uint8) * 255
            is_u8 = True
        if x.ndim == 3 and x.shape[-1] in (1, 3, 4):  # HWC (numpy convention); else taken as CHW
            x = np.moveaxis(x, -1, 0)
        t = torch.from_numpy(np.ascontiguousarray(x).astype(np.float64))
    else:
        is_u8, is_u16 = x.dtype == torch.uint8, False
        t = x.detach().to(torch.float64)
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise InputMismatchError(f"{label}: expected one image, got a batch of {t.shape[0]} (use evaluate_batch)")
            t = t[0]
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise InputMismatchError(f"{label}: expected a gray or RGB image, got shape {tuple(t.shape)}")
    if t.shape[0] == 4:
        t = t[:3]
    if is_u8:
        scale = 1.0
    elif is_u16:
        scale = 255.0 / 65535.0
    else:
        if data_range is None:
            data_range = 1.0 if float(t.max()) <= 1.0 else 255.0
        scale = 255.0 / float(data_range)
    if scale != 1.0:
        t = t * scale
    if quantize and not is_u8:
        t = round_half_away(t).clamp_(0.0, 255.0)
    return t


# --------------------------------------------------------------------------- metric selection
def resolve_metrics(metrics: MetricsArg = None) -> List[Metric]:
    """Turn the ``metrics`` argument into :class:`Metric` objects.

    ``None``: the default suite; a name or list of names/``Metric`` objects; or a mapping
    ``{name: {option: value}}``. Raises :class:`ConfigError` for unknown names/options.
    """
    if metrics is None:
        metrics = default_metrics()
    if isinstance(metrics, (str, Metric)):
        metrics = [metrics]
    if isinstance(metrics, Mapping):
        return [create(k, **dict(v or {})) for k, v in metrics.items()]
    out = []
    for m in metrics:
        out.append(m if isinstance(m, Metric) else create(str(m)))
    return out


def _metric_key(m: Metric, all_metrics: Sequence[Metric]) -> str:
    """Result key: the name, plus the non-default options when the same name occurs twice."""
    same = [x for x in all_metrics if x.name == m.name]
    if len(same) == 1:
        return m.name
    diff = [f"{k}={v}" for k, v in m.options.items() if k not in m.spec.preset and v != m.spec.option(k).default]
    return m.name + (f"[{','.join(diff)}]" if diff else "")


# --------------------------------------------------------------------------- evaluation
def evaluate_batch(
    fused: Tensor,
    a: Tensor,
    b: Tensor,
    metrics: MetricsArg = None,
    mode: str = "native",
    workers: Optional[int] = None,
) -> Dict[str, Tensor]:
    """Score a batch of triples at once (CPU or GPU).

    Args:
        fused, a, b: tensors ``(N, C, H, W)`` or ``(N, H, W)`` with values 0..255 (C in
            {1, 3}; channel counts may differ between the three), all of the same ``H x W``.
        metrics: see :func:`resolve_metrics`.
        mode: 'native' (per-channel benchmarks convention), 'gray' (MATLAB rgb2gray first)
            or 'gray_cv2' (CDDFuse's cv2 conversion).
        workers: CPU threads (default ``torch.get_num_threads()``; 1 on other devices). The
            metrics, and the independent pieces inside the costly ones, run side by side on
            that many threads, each single-threaded (:mod:`unifuse.parallel`); values do
            not depend on it.
    Returns:
        ``{name: (N,) float64 tensor}`` on the input device.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    a, b, fused = check_triple(a, b, fused)
    ms = resolve_metrics(metrics)
    # intermediates common to several metrics (gray/channel views, normalised images, joint
    # histograms, local moments, VIF pyramids) are computed once for the whole call
    cpu = cpu_tuned(fused)
    with shared_cache(), parallel_scope(workers if workers is not None else (None if cpu else 1)):
        # slowest first, so that the last metrics to finish are short ones
        order = sorted(range(len(ms)), key=lambda i: -ms[i].spec.cost)
        values = parallel_map(lambda i: ms[i](a, b, fused, mode=mode), order, device=fused.device)
    res = dict(zip(order, values))
    return {_metric_key(m, ms): res[i] for i, m in enumerate(ms)}


def evaluate(
    fused: ImageLike,
    a: ImageLike,
    b: ImageLike,
    metrics: MetricsArg = None,
    mode: str = "native",
    data_range: Optional[float] = None,
    device: Union[str, torch.device, None] = None,
    workers: Optional[int] = None,
) -> Dict[str, float]:
    """Score one fused image against its two sources.

    Args:
        fused, a, b: file paths, numpy arrays, PIL images or tensors (see :func:`to_tensor`).
            ``a, b`` are passed to the metric cores in this order (VIFB calls
            ``(visible, infrared, fused)``; all metrics are symmetric in the sources up to ties).
        metrics: ``None`` (default suite), names, :class:`Metric` objects or
            ``{name: {option: value}}``, e.g. ``{"psnr": {"convention": "standard"}}``.
        mode: 'native' (RGB per-channel mean, as VIFB/MEFB), 'gray' (MATLAB ``rgb2gray``
            first) or 'gray_cv2' (CDDFuse's conversion).
        data_range: range of float inputs (``None``: 1.0 if max <= 1 else 255).
        device: where to compute (default CPU).
        workers: CPU threads (see :func:`evaluate_batch`; default ``torch.get_num_threads()``).
    Returns:
        ``{metric name: float}``.
    Raises:
        ImageReadError, InputMismatchError (sizes differ), ConfigError (unknown metric/option).
    """
    names = [str(x) if isinstance(x, (str, os.PathLike)) else n for x, n in ((fused, "fused"), (a, "source A"), (b, "source B"))]
    tf, ta, tb = (to_tensor(x, data_range=data_range, name=n) for x, n in zip((fused, a, b), names))
    sizes = [tuple(t.shape[-2:]) for t in (tf, ta, tb)]
    if len(set(sizes)) != 1:
        desc = ", ".join(f"{n} {s[0]}x{s[1]}" for n, s in zip(names, sizes))
        raise InputMismatchError(f"image sizes differ (H x W): {desc}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    res = evaluate_batch(tf[None].to(dev), ta[None].to(dev), tb[None].to(dev), metrics=metrics, mode=mode, workers=workers)
    return {k: float(v[0]) for k, v in res.items()}


__all__ = ["read_image", "to_tensor", "resolve_metrics", "evaluate", "evaluate_batch"]
