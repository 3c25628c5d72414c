"""TC-MoA's training recipe (``tcmoa.md`` §5, §6; the official ``engine_train.py`` loop).

One iteration (``step_mode: per_task``, the official default)::

    e_f = (step − 1) / iterations_per_epoch;  e = ⌊e_f⌋
    lr = warm-up (linear from 0 over warmup_epochs) then half-cycle cosine to min_lr at epochs, at e_f
    for each task t (IVF, MEF, MFF in config order):            # its own router k
        out = net.forward_features(norm(A_t), norm(B_t), k)       (train mode: noisy gating)
        F = recover_norm(nearest(out.decoder, H×W))               ∈ [0, 1]
        ℓ_t = TC-MoA loss of task t at epoch e (warm-up phase while e < warmup_epochs), with the
              prompts of every module and L_aux summed over the modules
        backward;  AdamW step;  zero grad
    EMA update (ema_decay 0 in the paper configs: the EMA copy equals the live weights, as the
    official run, whose EMA never reached the saved weights)

``step_mode: summed`` takes one step on ``Σ_t ℓ_t`` (cheaper on a CPU; not the official loop).

What trains (spec §6): with backbone weights (``backbone: MAE file or tcmoa_mae run folder``,
or ``weights: full TC-MoA checkpoint``) the loaded backbone is frozen and only the TC-MoA
modules, α and the relative-position tables train; without them (``freeze_backbone: auto``)
the random backbone trains too (spec §9.3). AdamW (betas and weight decay from
``optimizer``: 0.9/0.95, 0.05 in the paper configs) with no decay on biases and 1-D
parameters (norms, α, source embeddings), only trainable parameters, no clipping.

Data parallel: every rank computes its own loss on its slice and DDP averages the gradients,
as the official multi-GPU run (per-GPU batch of 3 per task).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...losses.tcmoa import TCMoALoss, TCMoALossConfig, recover_norm, task_index
from ..schedule import set_lr, warmup_cosine_lr
from . import register_objective
from .base import Objective, check_params

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TrainConfig
    from ..trainer import StepResult, Trainer

STEP_MODES = ("per_task", "summed")
MAE_BACKBONE_FILE = "mae_backbone.safetensors"


@dataclass(frozen=True)
class TCMoAParams:
    """``objective: {name: tcmoa, ...}`` keys (defaults: the official recipe)."""

    backbone: Optional[str] = None  # MAE backbone file, or a tcmoa_mae run folder
    weights: Optional[str] = None  # full TC-MoA checkpoint (official or ours) to start from
    freeze_backbone: str = "auto"  # auto (frozen iff weights were loaded) | true | false
    epochs: float = 20.0
    warmup_epochs: float = 2.0  # lr warm-up and the losses' warm-up phase
    min_lr: float = 1e-5
    iterations_per_epoch: int = 0  # 0: len(first task's datasets) // batch_size (the official epoch)
    step_mode: str = "per_task"
    official_loss_kernels: bool = False  # gradient kernels from `weights` (an official CPU state dict)
    loss: Dict[str, Any] = field(default_factory=dict)  # TCMoALossConfig overrides


def tcmoa_forward_terms(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: int) -> tuple:
    """``forward_features`` as a flat tuple DDP can traverse:
    ``(decoder, aux_loss, enc_x, enc_y, dec_x, dec_y)`` (prompt lists of (B, N, 1))."""
    out = net.forward_features(x, y, task)
    aux = out.aux_loss if torch.is_tensor(out.aux_loss) else torch.tensor(float(out.aux_loss), device=x.device)
    return out.decoder, aux, out.prompts("enc", "x"), out.prompts("enc", "y"), out.prompts("dec", "x"), out.prompts("dec", "y")


class _ForwardTerms(nn.Module):
    """Wraps the network so DDP sees ``forward_features`` as ``forward``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, y: torch.Tensor, task: int):
        return tcmoa_forward_terms(self.net, x, y, task)


