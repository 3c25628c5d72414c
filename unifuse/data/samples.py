"""Built-in sample pairs, made on the fly from photographs that scikit-image ships.

Nothing is downloaded: the photographs are the PNG/JPEG files inside the installed
``skimage.data`` package (astronaut, coffee, chelsea, rocket). Each pair is built
deterministically and cached:

* **multi-focus (MFF)**: a hand-drawn foreground mask (union of ellipses, soft edge); A is
  sharp in the background and defocused (Gaussian blur) in the foreground ("far focus"),
  B the opposite ("near focus");
* **multi-exposure (MEF)**: the photograph re-exposed by ``+stops`` (A, over-exposed) and
  ``-stops`` (B, under-exposed) through a gamma tone curve, with clipping and 8-bit
  quantisation (:func:`unifuse.data.synthetic.simulate_exposure`).

The original photograph is the ground truth. Images are at most 480 px on a side so that
a demo runs quickly.

Example::

    from unifuse.data.samples import list_samples, load_sample
    pair = load_sample("mef_chelsea")   # pair.a, pair.b, pair.ground_truth: (H, W, 3) float32
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import ConfigError
from .synthetic import compose_focus_pair, gaussian_blur, simulate_exposure

__all__ = ["SamplePair", "list_samples", "load_sample", "clean_images"]

MAX_SIDE = 480


@dataclass(frozen=True)
class SamplePair:
    """A source pair, with its ground truth when one exists.

    The same structure is used for the built-in samples here, for real held-out benchmark
    pairs (:mod:`unifuse.data.devpairs`) and for tasks TITA never trained on
    (:mod:`unifuse.data.unseen`).

    Attributes:
        name: sample name (see :func:`list_samples`).
        task: ``"MFF"`` (multi-focus) or ``"MEF"`` (multi-exposure) here; ``"IVF"``,
            ``"PAN"`` (pan-sharpening) or ``"MED"`` (medical) elsewhere.
        a: float32 ``(H, W, 3)`` RGB in ``[0, 1]``: far-focused / over-exposed source
            (other modules may give ``(H, W)`` gray sources).
        b: float32 ``(H, W, 3)``: near-focused / under-exposed source.
        ground_truth: float32 ``(H, W, 3)``: the original photograph; ``None`` for real
            pairs, which have none.
        description: one line saying how the pair was made.
        color: the chroma rule to fuse the pair with (see :func:`unifuse.io.restore_colour`).
        labels: short names of the two sources, e.g. ``("visible", "infrared")``.
    """

    name: str
    task: str
    a: np.ndarray
    b: np.ndarray
    ground_truth: Optional[np.ndarray]
    description: str = ""
    color: str = "weighted"
    labels: tuple[str, str] = ("A", "B")

    def copy(self) -> "SamplePair":
        """The same pair with fresh writable copies of its arrays (cached pairs are read-only)."""
        gt = None if self.ground_truth is None else self.ground_truth.copy()
        return dataclasses.replace(self, a=self.a.copy(), b=self.b.copy(), ground_truth=gt)


@dataclass(frozen=True)
class _Spec:
    photo: str  # skimage.data function name
    task: str
    description: str
    # MFF: ellipses (cy, cx, ry, rx) as fractions of (H, W), blur sigmas of A and B
    ellipses: tuple[tuple[float, float, float, float], ...] = ()
    sigmas: tuple[float, float] = (3.0, 3.0)
    # MEF: stops for A (over) and B (under), gamma
    stops: tuple[float, float] = (1.5, 2.0)
    gamma: float = 2.2


_SPECS: dict[str, _Spec] = {
    "mff_astronaut": _Spec(
        "astronaut",
        "MFF",
        "astronaut: A focused on the flag and shuttle, B on the astronaut and helmet",
        ellipses=((0.15, 0.42, 0.15, 0.13), (0.68, 0.38, 0.38, 0.33), (0.84, 0.77, 0.2, 0.2)),
        sigmas=(3.0, 3.5),
    ),
    "mff_coffee": _Spec(
        "coffee",
        "MFF",
        "coffee: A focused on the table, B on the cup and saucer",
        ellipses=((0.64, 0.47, 0.34, 0.34), (0.4, 0.48, 0.36, 0.21)),
        sigmas=(3.5, 3.0),
    ),
    "mef_chelsea": _Spec(
        "chelsea",
        "MEF",
        "chelsea the cat: A +2 stops (over-exposed), B -3 stops (under-exposed)",
        stops=(2.0, 3.0),
    ),
    "mef_rocket": _Spec(
        "rocket",
        "MEF",
        "rocket at night: A +2.5 stops (over-exposed), B -1.5 stops (under-exposed)",
        stops=(2.5, 1.5),
    ),
}


def list_samples() -> list[str]:
    """Names of the built-in sample pairs."""
    return sorted(_SPECS)


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """A scikit-image photograph as float32 RGB, downscaled to at most ``MAX_SIDE`` px (read-only)."""
    import skimage.data
    from PIL import Image

    try:
        rgb = getattr(skimage.data, name)()
    except Exception as exc:  # e.g. a scikit-image build without its bundled data
        raise ConfigError(f"sample photograph {name!r} is not available from skimage.data: {exc}") from None
    im = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).convert("RGB")
    scale = MAX_SIDE / max(im.size)
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    out = np.asarray(im, dtype=np.float32) / np.float32(255)
    out.setflags(write=False)
    return out


def _ellipse_mask(h: int, w: int, ellipses: tuple[tuple[float, float, float, float], ...]) -> np.ndarray:
    yy = (np.arange(h, dtype=np.float32) + 0.5)[:, None] / h
    xx = (np.arange(w, dtype=np.float32) + 0.5)[None, :] / w
    mask = np.zeros((h, w), bool)
    for cy, cx, ry, rx in ellipses:
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    return mask


def _to_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(x, dtype=np.float32)).permute(2, 0, 1)[None]


def _to_array(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32))


def _build_mff(spec: _Spec, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = gt.shape[:2]
    foreground = _ellipse_mask(h, w, spec.ellipses)
    # 1 = sharp in A (background), soft transition like a real depth-of-field edge
    mask = gaussian_blur(torch.from_numpy((~foreground).astype(np.float32))[None, None], 2.0)
    a, b = compose_focus_pair(_to_tensor(gt), mask, spec.sigmas[0], spec.sigmas[1])
    return _to_array(a), _to_array(b)


def _build_mef(spec: _Spec, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = _to_tensor(gt)
    a = simulate_exposure(x, 2.0 ** spec.stops[0], spec.gamma, bits=8)
    b = simulate_exposure(x, 2.0 ** (-spec.stops[1]), spec.gamma, bits=8)
    return _to_array(a), _to_array(b)


_BUILDERS: dict[str, Callable[[_Spec, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {"MFF": _build_mff, "MEF": _build_mef}


@functools.lru_cache(maxsize=None)
def _build(name: str) -> SamplePair:
    spec = _SPECS[name]
    gt = _photo(spec.photo)
    a, b = _BUILDERS[spec.task](spec, gt)
    for arr in (a, b):
        arr.setflags(write=False)
    labels = ("far focus", "near focus") if spec.task == "MFF" else ("over-exposed", "under-exposed")
    return SamplePair(name=name, task=spec.task, a=a, b=b, ground_truth=gt, description=spec.description, labels=labels)


def load_sample(name: str) -> SamplePair:
    """Build (or fetch from the cache) the sample pair ``name``; arrays are fresh writable copies.

    Raises:
        ConfigError: unknown name (the message lists the available ones).
    """
    key = str(name).lower().replace("-", "_")
    if key not in _SPECS:
        raise ConfigError(f"unknown sample {name!r}; available: {', '.join(list_samples())}")
    return _build(key).copy()


def clean_images() -> dict[str, np.ndarray]:
    """The sharp, well-exposed photographs behind the samples: name -> float32 ``(H, W, 3)`` copy.

    Used as the default image source of synthetic training pairs
    (:class:`unifuse.data.SyntheticPairDataset`).
    """
    photos = sorted({spec.photo for spec in _SPECS.values()})
    return {p: _photo(p).copy() for p in photos}
