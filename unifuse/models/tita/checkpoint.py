"""Loading and saving TITA weights: our safetensors format and the official key layout.

Our format is a safetensors file of ``TITA.state_dict()`` with the resolved
:class:`TITAConfig` as JSON in the metadata (key ``"config"``). Official checkpoints
(``{iter}_E.pth``; raw or wrapped under ``state_dict`` / ``params`` / ``params_ema``) are
mapped key by key; their deterministic buffers (``attn_mask``,
``relative_position_index``, ``hamming_highpass``) are dropped since we regenerate them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from ...errors import WeightsError

_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
_BUFFER_SUFFIXES = (".attn_mask", ".relative_position_index", ".hamming_highpass")
_OFFICIAL_RULES = [
    (re.compile(r"^(layers_(?:Ex_A|Ex_B|Re))\.0\.residual_group\."), r"\1."),
    (re.compile(r"^layers_Fusion\.(\d+)\.residual_group\.blocks\.(\d+)\."), r"layers_Fusion.\1.cross.\2."),
    (re.compile(r"^(layers_Fusion\.\d+\.cross\.\d+)\.(cross_attn_0_to_1|cross_attn_1_to_0|relation_judger|k_noise|v_noise)\."),
     r"\1.interaction.\2."),
    (re.compile(r"^(weight_gen|fafb_A|fafb_B)\."), r"fusion_head.\1."),
]


def shipped_weights_path() -> Path | None:
    """The TITA weights shipped with the package, or ``None`` if this build has none."""
    p = _WEIGHTS_DIR / "tita.safetensors"
    return p if p.is_file() else None


def is_official_layout(sd: Mapping[str, Any]) -> bool:
    return any(".residual_group." in k for k in sd)


def from_official(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key names -> ours (buffers dropped)."""
    out = {}
    for k, v in sd.items():
        if k.endswith(_BUFFER_SUFFIXES):
            continue
        for pat, rep in _OFFICIAL_RULES:
            k = pat.sub(rep, k)
        out[k] = v
    return out


def unwrap(obj: Any, source: str) -> Mapping[str, torch.Tensor]:
    """Return the state dict inside a checkpoint object (raw or wrapped)."""
    if isinstance(obj, Mapping):
        for key in ("params_ema", "params", "state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(torch.is_tensor(v) for v in inner.values()):
                return inner
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return obj
    raise WeightsError(f"{source}: not a state dict (expected tensors, raw or under 'state_dict'/'params'/'params_ema')")


def read_weights(weights: Any) -> tuple[Mapping[str, torch.Tensor], dict[str, Any] | None, str]:
    """``(state_dict, config-or-None, source name)`` from a path or an in-memory dict."""
    if isinstance(weights, (str, Path)):
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        try:
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as f:
                    meta = f.metadata() or {}
                    sd = {k: f.get_tensor(k) for k in f.keys()}
                cfg = json.loads(meta["config"]) if "config" in meta else None
                return sd, cfg, str(path)
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except WeightsError:
            raise
        except Exception as exc:  # corrupt / unsupported file
            raise WeightsError(f"{path}: cannot read weights ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
        return unwrap(obj, str(path)), None, str(path)
    if isinstance(weights, Mapping):
        return unwrap(weights, "state dict"), None, "state dict"
    raise WeightsError(f"weights must be a path or a state dict, got {type(weights).__name__}")


def _describe(keys: list[str], n: int = 6) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_tita_weights(model: torch.nn.Module, weights: Any, strict: bool = True) -> None:
    """Load weights into ``model``; raise :class:`WeightsError` naming keys that do not fit."""
    sd, cfg, source = read_weights(weights)
    if cfg is not None:
        mine = model.config.to_dict()
        diff = {k: (cfg.get(k), v) for k, v in mine.items() if k in cfg and cfg[k] != v}
        if diff:
            raise WeightsError(f"{source}: weights were trained with a different config: "
                               + ", ".join(f"{k}={a!r} (model has {b!r})" for k, (a, b) in diff.items()))
    if is_official_layout(sd):
        sd = from_official(sd)
    sd = {k: v for k, v in sd.items() if not k.endswith(_BUFFER_SUFFIXES)}
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing keys: {_describe(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_describe(unexpected)}")
        raise WeightsError(f"{source}: weights do not fit this model ({'; '.join(parts)})")
    bad = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sd if k in own and sd[k].shape != own[k].shape]
    if bad:
        raise WeightsError(f"{source}: shape mismatch for {len(bad)} tensor(s): {'; '.join(bad[:4])}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items() if k in own}, strict=False)


def save_tita_weights(model: torch.nn.Module, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model.state_dict()`` + config metadata to a safetensors file (atomically)."""
    import os

    from safetensors.torch import save_file

    path = Path(path)
    meta = {"config": json.dumps(model.config.to_dict()), "format": "unifuse-tita-1"}
    meta.update(extra_metadata or {})
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path
