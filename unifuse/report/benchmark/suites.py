"""What the benchmark report evaluates: the VIFB development set and the dev splits.

* :func:`vifb_suite` — ``DATA/vifb_dev``: ``vi/``, ``ir/`` and ``fused/<method>/`` (the
  published methods' fused images), paired by file stem. Evaluated in VIFB's order
  ``(A = visible, B = infrared, fused)``.
* :func:`dev_suite` — the held-out ``split="dev"`` pairs (every 8th pair, never trained on) of
  a :data:`~unifuse.data.datasets.FOLDER_PRESETS` layout under ``DATA``.

A missing or incomplete folder raises :class:`~unifuse.errors.InputMismatchError` /
:class:`~unifuse.errors.ImageReadError` with a one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ...errors import ImageReadError, InputMismatchError

#: the metrics TITA's paper reports (registry names), in its column order
PAPER_METRICS = ("mi", "fmi", "qabf", "qp", "qw", "vif", "sd", "ei", "ssim")
#: extra metrics per task (MEF: MEFB's MEF-SSIM)
TASK_METRICS = {"MEF": ("mef_ssim",)}
#: dev splits reported: (preset name, folder under DATA)
DEV_SPLITS = (("tno", "ivf/tno"), ("roadscene", "ivf/roadscene"), ("mefb_train", "mef/mefb_train"),
              ("mfifb_train", "mff/mfifb_train"))


@dataclass
class Pair:
    """One source pair: ``a``/``b`` in the order the metrics and the fuser receive them."""

    stem: str
    a: Path
    b: Path


@dataclass
class Suite:
    """A named list of pairs (plus the published fused images, for VIFB)."""

    name: str
    task: str
    pairs: list[Pair]
    sub_a: str
    sub_b: str
    published: dict[str, dict[str, Path]] = field(default_factory=dict)  # method -> stem -> file

    def metrics(self, base: Sequence[str] = PAPER_METRICS) -> list[str]:
        return list(base) + [m for m in TASK_METRICS.get(self.task, ()) if m not in base]


def check_data_dir(data: Path) -> Path:
    data = Path(data)
    if not data.is_dir():
        raise ImageReadError(f"{data}: data folder not found (pass --data DIR, the shared benchmark data)")
    return data


def _images(folder: Path) -> dict[str, Path]:
    from ...data.datasets import list_images

    if not folder.is_dir():
        raise ImageReadError(f"{folder}: folder not found (incomplete benchmark data)")
    out: dict[str, Path] = {}
    for p in list_images(folder):
        if p.stem in out:
            raise InputMismatchError(f"{folder}: two images with the stem {p.stem!r} ({out[p.stem].name}, {p.name})")
        out[p.stem] = p
    return out


def vifb_suite(data: Path, name: str = "vifb_dev", methods: Optional[Sequence[str]] = None,
               images: Optional[Sequence[str]] = None) -> Suite:
    """The VIFB-layout folder ``data/name``; ``methods``/``images`` restrict it (tests)."""
    root = check_data_dir(data) / name
    vi, ir = _images(root / "vi"), _images(root / "ir")
    if set(vi) != set(ir):
        odd = sorted(set(vi) ^ set(ir))
        raise InputMismatchError(f"{root}: vi/ and ir/ do not hold the same images (unpaired: {', '.join(odd[:6])})")
    stems = sorted(vi)
    if images is not None:
        unknown = sorted(set(images) - set(stems))
        if unknown:
            raise InputMismatchError(f"{root}: no pair named {', '.join(unknown)}")
        stems = [s for s in stems if s in set(images)]
    if not stems:
        raise ImageReadError(f"{root}: no image pairs in vi/ and ir/")
    fused_root = root / "fused"
    if not fused_root.is_dir():
        raise ImageReadError(f"{fused_root}: folder not found (incomplete benchmark data)")
    names = sorted(d.name for d in fused_root.iterdir() if d.is_dir()) if methods is None else list(methods)
    published: dict[str, dict[str, Path]] = {}
    for m in names:
        files = _images(fused_root / m)
        missing = [s for s in stems if s not in files]
        if missing:
            raise InputMismatchError(f"{fused_root / m}: no fused image for {', '.join(missing)} (incomplete folder)")
        published[m] = {s: files[s] for s in stems}
    pairs = [Pair(s, vi[s], ir[s]) for s in stems]
    return Suite(name, "IVF", pairs, "vi", "ir", published)


def dev_suite(data: Path, preset: str, folder: str, max_pairs: Optional[int] = None) -> Suite:
    """The ``split="dev"`` pairs of ``data/folder`` with the sub-folders of ``preset``."""
    from ...data.datasets import FOLDER_PRESETS, PairFolderDataset

    root = check_data_dir(data) / folder
    if not root.is_dir():
        raise ImageReadError(f"{root}: folder not found (incomplete benchmark data)")
    p = FOLDER_PRESETS[preset]
    ds = PairFolderDataset(root, p.sub_a, p.sub_b, p.task, crop=None, partner=p.partner, split="dev")
    pairs = [Pair(a.stem, a, b) for a, b in ds.pairs][:max_pairs]
    return Suite(preset, ds.task, pairs, p.sub_a, p.sub_b)
