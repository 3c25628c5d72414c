"""TC-MoA stage 0 (``tcmoa.md`` §9.3, [PROPOSAL]): pretrain the MAE backbone as a masked autoencoder.

MAE weights cannot be downloaded here, so a CPU model gets its frozen "foundation" backbone
from the training images themselves. Every source image of every task (A and B of each batch)
is reconstructed from itself by the backbone alone (patch embedding, encoder, ``decoder_embed``,
decoder, ``decoder_pred``; no TC-MoA modules, which stay at their initialisation):

* masking: a random ``mask_ratio`` of the input patches (the network's P×P patches, in input
  pixels P / 2 with the ×2 upsampling) is hidden; the windowed attention needs the full token
  grid, so instead of dropping tokens as MAE does, ``mask_mode: pixel`` (default) sets the
  patches to 0 in ImageNet-normalised space (the mean colour) and ``mask_mode: token`` zeroes
  their patch embeddings (the network's ``forward_backbone(x, token_mask)``);
* loss: L1 between the reconstruction (the network's output resize back to H×W) and the
  unmasked normalised image, over all pixels (``loss_on: all``) or the masked patches only
  (``loss_on: masked``, MAE's choice);
* AdamW (``optimizer``), linear warm-up over ``warmup_iterations`` then cosine to ``min_lr``
  at ``iterations``; the relative-position tables train with the backbone.

At every checkpoint and at the end the run folder gets ``mae_backbone.safetensors``: the backbone and the relative-
position tables under the official MAE key names plus the network config as metadata, which
``objective: {name: tcmoa, backbone: RUN_FOLDER}`` (or ``load_model("tcmoa", ...)``'s MAE
loading) loads and freezes (stage 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..schedule import set_lr, warmup_cosine_lr
from . import register_objective
from .base import Objective, check_params
from .tcmoa import MAE_BACKBONE_FILE, decay_groups

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TrainConfig
    from ..trainer import StepResult, Trainer

LOSS_ON = ("all", "masked")
MASK_MODES = ("pixel", "token")


@dataclass(frozen=True)
class MAEParams:
    """``objective: {name: tcmoa_mae, ...}`` keys."""

    mask_ratio: float = 0.25
    mask_mode: str = "pixel"  # pixel: masked patches set to the mean colour | token: their embeddings zeroed
    loss_on: str = "all"
    warmup_iterations: int = 100
    min_lr: float = 1e-5


def backbone_reconstruct(net: nn.Module, img: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The backbone alone (no TC-MoA modules) on normalised ``img`` (B, 3, H, W) -> decoder output
    (B, 3, pH·P, pW·P), normalised (the network's ``forward_backbone``; ``token_mask`` (B, N) hides tokens)."""
    return net.forward_backbone(img, token_mask)