def task_loss(loss: TCMoALoss, terms: tuple, x: torch.Tensor, y: torch.Tensor, task: int, epoch: int,
              output_resize: str = "nearest") -> Dict[str, torch.Tensor]:
    """The official loss dict of one task from :func:`tcmoa_forward_terms` on normalised ``x``, ``y``."""
    decoder, aux, ex, ey, dx, dy = terms
    size = x.shape[-2:]
    z = F.interpolate(decoder.float(), size=size, mode="area") if output_resize == "area" else F.interpolate(decoder.float(), size=size)
    prompts = {"enc_x": ex, "enc_y": ey, "dec_x": dx, "dec_y": dy}
    return loss(recover_norm(z), recover_norm(x), recover_norm(y), task, epoch, prompts, aux)


def decay_groups(model: nn.Module, weight_decay: float) -> List[Dict[str, Any]]:
    """timm's ``add_weight_decay``: trainable params, no decay for biases and 1-D tensors."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def resolve_backbone(path: str) -> Path:
    """A backbone file, or the ``mae_backbone.safetensors`` of a ``tcmoa_mae`` run folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / MAE_BACKBONE_FILE
    if not p.is_file():
        raise ConfigError(f"objective tcmoa: backbone weights {p} not found (train one with a tcmoa_mae config first)")
    return p


def _all_ranks_finite(ctx, value: torch.Tensor) -> bool:
    ok = torch.isfinite(value.detach()).all().to(torch.float32).reshape(1)
    if ctx.enabled:
        import torch.distributed as dist

        ok = ok.to(ctx.device)
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)


