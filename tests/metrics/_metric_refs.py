"""Reference-file helpers shared by the metric tests (on sys.path via tests/conftest.py)."""

from __future__ import annotations

import csv
from pathlib import Path

from unifuse.metrics import to_tensor


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def triple_paths(data_dir: Path, dataset: str, image: str, method: str):
    """Paths of (ir, vi, fused) in ``vifb_dev`` (jpg) or ``vifb_dev_crops`` (png, dataset 'VIFB-crop')."""
    base, ext = (data_dir / "vifb_dev_crops", "png") if dataset == "VIFB-crop" else (data_dir / "vifb_dev", "jpg")
    return base / "ir" / f"{image}.{ext}", base / "vi" / f"{image}.{ext}", base / "fused" / method / f"{image}.{ext}"


def load_triple(data_dir: Path, dataset: str, image: str, method: str):
    """(ir, vi, fused) as (1, C, H, W) float64 0..255 tensors."""
    return tuple(to_tensor(p)[None] for p in triple_paths(data_dir, dataset, image, method))


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)
