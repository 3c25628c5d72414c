"""Loading and saving TC-MoA weights (spec §9.2).

Accepted sources (a path or an in-memory dict; files are read with ``weights_only=True``
or as safetensors, so loading never runs code):

* an official TC-MoA checkpoint, ``{"model": state_dict}`` or the raw state dict, in the
  current key layout or the older one (``blocks_SSF_rgb``, ``SE_en_linear``, ``SSF_beta``,
  ``en_projAdapter`` …), converted on the fly;
* an MAE pretraining checkpoint (backbone only): the TC-MoA parts keep their initialisation;
* our safetensors file (``save_tcmoa_weights``: state dict + config in the metadata).

Official checkpoints lack the source embeddings (``modal_shifts``; spec §4.5): the seeded
initial values are kept and one warning says so. Loaded backbone parameters are frozen.
Keys of the official loss modules (``MaxGradLoss.*`` …) and MAE's ``mask_token`` are ignored.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from ..weights_io import check_config, check_fit, load_known, save_weights
from ..weights_io import read_weights as _read_weights

_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
#: state-dict keys of the official network that are not part of it (loss helpers, MAE mask token)
_IGNORED = re.compile(r"^(mask_token$|MaxGradLoss\.|MaxPixelLoss\.|PixelLoss\.|MFFselect\.|msssim_loss\.|MEFSSIM\.|mse\.)")
#: buffers we regenerate (allowed to be missing in any checkpoint)
_BUFFERS = re.compile(r"(\.relative_position_index|\.MoA\.mean|\.MoA\.std)$")
_SOURCE_EMB = re.compile(r"\.modal_shifts\.\d+$")
#: config fields that only change how inference runs, not what the weights mean
_RUNTIME_FIELDS = {"packed_linear", "geometry", "tile_overlap", "output_resize", "router_mix_mode"}
_LEGACY_RULES = [
    (re.compile(r"blocks_SSF_rgb"), "blocks_MoA"),
    (re.compile(r"^((?:decoder_)?blocks_MoA\.\d+\.)mlp\."), r"\1MoA."),
    (re.compile(r"SE_en_linear"), "dimReduction"),
    (re.compile(r"SSF_beta"), "modal_shifts"),
    (re.compile(r"^en_projAdapter\."), "FusionLayer."),
    (re.compile(r"^de_projAdapter\."), "de_FusionLayer."),
]


def shipped_weights_path(name: str = "tcmoa") -> Path | None:
    """Weights shipped with the package for the registry name ``name``
    (``weights/<name>.safetensors``: ``tcmoa`` = the large preset, ``tcmoa_small`` ...), or ``None``."""
    p = _WEIGHTS_DIR / f"{name}.safetensors"
    return p if p.is_file() else None


def is_legacy_layout(sd: Mapping[str, Any]) -> bool:
    return any(k.startswith(("blocks_SSF_rgb", "decoder_blocks_SSF_rgb", "en_projAdapter", "de_projAdapter")) for k in sd)


def from_legacy(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Older official key names -> current official names (the official converter's substitutions)."""
    out = {}
    for k, v in sd.items():
        for pat, rep in _LEGACY_RULES:
            k = pat.sub(rep, k)
        out[k] = v
    return out


#: wrapper keys of official TC-MoA files, in the order tried
_WRAPPERS = ("model", "state_dict", "params_ema", "params")


def read_weights(weights: Any) -> tuple[Mapping[str, torch.Tensor], dict[str, Any] | None, str]:
    """``(state dict, our config or None, source name)`` from a path or an in-memory dict."""
    return _read_weights(weights, _WRAPPERS)


def _guess_preset(sd: Mapping[str, torch.Tensor]) -> str:
    w = sd.get("patch_embed.proj.weight")
    if w is None:
        return ""
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.") and k.endswith(".norm1.weight")})
    return f" (the checkpoint has patch {w.shape[-1]}, embed_dim {w.shape[0]}, depth {depth})"


def load_tcmoa_weights(model: torch.nn.Module, weights: Any, strict: bool = True) -> dict[str, list[str]]:
    """Load ``weights`` into a :class:`~.network.TCMoA`.

    A checkpoint with TC-MoA keys must fit the whole network (only the source embeddings and
    regenerated buffers may be missing); a backbone-only (MAE) checkpoint must fit the
    backbone. Anything else raises one :class:`WeightsError` listing the missing and
    unexpected keys. Loaded backbone parameters are frozen (``requires_grad = False``).

    Returns ``{"missing": [...], "ignored": [...]}`` (keys kept at their initial values /
    checkpoint keys not used).
    """
    sd, cfg, source = read_weights(weights)
    check_config(cfg, model.config.to_dict(), source, ignore=_RUNTIME_FIELDS)
    if is_legacy_layout(sd):
        sd = from_legacy(sd)
    ignored = [k for k in sd if _IGNORED.match(k)]
    sd = {k: v for k, v in sd.items() if not _IGNORED.match(k)}
    own = model.state_dict()
    backbone_only = not any(not model.is_backbone_key(k) and not k.startswith(("en_relative", "de_relative"))
                            for k in sd)
    unexpected = [k for k in sd if k not in own]
    if backbone_only:
        missing = [k for k in own if k not in sd and model.is_backbone_key(k)]
    else:
        missing = [k for k in own if k not in sd and not _SOURCE_EMB.search(k) and not _BUFFERS.search(k)]
    kind = "MAE backbone weights" if backbone_only else "TC-MoA weights"
    check_fit(sd, own, source, missing if strict else (), unexpected if strict else (), what=kind, suffix=_guess_preset(sd))
    load_known(model, sd, own)
    kept = [k for k in own if k not in sd]
    if not backbone_only and any(_SOURCE_EMB.search(k) for k in kept):
        warnings.warn(f"{source}: no source embeddings (modal_shifts) in the checkpoint, as in every official "
                      f"TC-MoA file; keeping the seeded N(0, 0.02²) values (seed {model.config.source_embed_seed})",
                      stacklevel=3)
    model.freeze_backbone(True)
    return {"missing": kept, "ignored": ignored}


def save_tcmoa_weights(model: torch.nn.Module, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model.state_dict()`` (official key names) + config metadata to safetensors, atomically."""
    return save_weights(model, path, "unifuse-tcmoa-1", extra_metadata)
