"""Fusion of stacks of two or more sources, with optional registration to a reference frame.

>>> import unifuse
>>> img = unifuse.fuse(["under.jpg", "mid.jpg", "over.jpg"], model="mertens")
>>> img = unifuse.fuse(["f1.png", "f2.png", "f3.png"], model="tita", align="homography")

Pipeline (:meth:`StackFuser.fuse_arrays`):

1. **load** every source compactly (:mod:`.frames`: at its bit depth, mixed depths raised to
   the highest; at least two sources);
2. **reference** (``reference=None``, the default rule): when the frames' mean lumas span more
   than :data:`EXPOSURE_SPREAD` (an exposure bracket), the frame of middle exposure
   (``sorted_by_mean_luma[K // 2]``, K >= 3); otherwise (focal stacks, pairs) the first frame;
3. **align** (``align`` != ``"none"``, or ``transforms`` from a file): every frame is registered to
   the reference (:mod:`unifuse.align`; brackets frame by frame to the reference, other stacks
   through their neighbours, transforms composed: :func:`unifuse.align.register_frames`) and
   warped into its frame; the output has the
   reference's size; pixels a frame has no data for are filled from the reference frame.
   Without alignment all frames must have one size (or ``resize_to`` ``"a"``/``"b"``: the
   first / second frame's size);
4. **fuse**: training-free models that define an N-source rule fuse natively, frame by frame
   (:meth:`~unifuse.models.baselines.base.BaselineFusion.fuse_frames`); any other two-input
   model goes through the pairwise reduction of :mod:`.reduce`;
5. **colour**: the chroma rules over N sources (:mod:`unifuse.io.colour_stack`).

With two sources, no alignment and the default options the result equals the pair pipeline's
(:class:`unifuse.inference.fuse.Fuser`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..io import LoadedImage, rgb_to_luma
from ..io.colour_stack import ChromaAccumulator
from .frames import Frame, FrameStack, check_sizes, load_frames
from .fuse import Fuser, _resize, convert_output
from .reduce import DEFAULT_ORDER, DEFAULT_REDUCTION, EXPOSURE_SPREAD, check_reduction, focus_measure, order_sources, reduce_pairwise

__all__ = ["StackOptions", "StackResult", "StackFuser", "fuse_stack", "EXPOSURE_SPREAD", "choose_reference"]

ALIGN_CHOICES = ("none", "translation", "euclidean", "affine", "homography")


@dataclass
class StackOptions:
    """Stack-specific options.

    Attributes:
        align: ``"none"`` or a motion model (``translation``, ``euclidean``, ``affine``,
            ``homography``).
        reference: 0-based index of the reference frame; ``None``: the default rule (module doc).
        reduction, order: pairwise reduction for two-input models (:mod:`.reduce`).
        transforms: a transforms JSON file (or :class:`~unifuse.align.Registration`) to use
            instead of estimating them.
        registration: :class:`~unifuse.align.RegistrationConfig` (``None``: defaults).
    """

    align: str = "none"
    reference: int | None = None
    reduction: str = DEFAULT_REDUCTION
    order: str = DEFAULT_ORDER
    transforms: Any = None
    registration: Any = None

    def __post_init__(self) -> None:
        if self.align not in ALIGN_CHOICES:
            raise ConfigError(f"--align must be one of {', '.join(ALIGN_CHOICES)}, got {self.align!r}")
        if self.reference is not None and (not isinstance(self.reference, int) or self.reference < 0):
            raise ConfigError(f"reference must be a frame index >= 0, got {self.reference!r}")
        check_reduction(self.reduction, self.order)


@dataclass
class StackResult:
    """A fused stack: float32 ``data`` ``(H, W[, 3])`` in [0, 1] at ``bit_depth``, and what was done."""

    data: np.ndarray
    bit_depth: int
    reference: int
    order: list[int]
    method: str
    registration: Any = None
    notes: list[str] = field(default_factory=list)


def choose_reference(mean_luma: Sequence[float]) -> int:
    """Default reference: middle exposure of a bracket (K >= 3, span > EXPOSURE_SPREAD), else frame 0."""
    n = len(mean_luma)
    if n >= 3 and max(mean_luma) - min(mean_luma) > EXPOSURE_SPREAD:
        return sorted(range(n), key=lambda k: mean_luma[k])[n // 2]
    return 0


class _LazyFrames(Sequence):
    """Sequence view: item ``k`` = frame ``k`` as a ``(1, C, H, W)`` float32 tensor, made on demand."""

    def __init__(self, n: int, get: Callable[[int], torch.Tensor]):
        self.n, self.get = n, get

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k):  # type: ignore[override]
        if not 0 <= k < self.n:
            raise IndexError(k)
        return self.get(k)


class StackFuser:
    """Fuse stacks with a :class:`~unifuse.inference.fuse.Fuser`'s model and options.

    Args:
        fuser: the loaded model and the pair options (colour rule, tiling, resize).
        options: :class:`StackOptions` (or its fields as keywords).
    """

    def __init__(self, fuser: Fuser, options: StackOptions | None = None, **kwargs: Any):
        self.fuser = fuser
        self.options = options if options is not None else StackOptions(**kwargs)

    # ------------------------------------------------------------------ steps
    def _resize(self, stack: FrameStack) -> None:
        target = self.fuser.options.resize_to
        if target is None:
            return check_sizes(stack)
        idx = {"a": 0, "b": 1}[target]
        w, h = stack.frames[idx].size
        for f in stack.frames:
            if f.size != (w, h):
                img = _resize(LoadedImage(f.float(), f.bit_depth, f.name, f.is_gray), (h, w))
                f.data = img.data

    def _align(self, stack: FrameStack, ref: int, bracket: bool, progress: Callable[[str], None] | None):
        from ..align import Registration, FrameTransform, RegistrationConfig, load_transforms, register_frames
        from ..align import AlignmentError, warp_to_reference

        opts = self.options
        if opts.transforms is not None:
            reg = opts.transforms if isinstance(opts.transforms, Registration) else load_transforms(opts.transforms)
            where = "transforms" if isinstance(opts.transforms, Registration) else str(opts.transforms)
            reg.check_frames(stack.sizes(), where)
            if opts.reference is not None and opts.reference != reg.reference:
                raise ConfigError(f"{where}: made for reference frame {reg.reference + 1}, but reference "
                                  f"{opts.reference + 1} was asked for")
            ref = reg.reference
        else:
            cfg = opts.registration or RegistrationConfig()
            names = [f.name for f in stack.frames]
            try:
                found = register_frames(lambda k: stack.frames[k].luma(), len(stack), ref, opts.align, cfg,
                                        chain=not bracket, names=names, progress=progress)
            except AlignmentError as exc:
                raise AlignmentError(f"{exc}; sources of different modalities (e.g. infrared + visible) cannot be "
                                     f"aligned automatically: register them beforehand or pass --transforms FILE") from None
            frames = [FrameTransform(m, f.name, f.size, method, round(float(score), 6))
                      for f, (m, score, method) in zip(stack.frames, found)]
            reg = Registration(opts.align, ref, stack.frames[ref].size, frames)
        rf = stack.frames[ref]
        for k, (f, t) in enumerate(zip(stack.frames, reg.frames)):
            if k == ref:
                continue
            if f.data.dtype == rf.data.dtype:
                f.data = warp_to_reference(f.data, t.matrix, rf.data)
            else:  # in-memory float frame next to an integer one: warp in float
                f.data = warp_to_reference(f.float(), t.matrix, rf.float())
        return reg, ref

    # ------------------------------------------------------------------ main
    def fuse_arrays(self, sources: Sequence[Any], progress: Callable[[str], None] | None = None) -> StackResult:
        """Fuse ``K >= 2`` sources -> :class:`StackResult` (output in the reference frame, its size)."""
        opts, fuser = self.options, self.fuser
        stack = load_frames(sources)
        aligning = opts.align != "none" or opts.transforms is not None
        if not aligning:
            self._resize(stack)
        means, focus = [], []
        for f in stack.frames:  # one float luma alive at a time
            y = f.luma()
            means.append(float(y.mean()))
            focus.append(focus_measure(y) if opts.order in ("focus", "auto") else 0.0)
            del y
        ref = choose_reference(means) if opts.reference is None else opts.reference
        if ref >= len(stack):
            raise ConfigError(f"reference frame {ref + 1} does not exist (the stack has {len(stack)} frames)")
        reg = None
        if aligning:
            bracket = max(means) - min(means) > EXPOSURE_SPREAD
            reg, ref = self._align(stack, ref, bracket, progress)

        model = fuser.model
        mode = getattr(model, "input_mode", "luma")
        bits = stack.bit_depth
        to_t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
        if mode == "rgb":
            get = lambda k: to_t(_rgb_float(stack.frames[k])).permute(2, 0, 1)[None]  # noqa: E731
        else:
            get = lambda k: to_t(stack.frames[k].luma())[None, None]  # noqa: E731
        if hasattr(model, "fuse_frames"):
            order = list(range(len(stack)))
            method = "native"
            out = model.fuse_frames(_LazyFrames(len(stack), get))
        else:
            order = order_sources(means, focus, opts.order)
            method = f"{opts.reduction} reduction, {opts.order if len(stack) > 2 else 'input'} order"
            tick = (lambda: progress("pair fused")) if progress else None
            out = reduce_pairwise(get, order, fuser.run_model, opts.reduction, tick)
        out = out.float().clamp(0, 1)
        all_gray = all(f.is_gray for f in stack.frames)
        if mode == "rgb":
            data = out[0].permute(1, 2, 0).numpy()
            if fuser.options.color == "gray" or all_gray:
                data = rgb_to_luma(data, bits)
        else:
            acc = ChromaAccumulator("gray" if all_gray else fuser.options.color, bits)
            for f in stack.frames:
                acc.add(f.data if f.data.ndim == 3 else f.float())
            data = acc.restore(out[0, 0].numpy())
        return StackResult(np.ascontiguousarray(data, dtype=np.float32), bits, ref, order, method, reg, list(stack.notes))

    def __call__(self, sources: Sequence[Any], output: Literal["pil", "numpy", "tensor"] = "pil"):
        res = self.fuse_arrays(sources)
        return convert_output(res.data, res.bit_depth, output)


def _rgb_float(f: Frame) -> np.ndarray:
    x = f.float()
    return np.repeat(x[..., None], 3, axis=-1) if x.ndim == 2 else x


def fuse_stack(sources: Sequence[Any], model: str | torch.nn.Module = "tita", weights: Any = None, *,
               align: str = "none", reference: int | None = None, reduction: str = DEFAULT_REDUCTION,
               order: str = DEFAULT_ORDER, transforms: Any = None, save_transforms: str | Path | None = None,
               color: str = "weighted", tile: int | None = None, device: str = "cpu", precision: str = "fp32",
               resize_to: str | None = None, output: Literal["pil", "numpy", "tensor"] = "pil",
               model_options: dict[str, Any] | None = None):
    """Fuse two or more images (see the module doc for every step).

    Args:
        sources: paths, arrays, PIL images or tensors (as :func:`unifuse.fuse`), at least two.
        align: ``"none"``, ``"translation"``, ``"euclidean"``, ``"affine"`` or ``"homography"``.
        reference: 0-based reference frame index (``None``: middle exposure of a bracket, else the first).
        reduction, order: pairwise reduction of two-input networks (:mod:`unifuse.inference.reduce`).
        transforms: a transforms JSON file to apply instead of estimating; ``save_transforms``:
            write the estimated ones there.
        model_options: the model's forward options (e.g. ``{"task": "mef"}``), as :class:`Fuser`.
        Other arguments as :func:`unifuse.fuse`.
    Returns:
        The fused image in the reference frame, the reference's size.
    """
    fuser = Fuser(model, weights=weights, device=device, precision=precision, color=color, tile=tile, resize_to=resize_to,
                  model_options=model_options)
    res = StackFuser(fuser, align=align, reference=reference, reduction=reduction, order=order,
                     transforms=transforms).fuse_arrays(list(sources))
    if save_transforms is not None:
        if res.registration is None:
            raise ConfigError("save_transforms needs align= (nothing was estimated)")
        from ..align import save_transforms as _save

        _save(save_transforms, res.registration)
    return convert_output(res.data, res.bit_depth, output)
