"""Training datasets: source pairs from folders (TITA spec §9.2–§9.3) and synthetic pairs.

Every dataset here follows one contract, used by :class:`~unifuse.data.multitask.MultiTaskBatches`:

* ``len(ds)`` samples;
* ``ds.get(index, seed)`` is a **pure function** of ``(index, seed)`` (the random crop and any
  synthetic degradation are drawn from a generator seeded with both), so batching is reproducible
  and resumable without any hidden RNG state; ``ds[index]`` is ``ds.get(index, 0)``;
* a sample is ``{"A": (C,h,w) float32 in [0,1], "B": same, "name": str, "task": str}``
  (synthetic sets add ``"GT"``), C = 1 for PIL ``'L'`` grey (ITU-R 601-2 luma, as the official
  training) or 3 for ``gray=False``.

Crops take the same ``crop × crop`` window in both sources with offsets uniform over all valid
positions and no augmentation (as the official ``Mixed_Equal_Dataset``). An image smaller than the
crop is padded at the bottom/right first (``pad_mode="reflect"``, default; ``"symmetric"``; or
``"error"`` to refuse). ``crop=None`` returns whole images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, ImageReadError, InputMismatchError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm")
PAD_MODES = ("reflect", "symmetric", "error")

#: Alternative spellings of the task keys (official config names -> ours).
TASK_ALIASES = {"IVIF": "IVF", "VIF": "IVF", "IRVIS": "IVF", "MFIF": "MFF", "MEIF": "MEF"}


def canonical_task(task: str) -> str:
    """Upper-case task key with official aliases mapped (``IVIF`` -> ``IVF``, ``MFIF`` -> ``MFF``, ``MEIF`` -> ``MEF``)."""
    if not isinstance(task, str) or not task.strip():
        raise ConfigError(f"task must be a non-empty string, got {task!r}")
    t = task.strip().upper()
    return TASK_ALIASES.get(t, t)


def _seed_rng(seed: int, index: int, salt: int = 0) -> np.random.Generator:
    mask = (1 << 64) - 1
    return np.random.default_rng([int(seed) & mask, int(index) & mask, salt])


def list_images(folder: Union[str, os.PathLike]) -> list[Path]:
    """Image files directly inside ``folder`` (by extension, case-insensitive), sorted by name."""
    d = Path(folder)
    if not d.is_dir():
        raise ImageReadError(f"{d}: folder not found")
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_array(path: Union[str, os.PathLike], gray: bool = True) -> np.ndarray:
    """uint8 array of an image file: (H, W) PIL ``'L'`` luma if ``gray`` else (H, W, 3) RGB."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L" if gray else "RGB"))
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds for corrupt files
        raise ImageReadError(f"{path}: cannot read image ({e.__class__.__name__}: {e})") from None


def pad_to(arr: np.ndarray, size: int, mode: str, what: str = "image") -> np.ndarray:
    """Pad the first two axes at the bottom/right to at least ``size`` with ``mode`` (see ``PAD_MODES``)."""
    h, w = arr.shape[:2]
    if h >= size and w >= size:
        return arr
    if mode == "error":
        raise InputMismatchError(f"{what}: {h}x{w} is smaller than the {size}x{size} crop")
    if mode not in PAD_MODES:
        raise ConfigError(f"pad_mode must be one of {PAD_MODES}, got {mode!r}")
    pads = [(0, max(0, size - h)), (0, max(0, size - w))] + [(0, 0)] * (arr.ndim - 2)
    return np.pad(arr, pads, mode=mode)


