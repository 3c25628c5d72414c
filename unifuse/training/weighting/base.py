"""Multi-task loss weighting: the interface the trainer drives and the registry.

Protocol of one training iteration (TITA spec §8.3)::

    w = create_weighting("famo", n_tasks=3)      # or "mean"
    losses = torch.stack([loss_t(net(a_t, b_t), a_t, b_t) for t in tasks])   # Tensor[n_tasks], with grad
    w.backward(losses)                            # builds the surrogate and calls .backward() on it
    model_optimizer.step()
    if w.needs_update:                            # FAMO only
        with torch.no_grad():
            new = torch.stack([...same batches, updated model...])
        w.update(new)                             # logit step
    log(w.weights)                                # Tensor[n_tasks], current task weights

``state_dict()`` / ``load_state_dict()`` carry everything needed for an exact resume.
"""

from __future__ import annotations

from typing import Any, Optional

from torch import Tensor

from ...errors import ConfigError
from ...registry import Registry


class Weighting:
    """Base class: combines a vector of task losses into one backward pass."""

    #: whether the trainer must re-evaluate the losses after the model step and call :meth:`update`
    needs_update: bool = False

    def __init__(self, n_tasks: int):
        if int(n_tasks) < 1:
            raise ConfigError(f"weighting: n_tasks must be >= 1, got {n_tasks}")
        self.n_tasks = int(n_tasks)

    def _check(self, losses: Tensor, what: str) -> Tensor:
        if not isinstance(losses, Tensor) or losses.shape != (self.n_tasks,):
            shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
            raise ConfigError(f"{type(self).__name__}.{what}: expected a Tensor of shape ({self.n_tasks},), got {shape}")
        return losses

    def surrogate(self, losses: Tensor) -> Tensor:
        """The 0-dim objective whose gradient is the weighted sum of the task gradients."""
        raise NotImplementedError

    def backward(self, losses: Tensor, reference: Optional[Tensor] = None) -> Tensor:
        """Build the surrogate from ``losses`` (Tensor[n_tasks] with grad), call ``.backward()``; return it detached.

        ``reference`` (optional detached Tensor[n_tasks], e.g. the losses averaged over DDP ranks) is the
        value the adaptive weights are computed from; ignored by weightings without adaptive weights."""
        s = self.surrogate(self._check(losses, "backward"))
        s.backward()
        return s.detach()

    def update(self, new_losses: Tensor) -> None:
        """Called after the model step with the re-evaluated losses (no grad); no-op by default."""

    @property
    def weights(self) -> Tensor:
        """Current task weights, Tensor[n_tasks] (detached, for logging)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


WEIGHTINGS: Registry[Weighting] = Registry("weighting")
register_weighting = WEIGHTINGS.register
