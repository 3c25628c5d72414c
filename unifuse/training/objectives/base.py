"""The plug-in interface between :class:`~unifuse.training.trainer.Trainer` and a training recipe.

The trainer owns what every recipe shares: the typed config, seeding and per-rank RNG streams,
the multi-task batch stream, the EMA copy, DDP wrapping, checkpoints (atomic, resumable bit for
bit), CSV / TensorBoard logs, non-finite bookkeeping and the export of the final weights. An
:class:`Objective` owns what differs between models: how the model is built and which of its
parameters train, the optimiser, what one iteration does (forwards, losses, backward passes,
optimiser steps, learning-rate schedule) and its own state (e.g. TITA's FAMO task weights).

Life cycle (the order is fixed; the trainer seeds torch with ``cfg.seed`` first, so model
initialisation is identical on every rank)::

    obj = ObjectiveClass(cfg)              # validate cfg.objective.params (ConfigError)
    model = obj.build_model(device)        # fresh model on the device, train mode
    params = obj.trainable_parameters(model)
    optimizer = obj.build_optimizer(model, params)
    obj.setup(trainer)                     # losses, weighting, ... (trainer.model/optimizer exist)
    net = obj.forward_module(model)        # what DDP wraps (default: the model)
    ... every iteration: obj.train_step(trainer, batches) -> StepResult
    checkpoint: obj.checkpoint_state() merged into the trainer's state, then obj.on_checkpoint(trainer);
                resume: obj.load_checkpoint_state(state)
    end: obj.export(trainer)               # extra files next to model.safetensors

A new recipe subclasses :class:`Objective` in its own module and registers it with
:func:`~unifuse.training.objectives.register_objective`; configs select it with
``objective: NAME`` or ``objective: {name: NAME, <params>}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Sequence

import torch
from torch import nn

from ...errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TrainConfig
    from ..trainer import StepResult, Trainer


class Objective:
    """Base class of a training recipe (see the module docstring for the life cycle).

    Attributes:
        name: registry name.
        ddp_find_unused: DDP's ``find_unused_parameters`` (True when some trainable
            parameters receive no gradient in some forward, e.g. another task's router).
    """

    name = "base"
    ddp_find_unused = True

    def __init__(self, cfg: "TrainConfig"):
        self.cfg = cfg

    # ------------------------------------------------------------------ construction
    def build_model(self, device: torch.device) -> nn.Module:
        """A fresh model from ``cfg.model`` (registry name + options) on ``device``."""
        from ...models import create_model

        model_kw = {k: v for k, v in self.cfg.model.items() if k != "name"}
        return create_model(self.cfg.model["name"], **model_kw).to(device)

    def trainable_parameters(self, model: nn.Module) -> List[nn.Parameter]:
        return [p for p in model.parameters() if p.requires_grad]

    def build_optimizer(self, model: nn.Module, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
        o = self.cfg.optimizer
        return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)

    def setup(self, trainer: "Trainer") -> None:
        """Build the remaining pieces (losses, task weighting, ...) once the model exists."""

    def forward_module(self, model: nn.Module) -> nn.Module:
        """The module whose ``forward`` the iteration calls (and DDP wraps)."""
        return model

    # ------------------------------------------------------------------ iteration and logs
    def log_fields(self, task_names: Sequence[str]) -> List[str]:
        """CSV columns after ``step, time_s, lr`` (``skipped`` is appended by the trainer)."""
        return [f"loss_{n}" for n in task_names]

    def train_step(self, trainer: "Trainer", batches: Dict[str, Dict[str, Any]]) -> "StepResult":  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def checkpoint_state(self) -> Dict[str, Any]:
        """Extra entries for the checkpoint's state (must be ``torch.save``-able)."""
        return {}

    def load_checkpoint_state(self, state: Dict[str, Any]) -> None:
        """Restore from a checkpoint's state (the mapping :meth:`checkpoint_state` was merged into)."""

    def on_checkpoint(self, trainer: "Trainer") -> None:
        """Called on rank 0 after every checkpoint (e.g. to refresh an exported file)."""

    def export(self, trainer: "Trainer") -> None:
        """Write extra files into the run folder after training (rank 0 only)."""


def check_params(name: str, params: Dict[str, Any], defaults: Any) -> Dict[str, Any]:
    """Validate ``params`` against the fields of the dataclass instance ``defaults``: unknown
    keys and values of the wrong type raise :class:`ConfigError` naming ``objective.<key>``."""
    from dataclasses import fields

    valid = {f.name: f for f in fields(defaults)}
    out = {}
    for k, v in params.items():
        if k not in valid:
            raise ConfigError(f"objective {name}: unknown key {k!r}; valid keys: {', '.join(valid)}")
        d = getattr(defaults, k)
        if isinstance(d, bool):
            ok = isinstance(v, bool)
        elif isinstance(d, float):
            if isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    pass
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            v = float(v) if ok else v
        elif isinstance(d, int):
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif isinstance(d, list):
            ok = isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)
            v = list(v) if ok else v
        elif isinstance(d, tuple):
            ok = isinstance(v, (list, tuple)) and len(v) == len(d)
            v = tuple(v) if ok else v
        elif isinstance(d, dict):
            ok = isinstance(v, dict)
        elif d is None or isinstance(d, str):
            ok = v is None or isinstance(v, str)
        else:
            ok = True
        if not ok:
            raise ConfigError(f"objective {name}: {k} has the wrong type: {v!r} (default {d!r})")
        out[k] = v
    return out