def random_crop_offsets(h: int, w: int, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    """(top, left) uniform over the ``(h-crop+1) × (w-crop+1)`` valid positions."""
    return int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H,W) / (H,W,3) or float array -> float32 (C,H,W) in [0,1] (uint8 / 255, like ToTensor)."""
    t = torch.from_numpy(np.array(arr, copy=True, order="C"))  # copy: PIL arrays are read-only
    t = t.float().div(255) if t.dtype == torch.uint8 else t.float()
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


# --------------------------------------------------------------------------------------------- partners
#: Train/dev split names and the default hold-out period (every 8th pair is dev).
SPLITS = ("all", "train", "dev")
DEV_EVERY = 8


def select_split(items: list, split: str, dev_every: int = DEV_EVERY) -> list:
    """Items (already sorted) of ``split``: ``dev`` = indices ``0, k, 2k, ...``, ``train`` = the rest."""
    if split == "all":
        return list(items)
    dev = split == "dev"
    return [x for i, x in enumerate(items) if (i % dev_every == 0) == dev]


def _partner_same(stem: str) -> str:
    return stem


def _partner_realmff(stem: str) -> str:
    # RealMFF: the partner of "X_B" is "X_A" (name up to the first "_" + "_A")
    return stem.split("_", 1)[0] + "_A"


PARTNER_RULES: dict[str, Callable[[str], str]] = {"same": _partner_same, "realmff": _partner_realmff}


def _partner_rule(partner: Union[None, str, Callable[[str], str]]) -> Callable[[str], str]:
    if partner is None:
        return _partner_same
    if callable(partner):
        return partner
    if partner in PARTNER_RULES:
        return PARTNER_RULES[partner]
    raise ConfigError(f"unknown partner rule {partner!r}; available: {', '.join(PARTNER_RULES)} or a callable stem -> stem")


class PairFolderDataset:
    """Source pairs ``root/sub_a/<stem>.<ext>`` ↔ ``root/sub_b/<partner(stem)>.<ext'>``.

    Files are listed from ``root/sub_a`` (sorted by name) and matched by file *stem* in ``root/sub_b``
    (extensions may differ). ``partner`` maps an A stem to its B stem: ``None``/``"same"`` (identity),
    ``"realmff"`` (``X_B`` -> ``X_A``) or any callable. Files of ``sub_b`` with no A partner are ignored
    (as the official loader does); an A file with no partner, or with two candidate partners, raises
    :class:`InputMismatchError` listing them. ``cache=True`` keeps decoded images in memory.

    Convention (TC-MoA/TITA): A = visible / over-exposed / far-focused, B = infrared / under-exposed / near-focused.

    ``split`` holds pairs out deterministically: with pairs sorted by A file name, pair ``i`` is in
    the *dev* split when ``i % dev_every == 0`` (every ``dev_every``-th pair, starting with the
    first) and in the *train* split otherwise; ``"all"`` (default) keeps every pair. The same
    rule is used by training recipes (``split: train``) and by evaluation scripts (``split: dev``),
    so a model is never evaluated on pairs it was trained on.
    """

    def __init__(self, root: Union[str, os.PathLike], sub_a: str, sub_b: str, task: str, crop: Optional[int] = 64,
                 gray: bool = True, partner: Union[None, str, Callable[[str], str]] = None, pad_mode: str = "reflect",
                 cache: bool = False, split: str = "all", dev_every: int = DEV_EVERY):
        if crop is not None and int(crop) < 1:
            raise ConfigError(f"crop must be a positive integer or None, got {crop!r}")
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if int(dev_every) < 2:
            raise ConfigError(f"dev_every must be an integer >= 2, got {dev_every!r}")
        if pad_mode not in PAD_MODES:
            raise ConfigError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.root = Path(root)
        self.dir_a, self.dir_b = self.root / sub_a, self.root / sub_b
        self.task = canonical_task(task)
        self.crop = None if crop is None else int(crop)
        self.gray = bool(gray)
        self.pad_mode = pad_mode
        rule = _partner_rule(partner)
        files_a = list_images(self.dir_a)
        if not files_a:
            raise InputMismatchError(f"{self.dir_a}: no image files found")
        by_stem: dict[str, list[Path]] = {}
        for p in list_images(self.dir_b):
            by_stem.setdefault(p.stem, []).append(p)
        pairs, missing, ambiguous = [], [], []
        for pa in files_a:
            cands = by_stem.get(rule(pa.stem), [])
            if not cands:
                missing.append(pa.name)
            elif len(cands) > 1:
                ambiguous.append(f"{pa.name} -> {'/'.join(c.name for c in cands)}")
            else:
                pairs.append((pa, cands[0]))
        if missing:
            shown = ", ".join(missing[:8]) + (f", ... ({len(missing)} in all)" if len(missing) > 8 else "")
            raise InputMismatchError(f"{self.dir_a}: {len(missing)} file(s) have no partner in {self.dir_b}: {shown}")
        if ambiguous:
            raise InputMismatchError(f"{self.dir_b}: several partners with the same stem: {', '.join(ambiguous[:8])}")
        self.split, self.dev_every = split, int(dev_every)
        pairs = select_split(pairs, split, self.dev_every)
        if not pairs:
            raise InputMismatchError(f"{self.root}: the {split!r} split (every {self.dev_every}th pair is dev) is empty")
        self.pairs: list[tuple[Path, Path]] = pairs
        self._cache: Optional[dict[int, tuple[np.ndarray, np.ndarray]]] = {} if cache else None

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"PairFolderDataset({str(self.root)!r}, {self.dir_a.name!r}, {self.dir_b.name!r}, task={self.task!r}, n={len(self)}, crop={self.crop})"

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The two full images of pair ``index`` as uint8 arrays of equal size."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        pa, pb = self.pairs[index]
        a, b = read_array(pa, self.gray), read_array(pb, self.gray)
        if a.shape[:2] != b.shape[:2]:
            raise InputMismatchError(f"{pa} is {a.shape[0]}x{a.shape[1]} but its partner {pb} is {b.shape[0]}x{b.shape[1]}")
        if self._cache is not None:
            self._cache[index] = (a, b)
        return a, b

    def get(self, index: int, seed: int = 0) -> dict[str, Any]:
        """Sample ``index`` with its crop drawn from ``(index, seed)`` only; see the module docstring."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} pairs")
        index %= n
        a, b = self.load_pair(index)
        if self.crop is not None:
            what = str(self.pairs[index][0])
            a, b = pad_to(a, self.crop, self.pad_mode, what), pad_to(b, self.crop, self.pad_mode, what)
            top, left = random_crop_offsets(a.shape[0], a.shape[1], self.crop, _seed_rng(seed, index))
            a = a[top:top + self.crop, left:left + self.crop]
            b = b[top:top + self.crop, left:left + self.crop]
        return {"A": to_tensor(a), "B": to_tensor(b), "name": self.pairs[index][0].stem, "task": self.task}

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.get(index, 0)


