"""High-level fusion of two images: loading, luma/colour handling, tiling, output.

>>> import unifuse
>>> img = unifuse.fuse("ir.png", "vi.png", model="laplacian")     # PIL image
>>> arr = unifuse.fuse(a_array, b_array, output="numpy")           # float32 [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, InputMismatchError, UnifuseError
from ..io import CHROMA_RULES, LoadedImage, as_loaded_image, restore_colour, rgb_to_luma
from .tiling import TileSpec, tiled_forward

#: images with more pixels than this are tiled automatically (``tile=None``)
AUTO_TILE_PIXELS = 1024 * 1024
RESIZE_CHOICES = ("a", "b")


@dataclass
class FuseOptions:
    """Options of :class:`Fuser`.

    Attributes:
        color: chroma rule (``weighted``, ``from-a``, ``from-b``, ``gray``).
        tile: ``None`` (auto: tile images above :data:`AUTO_TILE_PIXELS` with 512-px
            tiles), ``0`` (never tile) or a tile size in pixels (>= 16).
        overlap: tile overlap in pixels.
        resize_to: ``None`` (sizes must match), ``"a"`` or ``"b"``: resize the other source
            (bicubic) to this one's size.
        progress: show a tile progress bar.
    """

    color: str = "weighted"
    tile: int | None = None
    overlap: int = 64
    resize_to: str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.color not in CHROMA_RULES:
            raise ConfigError(f"--color must be one of {', '.join(CHROMA_RULES)}, got {self.color!r}")
        if self.tile is not None and self.tile != 0 and self.tile < 16:
            raise ConfigError(f"--tile must be 0 (off) or >= 16 pixels, got {self.tile}")
        if self.resize_to not in (None, *RESIZE_CHOICES):
            raise ConfigError(f"--resize-to must be 'a' or 'b', got {self.resize_to!r}")
        if self.overlap < 0:
            raise ConfigError(f"tile overlap must be >= 0, got {self.overlap}")


def _resize(img: LoadedImage, size: tuple[int, int]) -> LoadedImage:
    t = torch.from_numpy(img.data)
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    t = torch.nn.functional.interpolate(t, size=size, mode="bicubic", align_corners=False).clamp_(0, 1)[0]
    data = t[0].numpy() if img.data.ndim == 2 else t.permute(1, 2, 0).numpy()
    return LoadedImage(data=np.ascontiguousarray(data), bit_depth=img.bit_depth, path=img.path, is_gray=img.is_gray)


def _luma(img: LoadedImage) -> np.ndarray:
    return img.data if img.data.ndim == 2 else rgb_to_luma(img.data, img.bit_depth)


def _rgb(img: LoadedImage) -> np.ndarray:
    return np.repeat(img.data[..., None], 3, axis=-1) if img.data.ndim == 2 else img.data


class Fuser:
    """A loaded model plus options; call it on pairs of images.

    Args:
        model: a registry name or a fusion ``nn.Module`` (see :mod:`unifuse.models`).
        weights: passed to :func:`unifuse.load_model` when ``model`` is a name.
        device, precision: as for :func:`unifuse.load_model`.
        model_options: keyword arguments of the model's ``forward`` beyond the two sources
            (e.g. ``{"task": "mef"}``); the model lists the ones it takes in its
            ``call_options`` attribute (a tuple of names) and any other name is refused.
        **options: :class:`FuseOptions` fields.
    """

    def __init__(self, model: str | torch.nn.Module = "tita", weights: Any = None, device: str = "cpu",
                 precision: str = "fp32", model_options: dict[str, Any] | None = None, **options: Any):
        from ..models import load_model

        self.options = FuseOptions(**options)
        try:
            self.device = torch.device(device)
        except RuntimeError:
            raise ConfigError(f"--device: unknown device {device!r}") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda requested but no CUDA GPU is available")
        if isinstance(model, str):
            self.name = model
            if weights is None:
                _require_trained_weights(model)
            self.model = load_model(model, weights=weights, device=self.device, precision=precision)
        else:
            self.name = type(model).__name__
            self.model = model.eval().to(self.device)
        self.model_options = check_model_options(self.model, self.name, model_options or {})

    def _load_pair(self, a: Any, b: Any) -> tuple[LoadedImage, LoadedImage]:
        ia, ib = as_loaded_image(a, "source A"), as_loaded_image(b, "source B")
        sa, sb = ia.data.shape[:2], ib.data.shape[:2]
        if sa != sb:
            if self.options.resize_to == "a":
                ib = _resize(ib, sa)
            elif self.options.resize_to == "b":
                ia = _resize(ia, sb)
            else:
                names = f"{ia.path or 'A'} is {sa[1]}x{sa[0]}, {ib.path or 'B'} is {sb[1]}x{sb[0]}"
                raise InputMismatchError(f"source sizes differ ({names}); pass --resize-to a|b to resize")
        return ia, ib

    @torch.no_grad()
    def run_model(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``(1, C, H, W)`` float32 pair -> fused tensor, tiled when configured."""
        a, b = a.to(self.device), b.to(self.device)
        tile = self.options.tile
        tileable = hasattr(self.model, "pad_multiple")  # training-free rules run whole
        H, W = a.shape[-2:]
        if tileable and tile != 0 and (tile is not None or H * W > AUTO_TILE_PIXELS):
            spec = TileSpec(tile or 512, min(self.options.overlap, (tile or 512) // 2))
            return tiled_forward(self.model, a, b, spec, progress=self.options.progress, **self.model_options).cpu()
        return self.model(a, b, **self.model_options).cpu()

    def fuse_arrays(self, a: Any, b: Any) -> tuple[np.ndarray, int]:
        """Fuse two images -> (float32 ``(H, W[, 3])`` array in [0, 1], output bit depth)."""
        ia, ib = self._load_pair(a, b)
        bits = 16 if max(ia.bit_depth, ib.bit_depth) == 16 else 8
        mode = getattr(self.model, "input_mode", "luma")
        to_t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
        if mode == "rgb":
            ta, tb = (to_t(_rgb(i)).permute(2, 0, 1)[None] for i in (ia, ib))
            out = self.run_model(ta, tb)[0].clamp(0, 1).permute(1, 2, 0).numpy()
            if self.options.color == "gray" or (ia.is_gray and ib.is_gray):
                out = rgb_to_luma(out, bits)
            return out.astype(np.float32), bits
        ta, tb = (to_t(_luma(i))[None, None] for i in (ia, ib))
        y = self.run_model(ta, tb)[0, 0].clamp(0, 1).numpy()
        color = self.options.color
        if ia.is_gray and ib.is_gray:
            color = "gray"
        return restore_colour(y, _rgb(ia), _rgb(ib), color, bits), bits

    def __call__(self, a: Any, b: Any, output: Literal["pil", "numpy", "tensor"] = "pil"):
        data, bits = self.fuse_arrays(a, b)
        return convert_output(data, bits, output)


def check_model_options(model: torch.nn.Module, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without ``None`` values, after checking that ``model`` takes each of them.

    Raises:
        ConfigError: an option the model does not declare in ``call_options``.
    """
    options = {k: v for k, v in options.items() if v is not None}
    accepted = tuple(getattr(model, "call_options", ()))
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        takes = ", ".join("--" + k.replace("_", "-") for k in accepted) or "none"
        raise ConfigError(f"model {name!r} does not take {flags} (its options: {takes})")
    return options


def _require_trained_weights(name: str) -> None:
    """Refuse to present a randomly initialised network's output as a fusion result."""
    from ..models import MODELS, _ensure_builtin

    _ensure_builtin()
    factory = MODELS.get(name).factory
    cls = getattr(factory, "model_class", None)
    default = getattr(cls, "default_weights", None)
    if cls is not None and getattr(cls, "trainable", False) and callable(default) and default() is None:
        raise ConfigError(f"no trained weights ship for model {name!r} in this build: pass --weights PATH "
                          f"(weights='random' for an untrained network) or use a training-free model "
                          f"(average, max, laplacian, mertens)")


def convert_output(data: np.ndarray, bits: int, output: str):
    if output == "numpy":
        return data
    if output == "tensor":
        t = torch.from_numpy(data)
        return t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    if output == "pil":
        u8 = np.floor(np.clip(data, 0, 1) * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(u8, "L" if u8.ndim == 2 else "RGB")
    raise ConfigError(f"output must be 'pil', 'numpy' or 'tensor', got {output!r}")


def fuse(a: Any, b: Any = None, model: str | torch.nn.Module = "tita", weights: Any = None, *, color: str = "weighted",
         tile: int | None = None, device: str = "cpu", precision: str = "fp32", resize_to: str | None = None,
         output: Literal["pil", "numpy", "tensor"] = "pil", align: str | None = None, reference: int | None = None,
         reduction: str | None = None, order: str | None = None, transforms: Any = None,
         save_transforms: str | None = None, **model_options: Any):
    """Fuse two images, or a list of two or more (``fuse([p1, p2, p3], model=...)``).

    A list of sources, or any of the stack options (``align``, ``reference``, ``reduction``,
    ``order``, ``transforms``, ``save_transforms``), goes to
    :func:`unifuse.inference.stack.fuse_stack` (N sources, alignment).

    Args:
        a, b: paths, numpy arrays (``uint8``/``uint16``/float in [0, 1], ``(H, W)`` or
            ``(H, W, 3)``), PIL images or tensors (``(C, H, W)``).
        model: registry name (``unifuse.list_models()``) or a fusion module.
        weights: see :func:`unifuse.load_model`.
        color: chroma rule: ``weighted`` (default), ``from-a``, ``from-b``, ``gray``.
        tile: ``None`` auto, ``0`` off, or tile size in pixels.
        resize_to: ``None``, ``"a"`` or ``"b"`` for sources of different sizes.
        output: ``"pil"`` (8-bit PIL image), ``"numpy"`` (float32 ``(H, W[, 3])`` in [0, 1])
            or ``"tensor"`` (float32 ``(C, H, W)``).
        **model_options: options of the model's forward (its ``call_options``, e.g.
            ``task="mef"``); a model that does not take one refuses it.
    Returns:
        The fused image, the size of the inputs.
    Raises:
        UnifuseError: bad inputs or options (one-line message).
    """
    stack_options = {k: v for k, v in dict(align=align, reference=reference, reduction=reduction, order=order,
                                           transforms=transforms, save_transforms=save_transforms).items() if v is not None}
    if isinstance(a, (list, tuple)) or stack_options:
        from .stack import fuse_stack

        if isinstance(a, (list, tuple)) and b is not None:
            raise ConfigError("fuse(list_of_sources, ...): pass model= as a keyword, not as the second argument")
        sources = list(a) if isinstance(a, (list, tuple)) else [a, b]
        return fuse_stack(sources, model, weights, color=color, tile=tile, device=device, precision=precision,
                          resize_to=resize_to, output=output, model_options=model_options, **stack_options)
    if b is None:
        raise ConfigError("fuse() needs two sources (a, b) or a list of sources")
    fuser = Fuser(model, weights=weights, device=device, precision=precision, color=color, tile=tile, resize_to=resize_to,
                  model_options=model_options)
    return fuser(a, b, output=output)


__all__ = ["Fuser", "FuseOptions", "fuse", "UnifuseError"]