def patch_mask(shape: Sequence[int], patch: int, ratio: float, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, 1, H, W) bool mask, True on exactly ``round(ratio · n)`` random ``patch``×``patch`` patches per image."""
    B, _, H, W = shape
    gh, gw = H // patch, W // patch
    n = gh * gw
    k = int(round(ratio * n))
    order = torch.rand(B, n, generator=generator).argsort(dim=1)
    m = torch.zeros(B, n, dtype=torch.bool)
    m.scatter_(1, order[:, :k], True)
    m = m.view(B, 1, gh, gw).repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    return m.to(device)


class _Reconstruct(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, img: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        return backbone_reconstruct(self.net, img, token_mask)


def backbone_state_dict(net: nn.Module) -> Dict[str, torch.Tensor]:
    """The MAE-layout part of a TC-MoA state dict: backbone keys and relative-position tables."""
    keep = lambda k: net.is_backbone_key(k) or k.startswith(("en_relative_position.", "de_relative_position."))  # noqa: E731
    return {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items() if keep(k)}


def save_backbone(net: nn.Module, path: Path, extra: Dict[str, str] | None = None) -> Path:
    """Write :func:`backbone_state_dict` with the network config in the metadata, atomically."""
    import json
    import os

    from safetensors.torch import save_file

    meta = {"config": json.dumps(net.config.to_dict()), "format": "unifuse-tcmoa-mae-1", **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(backbone_state_dict(net), str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


@register_objective("tcmoa_mae", "TC-MoA stage 0: masked-autoencoder pretraining of the backbone on the training images")
class MAEObjective(Objective):
    name = "tcmoa_mae"
    ddp_find_unused = True  # the TC-MoA modules get no gradient here

    def __init__(self, cfg: "TrainConfig"):
        super().__init__(cfg)
        self.p = MAEParams(**check_params("tcmoa_mae", cfg.objective.params, MAEParams()))
        if not 0 <= self.p.mask_ratio < 1:
            raise ConfigError(f"objective tcmoa_mae: mask_ratio must be in [0, 1), got {self.p.mask_ratio}")
        if self.p.mask_mode not in MASK_MODES:
            raise ConfigError(f"objective tcmoa_mae: mask_mode must be one of {list(MASK_MODES)}, got {self.p.mask_mode!r}")
        if self.p.loss_on not in LOSS_ON:
            raise ConfigError(f"objective tcmoa_mae: loss_on must be one of {list(LOSS_ON)}, got {self.p.loss_on!r}")
        if self.p.loss_on == "masked" and self.p.mask_ratio == 0:
            raise ConfigError("objective tcmoa_mae: loss_on masked needs mask_ratio > 0")
        if cfg.model.get("name") != "tcmoa":
            raise ConfigError(f"objective tcmoa_mae needs model.name: tcmoa, got {cfg.model.get('name')!r}")

    def build_model(self, device: torch.device) -> nn.Module:
        model = super().build_model(device)
        model.freeze_backbone(False)  # everything trainable; only the backbone gets gradients
        return model

    def trainable_parameters(self, model: nn.Module) -> List[nn.Parameter]:
        return list(backbone_params(model).values())

    def build_optimizer(self, model: nn.Module, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
        o = self.cfg.optimizer
        ids = {id(p) for p in params}
        groups = [{"params": [p for p in g["params"] if id(p) in ids], "weight_decay": g["weight_decay"]} for g in decay_groups(model, o.weight_decay)]
        return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps)

    def setup(self, trainer: "Trainer") -> None:
        unit = trainer.model.config.unit
        if self.cfg.crop_size % unit:
            raise ConfigError(f"crop_size {self.cfg.crop_size} must be a multiple of {unit} for this TC-MoA config")

    def forward_module(self, model: nn.Module) -> nn.Module:
        return _Reconstruct(model)

    def log_fields(self, task_names: Sequence[str]) -> List[str]:
        return ["loss_recon"]

    def train_step(self, tr: "Trainer", batches: Dict[str, Dict[str, Any]]) -> "StepResult":
        from ..trainer import StepResult

        p, net = self.p, tr.model
        set_lr(tr.optimizer, warmup_cosine_lr(tr.step - 1, self.cfg.optimizer.lr, p.warmup_iterations, self.cfg.iterations, p.min_lr))
        tr.optimizer.zero_grad(set_to_none=True)
        imgs = torch.cat([net.normalize(batches[n][s]) for n in tr.task_names for s in ("A", "B")])
        unit = net.config.patch_size // (2 if net.config.upsample else 1)
        mask = patch_mask(imgs.shape, max(unit, 1), p.mask_ratio, device=imgs.device)  # global torch RNG (checkpointed)
        if p.mask_mode == "token":  # the network's own token mask (patch embeddings zeroed)
            dec = tr.forward_net(imgs, mask[:, 0, ::unit, ::unit].flatten(1))
        else:
            dec = tr.forward_net(imgs.masked_fill(mask, 0.0))
        size = imgs.shape[-2:]
        rec = F.interpolate(dec, size=size, mode="area") if net.config.output_resize == "area" else F.interpolate(dec, size=size)
        err = (rec - imgs).abs()
        if p.loss_on == "masked":
            m = mask.expand_as(err)
            loss = err[m].mean()
        else:
            loss = err.mean()
        res = StepResult(tr.step, {"recon": float(loss.detach())})
        from .tcmoa import _all_ranks_finite

        if not _all_ranks_finite(tr.ctx, loss):
            tr._event("non-finite reconstruction loss; iteration skipped, weights unchanged")
            return tr._skip(res)
        loss.backward()
        tr.optimizer.step()
        tr.optimizer.zero_grad(set_to_none=True)
        tr._nonfinite_streak = 0
        tr.ema.update(tr.model)
        return res

    def on_checkpoint(self, trainer: "Trainer") -> None:  # a usable backbone while the run goes on
        self.export(trainer)

    def export(self, trainer: "Trainer") -> None:
        save_backbone(trainer.ema.module, trainer.out / MAE_BACKBONE_FILE, {"step": str(trainer.step)})


def backbone_params(model: nn.Module) -> Dict[str, nn.Parameter]:
    """Trainable parameters of the MAE path: backbone (sin-cos tables excluded) and relative tables."""
    return {n: p for n, p in model.named_parameters()
            if p.requires_grad and (model.is_backbone_key(n) or n.startswith(("en_relative_position.", "de_relative_position.")))}


__all__ = ["MAEObjective", "MAEParams", "backbone_reconstruct", "patch_mask", "backbone_state_dict", "save_backbone"]