# --------------------------------------------------------------------------------------------- synthetic
SYNTHETIC_TASKS = {"MFF": "make_mff_pair", "MEF": "make_mef_pair"}


def _as_chw(x: Any) -> torch.Tensor:
    """float32 (C,H,W) from a (H,W), (H,W,C) or (C,H,W) array/tensor."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().float()
    if t.dim() == 2:
        return t.unsqueeze(0)
    if t.dim() == 3 and t.shape[-1] in (1, 3) and t.shape[0] not in (1, 3):
        return t.permute(2, 0, 1).contiguous()
    if t.dim() == 3:
        return t
    raise ConfigError(f"synthetic generator returned an array of shape {tuple(t.shape)}; expected (H,W) or (H,W,C)")


def _image_to_array(x: Any, gray: bool) -> np.ndarray:
    """An image given as a path, PIL image, array or tensor -> (H,W) / (H,W,3) array (uint8 or float in [0,1])."""
    if isinstance(x, (str, os.PathLike)):
        return read_array(x, gray)
    if isinstance(x, Image.Image):
        return np.asarray(x.convert("L" if gray else "RGB"))
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if gray and a.ndim == 3:  # ITU-R 601-2 luma, like PIL 'L' (without its integer rounding)
        a = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    if a.ndim not in (2, 3):
        raise ConfigError(f"cannot use an array of shape {a.shape} as an image")
    return a if a.dtype == np.uint8 else a.astype(np.float32)


def _default_images(gray: bool) -> tuple[list[np.ndarray], list[str]]:
    """Built-in sample images (unifuse.data.samples) used when no source is given."""
    try:
        from . import samples
    except ImportError as e:
        raise ConfigError(f"SyntheticPairDataset: no images given and the built-in samples are unavailable ({e})") from None
    images = samples.clean_images() if hasattr(samples, "clean_images") else None
    if not images:
        raise ConfigError("SyntheticPairDataset: no images given and the built-in samples provide none")
    items = list(images.items()) if isinstance(images, dict) else [(f"sample{i}", im) for i, im in enumerate(images)]
    return [_image_to_array(im, gray) for _, im in items], [str(k) for k, _ in items]


class SyntheticPairDataset:
    """Synthetic MFF/MEF training pairs made on the fly from clean images.

    ``images_or_folder``: a folder (its images), a single image path, a sequence of paths / PIL
    images / arrays, or ``None`` for the built-in samples (:mod:`unifuse.data.samples`), so training
    runs with no dataset at all. Sample ``index`` uses image ``index % n_images``; a ``crop``-sized
    window is cut at a random position (padded like :class:`PairFolderDataset` if the image is
    smaller) and turned into (A, B, GT) by :func:`unifuse.data.synthetic.make_mff_pair` or
    ``make_mef_pair`` with a generator seeded from ``(index, seed)`` — a pure function of both.
    ``length`` is the nominal number of samples per epoch. Returns the usual sample dict plus ``"GT"``.
    """

    def __init__(self, images_or_folder: Any = None, task: str = "MFF", crop: Optional[int] = 64, length: int = 1000,
                 gray: bool = True, pad_mode: str = "reflect"):
        self.task = canonical_task(task)
        if self.task not in SYNTHETIC_TASKS:
            raise ConfigError(f"no synthetic pair generator for task {self.task!r}; available: {', '.join(SYNTHETIC_TASKS)}")
        if crop is not None and int(crop) < 1:
            raise ConfigError(f"crop must be a positive integer or None, got {crop!r}")
        if int(length) < 1:
            raise ConfigError(f"length must be >= 1, got {length!r}")
        if pad_mode not in PAD_MODES:
            raise ConfigError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.crop = None if crop is None else int(crop)
        self.length = int(length)
        self.gray = bool(gray)
        self.pad_mode = pad_mode
        src = images_or_folder
        if src is None:
            self.images, self.names = _default_images(self.gray)
        else:
            if isinstance(src, (str, os.PathLike)):
                p = Path(src)
                paths = list_images(p) if p.is_dir() else [p]
                src = paths
            elif not isinstance(src, (list, tuple)):
                src = [src]
            self.images = [_image_to_array(x, self.gray) for x in src]
            self.names = [Path(x).stem if isinstance(x, (str, os.PathLike)) else f"image{i}" for i, x in enumerate(src)]
        if not self.images:
            raise InputMismatchError(f"SyntheticPairDataset: no images in {images_or_folder}")
        from . import synthetic

        self._make = getattr(synthetic, SYNTHETIC_TASKS[self.task])

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"SyntheticPairDataset(task={self.task!r}, images={len(self.images)}, length={self.length}, crop={self.crop})"

    def get(self, index: int, seed: int = 0) -> dict[str, Any]:
        """Sample ``index``: crop position and degradation drawn from ``(index, seed)`` only."""
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for length {self.length}")
        index %= self.length
        k = index % len(self.images)
        img = self.images[k]
        rng = _seed_rng(seed, index, 1)
        if self.crop is not None:
            img = pad_to(img, self.crop, self.pad_mode, self.names[k])
            top, left = random_crop_offsets(img.shape[0], img.shape[1], self.crop, rng)
            img = img[top:top + self.crop, left:left + self.crop]
        img = img.astype(np.float32) / 255 if img.dtype == np.uint8 else img.astype(np.float32)
        a, b, gt = self._make(np.ascontiguousarray(img), rng)
        a, b, gt = (_as_chw(x).clamp_(0, 1) for x in (a, b, gt))
        return {"A": a, "B": b, "GT": gt, "name": f"{self.names[k]}_{index}", "task": self.task}

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.get(index, 0)


# --------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class FolderPreset:
    """Sub-folders, task and partner rule of a known training layout (spec §9.3 and ``shared/data``)."""

    sub_a: str
    sub_b: str
    task: str
    partner: Optional[str] = None


#: Official training layouts (TC-MoA data release) and the local benchmark folders.
FOLDER_PRESETS: dict[str, FolderPreset] = {
    "llvip": FolderPreset("visible/train", "infrared/train", "IVF"),
    "realmff": FolderPreset("imageB", "imageA", "MFF", "realmff"),
    "mfi-whu": FolderPreset("source_2", "source_1", "MFF"),
    "scie": FolderPreset("oe", "ue", "MEF"),
    "tno": FolderPreset("vi", "ir", "IVF"),
    "roadscene": FolderPreset("vi", "ir", "IVF"),
    "mefb_train": FolderPreset("over", "under", "MEF"),
    "mfifb_train": FolderPreset("a", "b", "MFF"),
}

_FOLDER_KEYS = {"root", "sub_a", "sub_b", "task", "crop", "gray", "partner", "pad_mode", "cache", "split", "dev_every"}
_SYNTH_KEYS = {"images", "folder", "root", "task", "crop", "length", "gray", "pad_mode"}


def build_dataset(cfg: dict) -> Any:
    """Build a dataset from a config mapping (see :func:`_build_base_dataset` for the kinds).

    An optional ``degrade: {task, n: [1, 3], p, seed, types, n_probs, prompt_dropout}`` key wraps the
    dataset in :class:`unifuse.data.degrade.dataset.DegradedDataset` (degraded ``A``/``B``, clean
    ``A_clean``/``B_clean``, ``prompt``, ``degradations``; spec ``mmaif.md`` §1).
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"dataset config must be a mapping, got {type(cfg).__name__}")
    c = dict(cfg)
    degrade = c.pop("degrade", None)
    ds = _build_base_dataset(c)
    if degrade is None or degrade is False:
        return ds
    from .degrade.dataset import DegradedDataset

    return DegradedDataset(ds, degrade)


