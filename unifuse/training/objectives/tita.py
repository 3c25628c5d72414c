"""TITA's recipe (spec ``tita.md`` §8.3): multi-task, FAMO-weighted, one Adam step per iteration.

One iteration::

    for each task t:  fused_t = net(A_t, B_t) (train mode);  ℓ_t = loss_t(fused_t, A_t, B_t)
                      g_t = ∇_θ ℓ_t   (backward right away, so only one task's graph is alive)
    c = ∂S/∂ℓ of the weighting surrogate S(ℓ) (FAMO or mean);  ∇θ = Σ_t c_t·g_t   (no clipping)
    Adam step
    if weighting.needs_update: ℓ' = losses on the same batches (no grad, train mode); weighting.update(ℓ')
    EMA update

``Σ_t c_t·g_t`` is exactly the gradient that ``weighting.backward(ℓ)`` would produce through
the three graphs at once (chain rule through S), but the peak memory is one task's graph
instead of three (the full model at batch 8 × 64² needs several GB per graph), and the
per-task gradients needed by the gradient-conflict diagnostics (paper Fig. 2) come for free.
The random numbers (drop-path) are drawn in the same order as in the official loop.

Data parallel: each rank forwards its slice of the global batch and the losses are computed
on the gathered global batch (see :mod:`unifuse.training.distributed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from ...errors import ConfigError
from ..diagnostics import conflict_stats
from ..distributed import gather_batch
from . import register_objective
from .base import Objective

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TrainConfig
    from ..trainer import StepResult, Trainer


def make_task_loss(cfg: "TrainConfig", task, device: torch.device | str = "cpu") -> Callable:
    """The training objective of ``task``: its own ``loss`` if set, else ``uni`` when the
    config's ``loss`` is ``uni``, else the task's official loss (``TASK_LOSS``)."""
    from ...losses import TASK_LOSS, create_loss

    if task.loss is not None:
        name = task.loss
    elif cfg.loss == "uni":
        name = "uni"
    else:
        if task.name not in TASK_LOSS:
            raise ConfigError(f"task {task.name!r} has no default loss; set tasks[].loss (known tasks: {', '.join(TASK_LOSS)})")
        name = TASK_LOSS[task.name]
    fn = create_loss(name, **(cfg.loss_params if name == "uni" else {}))
    if isinstance(fn, nn.Module):
        fn = fn.to(device)
    return fn


@register_objective("tita", "TITA: FAMO-weighted multi-task gradient, one Adam step per iteration (default)")
class TitaObjective(Objective):
    """TITA's recipe; uses ``cfg.loss``/``loss_params``/``tasks[].loss``, ``cfg.weighting``, ``cfg.optimizer`` (Adam)."""

    name = "tita"

    def __init__(self, cfg: "TrainConfig"):
        super().__init__(cfg)
        if cfg.objective.params:
            raise ConfigError(f"objective tita takes no parameters (got {', '.join(cfg.objective.params)}); "
                              "set loss, weighting and optimizer at the top level")
        self.weighting = None
        self.losses: List[Callable] = []

    def setup(self, trainer: "Trainer") -> None:
        from ..weighting import create_weighting

        cfg = self.cfg
        self.weighting = create_weighting(cfg.weighting.name, len(trainer.task_names), **cfg.weighting.params)
        self.losses = [make_task_loss(cfg, t, trainer.device) for t in cfg.tasks]

    def log_fields(self, task_names: Sequence[str]) -> List[str]:
        fields = [f"loss_{n}" for n in task_names]
        if self.weighting.needs_update:
            fields += [f"post_{n}" for n in task_names]
        return fields + [f"weight_{n}" for n in task_names]

    def checkpoint_state(self) -> Dict[str, Any]:
        return {"weighting": self.weighting.state_dict()}

    def load_checkpoint_state(self, state: Dict[str, Any]) -> None:
        self.weighting.load_state_dict(state["weighting"])

    # ------------------------------------------------------------------ one iteration
    def _task_gradient(self, tr: "Trainer", t: int, batch: Dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, Optional[List[torch.Tensor]]]:
        """Forward task ``t`` and back-propagate its (global-batch) loss at once.

        Returns ``(loss, fused, grads)``; ``grads`` (one tensor per parameter, the gradient of
        the global loss) is ``None`` when the loss is not finite (no backward is run then).
        """
        fused = tr.forward_net(batch["A"], batch["B"])
        loss = self._global_loss(tr, t, fused, batch)
        if not torch.isfinite(loss.detach()).item():  # identical on every rank: all skip together
            return loss.detach(), fused.detach(), None
        loss.backward()
        k = tr.ctx.world_size  # DDP averaged the per-rank gradients of the global loss: × K
        grads = [torch.zeros_like(p) if p.grad is None else (p.grad * k if k > 1 else p.grad) for p in tr.params]
        for p in tr.params:
            p.grad = None
        return loss.detach(), fused.detach(), grads

    def _global_loss(self, tr: "Trainer", t: int, fused: torch.Tensor, batch: Dict[str, Any]) -> torch.Tensor:
        """Task ``t``'s loss on the global batch (slices gathered across ranks), 0-dim."""
        f = gather_batch(tr.ctx, fused)
        a = gather_batch(tr.ctx, batch["A"])
        b = gather_batch(tr.ctx, batch["B"])
        return self.losses[t](f, a, b).reshape(())

    def _skip(self, tr: "Trainer", res: "StepResult") -> "StepResult":
        res.weights = dict(zip(tr.task_names, self.weighting.weights.tolist()))
        return tr._skip(res)

    def train_step(self, tr: "Trainer", batches: Dict[str, Dict[str, Any]]) -> "StepResult":
        from ..trainer import StepResult

        cfg = self.cfg
        tr.optimizer.zero_grad(set_to_none=True)
        losses, fused, task_grads = [], [], []
        for t, name in enumerate(tr.task_names):
            loss, out, grads = self._task_gradient(tr, t, batches[name])
            losses.append(loss)
            fused.append(out)
            task_grads.append(grads)
        loss_vals = torch.stack(losses).cpu()
        res = StepResult(tr.step, dict(zip(tr.task_names, loss_vals.tolist())))
        if not torch.isfinite(loss_vals).all():
            tr._report_nonfinite("loss", loss_vals, batches, fused)
            return self._skip(tr, res)
        finite = torch.stack([torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf")))).all() for grads in task_grads]).cpu()
        if not finite.all():
            tr._report_nonfinite("gradient", torch.where(finite, 0.0, float("nan")), batches, fused)
            return self._skip(tr, res)
        del fused

        if cfg.diagnostics_every and tr.step % cfg.diagnostics_every == 0:
            flat = torch.stack([torch.cat([g.reshape(-1) for g in grads]) for grads in task_grads])
            res.conflicts = conflict_stats(flat, tr.task_names)
            del flat

        # task coefficients c = ∂S/∂ℓ from the weighting's own backward on detached loss values
        # (on the CPU, where the weighting keeps its state, whatever the training device)
        leaf = loss_vals.detach().clone().requires_grad_(True)
        self.weighting.backward(leaf)
        coef = leaf.grad.detach().cpu().tolist()
        combined = torch._foreach_mul(task_grads[0], coef[0])
        for t in range(1, len(task_grads)):
            torch._foreach_add_(combined, task_grads[t], alpha=coef[t])
        for p, g in zip(tr.params, combined):
            p.grad = g
        del task_grads, combined
        tr.optimizer.step()
        tr._nonfinite_streak = 0

        if self.weighting.needs_update:
            with torch.no_grad():
                new = torch.stack([self._global_loss(tr, t, tr.model(batches[n]["A"], batches[n]["B"]), batches[n]) for t, n in enumerate(tr.task_names)])
            new_vals = new.detach().cpu()
            res.post_losses = dict(zip(tr.task_names, new_vals.tolist()))
            if torch.isfinite(new_vals).all():
                self.weighting.update(new_vals)
            else:
                tr._event("non-finite re-evaluated loss; task-weight update skipped")
        tr.ema.update(tr.model)
        res.weights = dict(zip(tr.task_names, self.weighting.weights.tolist()))
        return res


__all__ = ["TitaObjective", "make_task_loss"]
