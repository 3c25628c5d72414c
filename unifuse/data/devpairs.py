"""A few real, held-out benchmark pairs from the shared data folder, for demos and reports.

The shared folder (``../shared`` beside the repository, or ``$UNIFUSE_SHARED``; see
:func:`find_data_root`) holds public benchmark images that are never committed. This module
picks small pairs from it that training never sees:

* **IVF**: two pairs of ``vifb_dev`` (VIFB; no VIFB pair is in any training set; A = visible
  colour, B = infrared);
* **MEF**: one pair of the *dev* split of ``mef/mefb_train`` (MEFB; A = over-, B = under-exposed);
* **MFF**: one pair of the *dev* split of ``mff/mfifb_train`` (MFIFB; A/B = two focus settings).

The dev split is :class:`~unifuse.data.datasets.PairFolderDataset`'s ``split="dev"``: every
8th pair (sorted by file name, starting with the first) is held out of every training recipe.

Real pairs have no ground truth (``ground_truth=None``): report no-reference metrics only.
Sources are float32 in ``[0, 1]``: ``(H, W, 3)`` RGB for colour files, ``(H, W)`` for gray ones
(including gray images stored as RGB, such as VIFB's infrared). Sizes are the files' own; a
pair above ``max_pixels`` is downscaled (Lanczos) and its description says so.

Example::

    from unifuse.data.devpairs import find_data_root, load_dev_pairs
    root = find_data_root()            # None when the shared folder is absent
    pairs = load_dev_pairs(root) if root else []
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image

from ..errors import ConfigError, InputMismatchError
from .datasets import FOLDER_PRESETS, PairFolderDataset, read_array
from .samples import SamplePair

__all__ = ["find_data_root", "default_data_dir", "list_dev_pairs", "load_dev_pair", "load_dev_pairs", "DEV_PAIRS", "MAX_PIXELS"]

#: pairs larger than this (H x W) are downscaled for the demo
MAX_PIXELS = 500_000


@dataclass(frozen=True)
class DevPairSpec:
    """Where a pair comes from: ``root/sub_a`` and ``root/sub_b`` under the data root, its split,
    the preferred file stems (the first one present is used; otherwise the smallest pair of the
    split), the task, source labels and the dataset's name for the description."""

    folder: str
    sub_a: str
    sub_b: str
    task: str
    split: str
    stems: tuple[str, ...]
    labels: tuple[str, str]
    dataset: str


#: name -> spec. Preferred stems are small pairs (< 0.2 MP) so that a demo on 2 CPU cores stays quick.
DEV_PAIRS: dict[str, DevPairSpec] = {
    "ivf_vifb_1": DevPairSpec("vifb_dev", "vi", "ir", "IVF", "all", ("carWhite",), ("visible", "infrared"), "VIFB"),
    "ivf_vifb_2": DevPairSpec("vifb_dev", "vi", "ir", "IVF", "all", ("fight",), ("visible", "infrared"), "VIFB"),
    "mef_mefb_dev": DevPairSpec("mef/mefb_train", FOLDER_PRESETS["mefb_train"].sub_a, FOLDER_PRESETS["mefb_train"].sub_b,
                                "MEF", "dev", ("Farmhouse",), ("over-exposed", "under-exposed"), "MEFB"),
    "mff_mfifb_dev": DevPairSpec("mff/mfifb_train", FOLDER_PRESETS["mfifb_train"].sub_a, FOLDER_PRESETS["mfifb_train"].sub_b,
                                 "MFF", "dev", ("savic_03", "aymaz_09"), ("focus A", "focus B"), "MFIFB"),
}

_NOTES = {
    "all": "no pair of this benchmark is in any training set",
    "dev": "held-out dev split (every 8th pair), never trained on",
}


def find_data_root(path: Union[None, str, os.PathLike] = None) -> Optional[Path]:
    """The shared ``data`` folder, or ``None`` when absent.

    ``path`` (if given) is used as is and must exist. Otherwise ``$UNIFUSE_SHARED/data``, or
    ``<repository>/../shared/data`` (the layout of a source checkout, as the tests use).
    """
    if path is not None:
        p = Path(path)
        if not p.is_dir():
            raise ConfigError(f"--data: {p}: folder not found")
        return p
    d = default_data_dir()
    return d if d.is_dir() else None


