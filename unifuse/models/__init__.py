"""Model registry: ``list_models()``, ``create_model()``, ``load_model()``.

A *fusion model* is an ``nn.Module`` whose ``forward(a, b)`` takes two float32 tensors
``(N, C, H, W)`` with values in ``[0, 1]`` and returns the fused ``(N, C, H, W)`` tensor.
It declares

* ``input_mode``: ``"luma"`` (C = 1: the pipeline feeds luma and restores colour with a
  chroma rule) or ``"rgb"`` (C = 3: the model fuses colour itself, e.g. exposure fusion);
* ``trainable``: whether it has learned weights.

Register new models from anywhere with :func:`register_model`; the factory receives
config keyword arguments and returns the module.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, WeightsError
from ..registry import Registry

MODELS: Registry[nn.Module] = Registry("model")
register_model = MODELS.register

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _ensure_builtin() -> None:
    # importing the modules registers them
    from . import baselines  # noqa: F401
    from . import tita  # noqa: F401
    from . import tcmoa  # noqa: F401
    from . import mmaif  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered models (learned networks and training-free baselines)."""
    _ensure_builtin()
    return MODELS.names()


def create_model(name: str, **config: Any) -> nn.Module:
    """Build a model with fresh (random or training-free) parameters."""
    _ensure_builtin()
    return MODELS.get(name).factory(**config)


def load_model(
    name: str,
    weights: Any = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    **config: Any,
) -> nn.Module:
    """Build a model, load weights, move it to ``device`` and put it in eval mode.

    Args:
        name: registry name (see :func:`list_models`).
        weights: ``None`` (the weights shipped with the package, if any; otherwise the
            model keeps its initialisation and a warning is issued), ``"random"`` (keep the
            initialisation), a path (``.safetensors``, ``.pth``/``.pt``), a training run
            folder (``unifuse train --out DIR``: its ``model.json`` gives the architecture and
            the EMA weights are loaded) or an in-memory state dict. Official checkpoints are accepted where the model supports them.
        device: torch device.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (GPU only). Reduced precision is
            used internally; inputs and outputs stay float32. ``"bf16"`` on a CPU without
            native bf16 runs in fp32 instead, with a one-time notice
            (:func:`unifuse.models.precision.resolve_precision`).
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dev = torch.device(device)
    if precision == "fp16" and dev.type == "cpu":
        raise ConfigError("precision 'fp16' needs a GPU device; use 'bf16' on CPU")
    if isinstance(weights, (str, os.PathLike)) and os.path.isdir(weights):
        name, run_config, weights = read_run_dir(weights, name)
        config = {**run_config, **config}
    model = create_model(name, **config)
    if weights is None:
        shipped = getattr(model, "default_weights", None)
        path = shipped() if callable(shipped) else None
        if path is not None:
            model.load_weights(path)
        elif getattr(model, "trainable", False):
            warnings.warn(f"no shipped weights for {name!r}: the network is randomly initialised", stacklevel=2)
    elif not (isinstance(weights, str) and weights == "random"):
        if not hasattr(model, "load_weights"):
            raise ConfigError(f"model {name!r} has no learned weights to load")
        model.load_weights(weights)
    model.eval()
    model.to(dev)
    if getattr(model, "trainable", False):  # training-free rules compute in float32 anyway
        from .precision import resolve_precision

        precision = resolve_precision(precision, dev)
    if hasattr(model, "set_precision"):
        model.set_precision(precision)
    elif precision != "fp32":
        raise ConfigError(f"model {name!r} does not support precision {precision!r}")
    return model


def read_run_dir(folder: str | os.PathLike, name: str) -> tuple[str, dict[str, Any], Path]:
    """``(model name, config, EMA weights path)`` of a training run folder.

    A finished run is described by its ``model.json``; a run still in progress (or stopped)
    by its newest checkpoint (``checkpoints/latest.json``), whose EMA weights are used.
    """
    _ensure_builtin()
    folder = Path(folder)
    meta_path = folder / "model.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            run_name, cfg = meta["model"], dict(meta.get("config", {}))
            weights = folder / meta.get("weights", {}).get("ema", "model_ema.safetensors")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WeightsError(f"{meta_path}: unreadable run description ({exc})") from None
    else:
        from ..training.checkpoint import latest_checkpoint

        ckpt = latest_checkpoint(folder / "checkpoints") if (folder / "checkpoints").is_dir() else None
        if ckpt is None:
            raise WeightsError(f"{folder}: not a training run folder (no model.json and no checkpoint under "
                               f"{folder / 'checkpoints'})")
        try:
            model_cfg = dict(json.loads((ckpt / "state.json").read_text())["state"]["config"]["model"])
            run_name = model_cfg.pop("name")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WeightsError(f"{ckpt / 'state.json'}: unreadable checkpoint description ({exc})") from None
        cfg, weights = model_cfg, ckpt / "ema.safetensors"
    if MODELS.get(run_name).tags.get("family", run_name) != MODELS.get(name).tags.get("family", name):
        raise ConfigError(f"{folder} holds a {run_name!r} model, not {name!r}")
    return run_name, cfg, weights