@register_objective("tcmoa", "TC-MoA: per-task AdamW steps on the TC-MoA parts, warm-up + cosine lr, official losses")
class TCMoAObjective(Objective):
    name = "tcmoa"

    def __init__(self, cfg: "TrainConfig"):
        super().__init__(cfg)
        self.p = TCMoAParams(**check_params("tcmoa", cfg.objective.params, TCMoAParams()))
        p = self.p
        if p.step_mode not in STEP_MODES:
            raise ConfigError(f"objective tcmoa: step_mode must be one of {list(STEP_MODES)}, got {p.step_mode!r}")
        if str(p.freeze_backbone).lower() not in ("auto", "true", "false"):
            raise ConfigError(f"objective tcmoa: freeze_backbone must be auto, true or false, got {p.freeze_backbone!r}")
        if not (0 <= p.warmup_epochs < p.epochs):
            raise ConfigError(f"objective tcmoa: need 0 <= warmup_epochs < epochs, got {p.warmup_epochs} / {p.epochs}")
        if p.iterations_per_epoch < 0 or p.min_lr < 0:
            raise ConfigError("objective tcmoa: iterations_per_epoch and min_lr must be >= 0")
        if cfg.model.get("name") != "tcmoa":
            raise ConfigError(f"objective tcmoa needs model.name: tcmoa, got {cfg.model.get('name')!r}")
        for t in cfg.tasks:
            task_index(t.name)  # ConfigError for tasks TC-MoA has no loss for
        loss_kw = {"warmup_epochs": int(math.ceil(p.warmup_epochs)), **p.loss}
        self.loss = TCMoALoss(TCMoALossConfig.from_dict(loss_kw))
        self.ipe = p.iterations_per_epoch

    # ------------------------------------------------------------------ construction
    def build_model(self, device: torch.device) -> nn.Module:
        model = super().build_model(device)
        p = self.p
        loaded = False
        if p.weights:
            from ...models.tcmoa.checkpoint import read_weights

            sd, _, _ = read_weights(str(Path(p.weights).expanduser()))
            model.load_weights(sd)
            if p.official_loss_kernels:
                self.loss.use_official_kernels(sd)
            loaded = True
        elif p.backbone:
            model.load_weights(str(resolve_backbone(p.backbone)))
            loaded = True
        mode = str(p.freeze_backbone).lower()
        model.freeze_backbone(loaded if mode == "auto" else mode == "true")
        return model

    def build_optimizer(self, model: nn.Module, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
        o = self.cfg.optimizer
        return torch.optim.AdamW(decay_groups(model, o.weight_decay), lr=o.lr, betas=tuple(o.betas), eps=o.eps)

    def setup(self, trainer: "Trainer") -> None:
        unit = trainer.model.config.unit
        if self.cfg.crop_size % unit:
            raise ConfigError(f"crop_size {self.cfg.crop_size} must be a multiple of {unit} for this TC-MoA config")

    def forward_module(self, model: nn.Module) -> nn.Module:
        return _ForwardTerms(model)

    def log_fields(self, task_names: Sequence[str]) -> List[str]:
        return [f"loss_{n}" for n in task_names] + [f"prompt_{n}" for n in task_names] + [f"aux_{n}" for n in task_names] + ["epoch"]

    def lr_at(self, step: int) -> float:
        p = self.p
        return warmup_cosine_lr((step - 1) / self.ipe, self.cfg.optimizer.lr, p.warmup_epochs, p.epochs, p.min_lr)

    # ------------------------------------------------------------------ one iteration
    def train_step(self, tr: "Trainer", batches: Dict[str, Dict[str, Any]]) -> "StepResult":
        from ..trainer import StepResult

        if self.ipe == 0:  # the official epoch: one pass over the first task's (VIF) loader
            per_epoch = getattr(tr.batches, "batches_per_epoch", {})
            self.ipe = max(1, int(per_epoch.get(tr.task_names[0], 1)))
        epoch = (tr.step - 1) // self.ipe
        set_lr(tr.optimizer, self.lr_at(tr.step))
        tr.optimizer.zero_grad(set_to_none=True)
        net, mode = tr.model, tr.model.config.output_resize
        res = StepResult(tr.step, {})
        res.extra["epoch"] = float(epoch)
        bad: List[str] = []
        total = None
        for name in tr.task_names:
            b = batches[name]
            k = task_index(name)
            x, y = net.normalize(b["A"]), net.normalize(b["B"])
            terms = tr.forward_net(x, y, k)
            out = task_loss(self.loss, terms, x, y, k, epoch, mode)
            loss = out["loss"]
            res.losses[name] = float(loss.detach())
            res.extra[f"prompt_{name}"] = float(out["prompt_loss"].detach())
            res.extra[f"aux_{name}"] = float(out["aux_loss"].detach())
            if not _all_ranks_finite(tr.ctx, loss):
                bad.append(name)
                continue
            if self.p.step_mode == "summed":
                total = loss if total is None else total + loss
                continue
            loss.backward()
            if not self._grads_finite(tr):
                bad.append(name)
                tr.optimizer.zero_grad(set_to_none=True)
                continue
            tr.optimizer.step()
            tr.optimizer.zero_grad(set_to_none=True)
        if total is not None:
            total.backward()
            if self._grads_finite(tr):
                tr.optimizer.step()
            else:
                bad.extend(n for n in tr.task_names if n not in bad)
            tr.optimizer.zero_grad(set_to_none=True)
        if bad:
            tr._event(f"non-finite loss or gradient in {', '.join(bad)}; those updates skipped, weights unchanged by them")
            tr.ema.update(tr.model)
            return tr._skip(res) if len(bad) == len(tr.task_names) else res
        tr._nonfinite_streak = 0
        tr.ema.update(tr.model)
        return res

    @staticmethod
    def _grads_finite(tr: "Trainer") -> bool:
        grads = [p.grad for p in tr.params if p.grad is not None]
        if not grads:
            return True
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf")))).all())


__all__ = ["TCMoAObjective", "TCMoAParams", "tcmoa_forward_terms", "task_loss", "decay_groups", "MAE_BACKBONE_FILE"]
