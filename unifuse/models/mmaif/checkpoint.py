"""MMAIF weights: a safetensors file of ``MMAIF.state_dict()`` with the resolved
:class:`MMAIFConfig` as JSON in the metadata (key ``"config"``, format ``unifuse-mmaif-1``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...errors import WeightsError
from ..weights_io import check_config, check_fit, load_known, read_weights, save_weights

__all__ = ["load_mmaif_weights", "save_mmaif_weights", "read_weights", "read_config", "shipped_weights_path"]

_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


SHIPPED_FILE = "mmaif_small.safetensors"


def shipped_weights_path() -> Path | None:
    """The MMAIF weights shipped with the package (``unifuse/weights/mmaif_small.safetensors``, a
    CPU-trained ``small`` model with a regression and a flow DiT; card: ``docs/mmaif_model_card.md``),
    or ``None``."""
    p = _WEIGHTS_DIR / SHIPPED_FILE
    return p if p.is_file() else None


def read_config(path: str | Path) -> dict[str, Any]:
    """The config stored in a weights file (to build the matching model before loading)."""
    _, cfg, source = read_weights(path)
    if cfg is None:
        raise WeightsError(f"{source}: no MMAIF config in the file's metadata")
    return cfg


def load_mmaif_weights(model: torch.nn.Module, weights: Any, strict: bool = True) -> None:
    """Load weights into ``model``; raise :class:`WeightsError` naming what does not fit."""
    sd, cfg, source = read_weights(weights)
    check_config(cfg, model.config.to_dict(), source,
                 hint="; build the model from the file's config (unifuse fuse does this)")
    own = model.state_dict()
    missing, unexpected = ([k for k in own if k not in sd], [k for k in sd if k not in own]) if strict else ((), ())
    check_fit(sd, own, source, missing, unexpected)
    load_known(model, sd, own)


def save_mmaif_weights(model: torch.nn.Module, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model.state_dict()`` + config metadata to a safetensors file (atomically)."""
    return save_weights(model, path, "unifuse-mmaif-1", extra_metadata)
