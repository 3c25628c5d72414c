"""Metric objects: a registered 2-D core plus the colour-handling wrapper of the benchmarks.

A *core* is a pure function ``core(a, b, f, **options) -> (N,)`` on float64 tensors
``(N, H, W)`` holding 0..255 values (MATLAB ``double(uint8)``), in the MATLAB call order
(source 1, source 2, fused). :class:`Metric` applies it to batches of images with 1 or 3
channels following one of the reference conventions:

``mode='native'`` (every number VIFB and MEFB published): RGB images are **not** converted
to gray; the core runs on each channel and the results are averaged. Wrapper kinds:

* ``'vifb'``: per-channel mean. A gray source next to an RGB fused image is reused for every
  channel (= replicated); a gray fused image with RGB sources converts the sources with
  MATLAB's uint8 ``rgb2gray``.
* ``'mefb'``: as ``'vifb'``, except that when **both** sources are gray and the fused image
  is RGB, the fused image is replaced by its first (R) channel (MEFB's wrapper).
* ``'side_by_side'``: the channels are placed side by side (``(H, C*W)`` image) and the core
  runs once: VIFB's ``Spatial_frequency`` quirk (``[m, n] = size(F)`` on an RGB array).
* ``'gray'``: RGB inputs are always converted with ``rgb2gray`` first (MEFB's MEF-SSIM).

``mode='gray'``: every RGB input is converted with MATLAB's uint8 ``rgb2gray`` first and the
core runs once. ``mode='gray_cv2'``: the conversion of CDDFuse's ``test_IVF.py``
(``cv2.cvtColor(BGR2GRAY)`` on float32, weights 0.299/0.587/0.114, then ``np.round``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch

from ..backend import cpu_tuned
from ..errors import ConfigError, InputMismatchError
from .functional import matlab as ml
from ..parallel import parallel_scope
from .functional.shared import memo

Tensor = torch.Tensor

MODES = ("native", "gray", "gray_cv2")
WRAPPERS = ("vifb", "mefb", "side_by_side", "gray")


@dataclass(frozen=True)
class Option:
    """One user option of a metric (validated by :class:`Metric`)."""

    name: str
    default: Any
    choices: Optional[Tuple[Any, ...]] = None
    description: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """Everything the registry knows about a metric.

    Attributes:
        name: lowercase registry name.
        core: ``core(a, b, f, **options) -> (N,)`` on ``(N, H, W)`` float64 0..255 tensors.
        higher_is_better: direction (``None`` when not meaningful).
        value_range: theoretical ``(low, high)``; ``float('inf')`` for unbounded.
        description: one line.
        wrapper: a wrapper kind (see module docstring) or a callable ``options -> kind``.
        options: supported options with defaults (e.g. ``convention``).
        references: where the definition comes from and which reference file/column it was
            verified against.
        fused_only: the metric uses the fused image only (EN, SD, SF, AG, EI).
        default: part of the default suite of :func:`unifuse.metrics.evaluate`.
        preset: fixed options (aliases such as ``fmi_pixel`` = ``fmi`` with ``feature='pixel'``).
        cost: relative run time (about ms for one 630x460 RGB triple on one CPU thread, not
            counting intermediates shared with a costlier metric): a scheduling hint only, so
            that :func:`unifuse.metrics.evaluate_batch` starts the slowest metrics first when
            they run side by side (and a metric reusing another's intermediates later).
    """

    name: str
    core: Callable[..., Tensor]
    higher_is_better: Optional[bool]
    value_range: Tuple[float, float]
    description: str
    wrapper: Union[str, Callable[[Dict[str, Any]], str]] = "vifb"
    options: Tuple[Option, ...] = ()
    references: Tuple[str, ...] = ()
    fused_only: bool = False
    default: bool = True
    preset: Dict[str, Any] = field(default_factory=dict)
    cost: float = 50.0

    def option(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(name)


# --------------------------------------------------------------------------- gray conversions
def rgb2gray_cv2(x: Tensor) -> Tensor:
    """CDDFuse's gray conversion: ``cv2.cvtColor(BGR2GRAY)`` on float32 then ``np.round``
    (half to even). ``(..., 3, H, W)`` RGB -> ``(..., H, W)`` float64."""
    r, g, b = x.to(torch.float32).unbind(-3)
    y = b * 0.114 + g * 0.587 + r * 0.299
    return torch.round(y).to(torch.float64)


def to_gray(x: Tensor, mode: str = "gray") -> Tensor:
    """``(N, C, H, W)`` -> ``(N, H, W)``: C == 1 squeezed, C == 3 converted (MATLAB uint8
    ``rgb2gray`` for ``mode='gray'``, cv2 for ``'gray_cv2'``)."""
    if x.shape[1] == 1:
        return x[:, 0]
    if x.shape[1] != 3:
        raise InputMismatchError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return rgb2gray_cv2(x) if mode == "gray_cv2" else ml.rgb2gray_uint8(x)


def _as_nchw(x: Tensor, what: str) -> Tensor:
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputMismatchError(
            f"{what}: expected (N, H, W) or (N, C, H, W) with C in (1, 3), got shape {tuple(x.shape)}"
        )
    return x.to(torch.float64)


def check_triple(a: Tensor, b: Tensor, f: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Normalise a batch triple to ``(N, C, H, W)`` float64 and check that sizes agree."""
    a, b, f = _as_nchw(a, "source A"), _as_nchw(b, "source B"), _as_nchw(f, "fused")
    if not (a.shape[0] == b.shape[0] == f.shape[0]):
        raise InputMismatchError(f"batch sizes differ: A {a.shape[0]}, B {b.shape[0]}, fused {f.shape[0]}")
    if not (a.shape[-2:] == b.shape[-2:] == f.shape[-2:]):
        raise InputMismatchError(
            "image sizes differ: A {}x{}, B {}x{}, fused {}x{} (H x W)".format(*a.shape[-2:], *b.shape[-2:], *f.shape[-2:])
        )
    return a, b, f


# --------------------------------------------------------------------------- wrappers
def apply_wrapper(core: Callable[[Tensor, Tensor, Tensor], Tensor], a: Tensor, b: Tensor, f: Tensor,
                  wrapper: str = "vifb", mode: str = "native") -> Tensor:
    """Run ``core`` on a checked ``(N, C, H, W)`` triple following the reference convention.

    Returns ``(N,)`` float64.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if wrapper not in WRAPPERS:
        raise ConfigError(f"unknown wrapper {wrapper!r}; use one of {', '.join(WRAPPERS)}")
    if mode != "native" or wrapper == "gray":
        gmode = mode if mode != "native" else "gray"
        return core(_gray(a, gmode), _gray(b, gmode), _gray(f, gmode))
    ca, cb, cf = a.shape[1], b.shape[1], f.shape[1]
    if cf == 3 and ca == 1 and cb == 1 and wrapper == "mefb":
        # MEFB: RGB fused with two gray sources -> its R channel
        return core(_gray(a), _gray(b), memo("channel", (f,), 0, lambda: f[:, 0]))
    if cf == 1:
        return core(_gray(a), _gray(b), f[:, 0])
    # RGB fused: gray sources are reused for every channel
    n, c, h, w = f.shape
    if wrapper == "side_by_side":
        side = lambda t: memo(  # noqa: E731  (R|G|B)
            "side_by_side", (t,), None, lambda: t.expand(-1, 3, -1, -1).permute(0, 2, 1, 3).reshape(n, h, c * w))
        return core(side(a), side(b), side(f))
    # one core call over N*3 images, then the channel mean
    flat = lambda t: memo("channels", (t,), None, lambda: t.expand(-1, 3, -1, -1).reshape(n * c, h, w))  # noqa: E731
    return core(flat(a), flat(b), flat(f)).reshape(n, c).mean(dim=1)


def _gray(x: Tensor, mode: str = "gray") -> Tensor:
    """:func:`to_gray`, computed once per input and mode inside a shared-cache scope."""
    return memo("to_gray", (x,), mode, lambda: to_gray(x, mode))


# --------------------------------------------------------------------------- metric object
class Metric:
    """A configured metric: ``metric(a, b, f, mode='native') -> (N,)`` tensor.

    ``a``, ``b``, ``f``: tensors ``(N, C, H, W)``, ``(N, H, W)`` or ``(H, W)`` with values
    0..255 (any float dtype, CPU or CUDA; C in {1, 3}). Use :func:`unifuse.metrics.evaluate`
    for files, arrays and PIL images.
    """

    def __init__(self, spec: MetricSpec, **options: Any):
        self.spec = spec
        known = {o.name: o for o in spec.options}
        for k in options:
            if k not in known:
                avail = ", ".join(known) or "none"
                raise ConfigError(f"metric {spec.name!r} has no option {k!r} (options: {avail})")
        opts = {o.name: o.default for o in spec.options}
        opts.update(options)
        for k, v in opts.items():
            ch = known[k].choices
            if ch is not None and v not in ch:
                raise ConfigError(f"metric {spec.name!r}: {k}={v!r} is not one of {', '.join(map(repr, ch))}")
        opts.update(spec.preset)
        self.options: Dict[str, Any] = opts

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def higher_is_better(self) -> Optional[bool]:
        return self.spec.higher_is_better

    @property
    def wrapper(self) -> str:
        w = self.spec.wrapper
        return w(self.options) if callable(w) else w

    def core(self, a: Tensor, b: Tensor, f: Tensor) -> Tensor:
        """The 2-D core with this metric's options: ``(N, H, W)`` x3 -> ``(N,)``."""
        return self.spec.core(a, b, f, **{k: v for k, v in self.options.items()})

    def __call__(self, a: Tensor, b: Tensor, f: Tensor, mode: str = "native") -> Tensor:
        a, b, f = check_triple(torch.as_tensor(a), torch.as_tensor(b), torch.as_tensor(f))
        # on the CPU the independent pieces inside a metric run side by side on
        # torch.get_num_threads() threads, each operation single-threaded (see unifuse.parallel)
        with parallel_scope(None if cpu_tuned(f) else 1):
            return apply_wrapper(self.core, a, b, f, wrapper=self.wrapper, mode=mode)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items() if k not in self.spec.preset)
        return f"Metric({self.name}{', ' + opts if opts else ''})"


__all__ = ["Option", "MetricSpec", "Metric", "apply_wrapper", "check_triple", "to_gray", "rgb2gray_cv2", "MODES", "WRAPPERS"]
