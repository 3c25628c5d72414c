"""Plain averaging of the task losses (TITA ablation "w/o MO")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Weighting, register_weighting


@register_weighting("mean", "plain average of the task losses (ablation 'w/o MO')")
class MeanWeighting(Weighting):
    """ℓ = (1/M)·Σ_m ℓ_m (spec §8.4); no post-step pass, no state."""

    needs_update = False

    def __init__(self, n_tasks: int, **_: Any):
        super().__init__(n_tasks)

    def surrogate(self, losses: Tensor) -> Tensor:
        return losses.mean()

    @property
    def weights(self) -> Tensor:
        return torch.full((self.n_tasks,), 1.0 / self.n_tasks)