def default_data_dir() -> Path:
    """Where the shared ``data`` folder is expected (it may be absent): ``$UNIFUSE_SHARED/data``,
    else ``<repository>/../shared/data``."""
    env = os.environ.get("UNIFUSE_SHARED")
    return (Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared") / "data"


def list_dev_pairs(root: Union[None, str, os.PathLike] = None) -> list[str]:
    """Names of the dev pairs whose folders exist under ``root`` (default :func:`find_data_root`)."""
    r = find_data_root(root)
    if r is None:
        return []
    return [n for n, s in DEV_PAIRS.items() if (r / s.folder / s.sub_a).is_dir() and (r / s.folder / s.sub_b).is_dir()]


def _pixels(path: Path) -> int:
    with Image.open(path) as im:
        return im.width * im.height


def _choose(ds: PairFolderDataset, stems: tuple[str, ...]) -> int:
    by_stem = {pa.stem: i for i, (pa, _) in enumerate(ds.pairs)}
    for s in stems:
        if s in by_stem:
            return by_stem[s]
    return min(range(len(ds.pairs)), key=lambda i: (_pixels(ds.pairs[i][0]), i))


def _as_float(u8: np.ndarray) -> np.ndarray:
    if u8.ndim == 3 and (u8 == u8[..., :1]).all():
        u8 = u8[..., 0]  # gray stored as RGB
    return (u8.astype(np.float32) / np.float32(255)).copy()


def _downscale(u8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(u8).resize(size, Image.Resampling.LANCZOS))


def load_dev_pair(name: str, root: Union[None, str, os.PathLike] = None, max_pixels: int = MAX_PIXELS) -> SamplePair:
    """Load dev pair ``name`` (see :data:`DEV_PAIRS`) from ``root`` (default :func:`find_data_root`).

    Raises:
        ConfigError: unknown name, or no data folder.
        InputMismatchError / ImageReadError: the pair's folder is incomplete or unreadable.
    """
    if name not in DEV_PAIRS:
        raise ConfigError(f"unknown dev pair {name!r}; available: {', '.join(DEV_PAIRS)}")
    r = find_data_root(root)
    if r is None:
        raise ConfigError("no shared data folder found (set UNIFUSE_SHARED or pass a path)")
    spec = DEV_PAIRS[name]
    ds = PairFolderDataset(r / spec.folder, spec.sub_a, spec.sub_b, spec.task, crop=None, gray=False, split=spec.split)
    i = _choose(ds, spec.stems)
    pa, pb = ds.pairs[i]
    a, b = read_array(pa, gray=False), read_array(pb, gray=False)
    if a.shape != b.shape:
        raise InputMismatchError(f"{pa} is {a.shape[1]}x{a.shape[0]} but its partner {pb} is {b.shape[1]}x{b.shape[0]}")
    h, w = a.shape[:2]
    size_note = f"{w}×{h}"
    if h * w > max_pixels:
        scale = (max_pixels / (h * w)) ** 0.5
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        a, b = _downscale(a, size), _downscale(b, size)
        size_note = f"{w}×{h}, downscaled to {size[0]}×{size[1]} for the demo"
    desc = (f"Real {spec.dataset} pair {pa.stem} ({size_note}; {spec.folder}/{spec.sub_a}, /{spec.sub_b}; "
            f"{_NOTES.get(spec.split, spec.split)}). A = {spec.labels[0]}, B = {spec.labels[1]}. "
            "No ground truth: no-reference metrics only.")
    return SamplePair(name=f"{name}_{pa.stem}", task=spec.task, a=_as_float(a), b=_as_float(b), ground_truth=None,
                      description=desc, color="weighted", labels=spec.labels)


def load_dev_pairs(root: Union[None, str, os.PathLike] = None, max_pixels: int = MAX_PIXELS) -> list[SamplePair]:
    """Every available dev pair (:func:`list_dev_pairs`), loaded; ``[]`` without a data folder."""
    r = find_data_root(root)
    return [load_dev_pair(n, r, max_pixels) for n in list_dev_pairs(r)] if r is not None else []
