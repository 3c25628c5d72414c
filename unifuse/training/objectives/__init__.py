"""Training recipes ("objectives") the trainer runs, registered by name.

=============  ===============================================================================
name           recipe
=============  ===============================================================================
``tita``       TITA: three task forwards, FAMO-weighted combined gradient, one Adam step (default)
``tcmoa``      TC-MoA: per-task forward/backward/AdamW steps, warm-up + cosine lr, frozen backbone
``tcmoa_mae``  TC-MoA stage 0: masked-autoencoder pretraining of the backbone (spec §9.3)
``mmaif``      MMAIF: degraded pairs + prompts, teacher GT, reg/flow DiT in latent space, cautious AdamW
=============  ===============================================================================

Select one in a config with ``objective: tcmoa`` or ``objective: {name: tcmoa, <params>}``.
Add one by subclassing :class:`~.base.Objective` and decorating it with
``@register_objective("name", "description")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Type

from ...registry import Registry
from .base import Objective

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TrainConfig

OBJECTIVES: Registry[Type[Objective]] = Registry("objective")
register_objective = OBJECTIVES.register

_loaded = False


def _ensure_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import mae, mmaif, tcmoa, tita  # noqa: F401


def list_objectives() -> list[str]:
    _ensure_builtin()
    return OBJECTIVES.names()


def create_objective(cfg: "TrainConfig") -> Objective:
    """The objective ``cfg.objective.name`` for ``cfg`` (its params validated)."""
    _ensure_builtin()
    return OBJECTIVES.get(cfg.objective.name).factory(cfg)


__all__ = ["Objective", "OBJECTIVES", "register_objective", "create_objective", "list_objectives"]
