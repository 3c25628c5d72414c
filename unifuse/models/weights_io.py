"""Reading, checking and writing model weights: what every model's ``checkpoint.py`` shares.

Our format is a safetensors file of ``model.state_dict()`` with the model's resolved config
as JSON in the metadata (key ``"config"``) and a ``"format"`` tag. Other checkpoints
(``.pth``/``.pt``, raw or wrapped under one of a model's wrapper keys) are read with
``torch.load(weights_only=True)``: no code runs while loading. Key-name mapping and which
keys may be missing are the model's business; the checks and messages here are shared.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from ..errors import WeightsError

#: wrapper keys tried, in order, when a checkpoint object is not a state dict itself
DEFAULT_WRAPPERS = ("params_ema", "params", "state_dict", "model")


def unwrap_state_dict(obj: Any, source: str, wrappers: Sequence[str] = DEFAULT_WRAPPERS) -> Mapping[str, torch.Tensor]:
    """The state dict inside a checkpoint object: ``obj`` itself or ``obj[w]`` for the first fitting wrapper."""
    if isinstance(obj, Mapping):
        for key in wrappers:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(torch.is_tensor(v) for v in inner.values()):
                return inner
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return obj
    under = "/".join(f"'{w}'" for w in wrappers)
    raise WeightsError(f"{source}: not a state dict (expected tensors, raw or under {under})")


def read_weights(weights: Any, wrappers: Sequence[str] = DEFAULT_WRAPPERS
                 ) -> tuple[Mapping[str, torch.Tensor], dict[str, Any] | None, str]:
    """``(state dict, our config or None, source name)`` from a path or an in-memory dict.

    Raises:
        WeightsError: missing or unreadable file (one line), or no state dict inside.
    """
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        try:
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as f:
                    meta = f.metadata() or {}
                    sd = {k: f.get_tensor(k) for k in f.keys()}
                return sd, (json.loads(meta["config"]) if "config" in meta else None), str(path)
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt / unsupported file / pickled code refused by weights_only
            raise WeightsError(f"{path}: cannot read weights ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
        return unwrap_state_dict(obj, str(path), wrappers), None, str(path)
    if isinstance(weights, Mapping):
        return unwrap_state_dict(weights, "state dict", wrappers), None, "state dict"
    raise WeightsError(f"weights must be a path or a state dict, got {type(weights).__name__}")


def describe_keys(keys: Iterable[str], n: int = 6) -> str:
    """The first ``n`` sorted keys, comma-separated, with a ``(+k more)`` tail."""
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def check_config(saved: dict[str, Any] | None, model_config: dict[str, Any], source: str,
                 ignore: Iterable[str] = (), hint: str = "") -> None:
    """Refuse weights saved with a config that differs from the model's (fields in ``ignore`` excepted)."""
    if saved is None:
        return
    ignore = set(ignore)
    diff = {k: (saved[k], v) for k, v in model_config.items() if k in saved and saved[k] != v and k not in ignore}
    if diff:
        raise WeightsError(f"{source}: weights were saved with a different config: "
                           + ", ".join(f"{k}={a!r} (model has {b!r})" for k, (a, b) in list(diff.items())[:6]) + hint)


def check_fit(sd: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], source: str, missing: Sequence[str],
              unexpected: Sequence[str], what: str = "weights", suffix: str = "") -> None:
    """One :class:`WeightsError` naming the missing / unexpected keys, or the first shape mismatches."""
    if missing or unexpected:
        parts = ([f"missing keys: {describe_keys(missing)}"] if missing else []) + (
            [f"unexpected keys: {describe_keys(unexpected)}"] if unexpected else [])
        raise WeightsError(f"{source}: {what} do not fit this model ({'; '.join(parts)}){suffix}")
    bad = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sd if k in own and sd[k].shape != own[k].shape]
    if bad:
        raise WeightsError(f"{source}: shape mismatch for {len(bad)} tensor(s): {'; '.join(bad[:4])}{suffix}")


def load_known(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> None:
    """Copy the tensors of ``sd`` that ``model`` has (``own`` = its state dict) in the model's dtypes."""
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items() if k in own}, strict=False)


def save_weights(model: torch.nn.Module, path: str | os.PathLike, fmt: str,
                 extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model.state_dict()`` + ``model.config`` (JSON) + ``fmt`` to safetensors, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"config": json.dumps(model.config.to_dict()), "format": fmt}
    meta.update(extra_metadata or {})
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path
