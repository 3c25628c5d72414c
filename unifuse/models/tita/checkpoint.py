"""Loading and saving TITA weights: our safetensors format and the official key layout.

Our format is a safetensors file of ``TITA.state_dict()`` with the resolved
:class:`TITAConfig` as JSON in the metadata (key ``"config"``). Official checkpoints
(``{iter}_E.pth``; raw or wrapped under ``state_dict`` / ``params`` / ``params_ema``) are
mapped key by key; their deterministic buffers (``attn_mask``,
``relative_position_index``, ``hamming_highpass``) are dropped since we regenerate them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch

from ..weights_io import check_config, check_fit, load_known, read_weights, save_weights

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


def load_tita_weights(model: torch.nn.Module, weights: Any, strict: bool = True) -> None:
    """Load weights into ``model``; raise :class:`WeightsError` naming keys that do not fit."""
    sd, cfg, source = read_weights(weights)
    check_config(cfg, model.config.to_dict(), source)
    if is_official_layout(sd):
        sd = from_official(sd)
    sd = {k: v for k, v in sd.items() if not k.endswith(_BUFFER_SUFFIXES)}
    own = model.state_dict()
    missing, unexpected = ([k for k in own if k not in sd], [k for k in sd if k not in own]) if strict else ((), ())
    check_fit(sd, own, source, missing, unexpected)
    load_known(model, sd, own)


def save_tita_weights(model: torch.nn.Module, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model.state_dict()`` + config metadata to a safetensors file (atomically)."""
    return save_weights(model, path, "unifuse-tita-1", extra_metadata)
