"""MMAIF weights: a safetensors file of ``MMAIF.state_dict()`` with the resolved
:class:`MMAIFConfig` as JSON in the metadata (key ``"config"``, format ``unifuse-mmaif-1``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ...errors import WeightsError
from ..tita.checkpoint import read_weights

__all__ = ["load_mmaif_weights", "save_mmaif_weights", "read_weights", "read_config", "shipped_weights_path"]

_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


SHIPPED_FILE = "mmaif_small.safetensors"


def shipped_weights_path() -> Path | None:
    """The MMAIF weights shipped with the package (``unifuse/weights/mmaif_small.safetensors``, a
    CPU-trained ``small`` regression model; card: ``docs/mmaif_model_card.md``), or ``None``."""
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
    if cfg is not None:
        mine = model.config.to_dict()
        diff = {k: (cfg.get(k), v) for k, v in mine.items() if k in cfg and cfg[k] != v}
        if diff:
            raise WeightsError(f"{source}: weights were trained with a different config: "
                               + ", ".join(f"{k}={a!r} (model has {b!r})" for k, (a, b) in list(diff.items())[:6])
                               + "; build the model from the file's config (unifuse fuse does this)")
    own = model.state_dict()
    missing = sorted(k for k in own if k not in sd)
    unexpected = sorted(k for k in sd if k not in own)
    if strict and (missing or unexpected):
        parts = ([f"missing keys: {', '.join(missing[:6])}"] if missing else []) + (
            [f"unexpected keys: {', '.join(unexpected[:6])}"] if unexpected else [])
        raise WeightsError(f"{source}: weights do not fit this model ({'; '.join(parts)})")
    bad = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sd if k in own and sd[k].shape != own[k].shape]
    if bad:
        raise WeightsError(f"{source}: shape mismatch for {len(bad)} tensor(s): {'; '.join(bad[:4])}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items() if k in own}, strict=False)


def save_mmaif_weights(model: torch.nn.Module, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model.state_dict()`` + config metadata to a safetensors file (atomically)."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"config": json.dumps(model.config.to_dict()), "format": "unifuse-mmaif-1"}
    meta.update(extra_metadata or {})
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path