def _build_base_dataset(cfg: dict) -> Union[PairFolderDataset, SyntheticPairDataset]:
    """Build a dataset from a config mapping.

    * ``{type: folder, root, sub_a, sub_b, task, crop: 64, gray: true, partner: null|same|realmff, pad_mode, cache,
      split: all|train|dev, dev_every: 8}``;
      ``preset: <name>`` (one of ``FOLDER_PRESETS``) fills ``sub_a``/``sub_b``/``task``/``partner``,
      and ``type: <preset name>`` is a shortcut for ``type: folder, preset: <name>``;
    * ``{type: synthetic, task: MFF|MEF, images|folder|root: <path or list>, crop, length, gray, pad_mode}``
      (``root`` is an alias of ``folder``; no source -> built-in samples).
    Unknown keys raise :class:`ConfigError`.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"dataset config must be a mapping, got {type(cfg).__name__}")
    c = dict(cfg)
    kind = str(c.pop("type", "folder")).lower()
    if kind in FOLDER_PRESETS:
        c.setdefault("preset", kind)
        kind = "folder"
    if kind == "folder":
        preset = c.pop("preset", None)
        if preset is not None:
            key = str(preset).lower()
            if key not in FOLDER_PRESETS:
                raise ConfigError(f"unknown dataset preset {preset!r}; available: {', '.join(FOLDER_PRESETS)}")
            p = FOLDER_PRESETS[key]
            for f in fields(p):
                if getattr(p, f.name) is not None:
                    c.setdefault(f.name, getattr(p, f.name))
        unknown = set(c) - _FOLDER_KEYS
        if unknown:
            raise ConfigError(f"folder dataset: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_FOLDER_KEYS))}")
        missing = [k for k in ("root", "sub_a", "sub_b", "task") if k not in c]
        if missing:
            raise ConfigError(f"folder dataset: missing key(s) {', '.join(missing)}")
        return PairFolderDataset(**c)
    if kind == "synthetic":
        unknown = set(c) - _SYNTH_KEYS
        if unknown:
            raise ConfigError(f"synthetic dataset: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_SYNTH_KEYS))}")
        given = {k: v for k in ("images", "folder", "root") if (v := c.pop(k, None)) is not None}
        if len(given) > 1:
            raise ConfigError(f"synthetic dataset: give only one of images/folder/root, got {', '.join(given)}")
        return SyntheticPairDataset(next(iter(given.values()), None), **c)
    raise ConfigError(f"unknown dataset type {kind!r}; available: folder, synthetic, {', '.join(FOLDER_PRESETS)}")


def build_task_datasets(cfg: dict) -> dict[str, list]:
    """``{task: cfg | [cfg, ...]}`` -> ``{task: [dataset, ...]}`` (task keys canonicalised, order kept).

    A dataset config without ``task`` inherits its key; one whose task differs from its key is an error.
    """
    if not isinstance(cfg, dict) or not cfg:
        raise ConfigError("datasets config must be a non-empty mapping task -> dataset config(s)")
    out: dict[str, list] = {}
    for key, entries in cfg.items():
        task = canonical_task(key)
        items = entries if isinstance(entries, (list, tuple)) else [entries]
        built = []
        for e in items:
            e = dict(e)
            if "task" in e and canonical_task(e["task"]) != task:
                raise ConfigError(f"dataset listed under {key!r} declares task {e['task']!r}")
            ds = build_dataset(e)
            if ds.task != task:
                raise ConfigError(f"dataset {ds!r} listed under {key!r} has task {ds.task!r}")
            built.append(ds)
        out.setdefault(task, []).extend(built)
    return out
