"""FAMO: Fast Adaptive Multitask Optimisation, as TITA's official code runs it (spec §8.2–§8.3).

State (kept on the CPU whatever the losses' device; M is tiny): logits ξ ∈ ℝ^M (init 0) with their own Adam optimiser (lr 0.025, coupled L2 weight decay
1e-3, default betas/eps); min-losses 0; ε = 1e-8.

``backward(ℓ)`` (before the model step): z = softmax(ξ), D = ℓ + ε, c = Σ z/D (detached) and
L = Σ z·log D / c, so ∂L/∂θ = Σ_t z_t/(c·D_t) ∇ℓ_t. The official code lets a gradient reach ξ here
and then overwrites it; we detach z instead, which leaves the model gradient unchanged.

``update(ℓ')`` (after the model step, with the losses re-evaluated on the same batches):
δ = log(ℓ + ε) − log(ℓ' + ε), g = J_softmax(ξ)ᵀ δ = z ∘ (δ − ⟨z, δ⟩), ξ.grad ← g, Adam step on ξ.

Unlike the official code the state (ξ, its Adam moments and the pending pre-step losses) is
checkpointed, so a resumed run is exact.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import torch
from torch import Tensor

from ...errors import ConfigError
from .base import Weighting, register_weighting


@register_weighting("famo", "FAMO adaptive task weighting (TITA default): Adam on softmax logits")
class FAMO(Weighting):
    """FAMO weighting of ``n_tasks`` losses; see the module docstring for the maths."""

    needs_update = True

    def __init__(self, n_tasks: int, lr: float = 0.025, weight_decay: float = 1e-3, eps: float = 1e-8,
                 min_losses: Optional[Tensor] = None, betas: tuple[float, float] = (0.9, 0.999), adam_eps: float = 1e-8):
        super().__init__(n_tasks)
        if lr <= 0:
            raise ConfigError(f"famo: lr must be > 0, got {lr}")
        self.eps = float(eps)
        self.min_losses = torch.zeros(self.n_tasks) if min_losses is None else torch.as_tensor(min_losses, dtype=torch.float32)
        self.xi = torch.zeros(self.n_tasks, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.xi], lr=lr, betas=betas, eps=adam_eps, weight_decay=weight_decay)
        self.prev_losses: Optional[Tensor] = None

    def _d(self, losses: Tensor) -> Tensor:
        return losses - self.min_losses.to(losses) + self.eps

    def surrogate(self, losses: Tensor, reference: Optional[Tensor] = None) -> Tensor:
        """L = Σ z·log D / c with c = Σ z/D detached. With ``reference`` (detached Tensor[n]), D is taken
        from it instead, L = Σ z·ℓ/(c·D_ref): same model gradient when reference == losses (useful when
        the weights must come from losses all-reduced across ranks)."""
        z = torch.softmax(self.xi.detach(), -1).to(device=losses.device, dtype=losses.dtype)
        if reference is None:
            d = self._d(losses)
            c = (z / d).sum().detach()
            return (z * d.log()).sum() / c
        d_ref = self._d(reference.detach().to(device=losses.device, dtype=losses.dtype))
        c = (z / d_ref).sum()
        return (z / (c * d_ref) * losses).sum()

    def backward(self, losses: Tensor, reference: Optional[Tensor] = None) -> Tensor:
        """Back-propagate the FAMO surrogate of ``losses`` (Tensor[n_tasks], with grad) and remember the
        pre-step losses (``reference`` if given) for :meth:`update`. Returns the surrogate, detached."""
        self._check(losses, "backward")
        s = self.surrogate(losses, reference)
        s.backward()
        pre = losses if reference is None else reference
        self.prev_losses = pre.detach().to(device="cpu").clone()  # ξ lives on the CPU; the losses keep their dtype
        return s.detach()

    def task_coefficients(self, losses: Tensor) -> Tensor:
        """Effective per-task gradient coefficients z_t/(c·D_t) for ``losses``; Tensor[n_tasks], detached."""
        z = torch.softmax(self.xi.detach(), -1).to(device=losses.device, dtype=losses.dtype)
        d = self._d(losses.detach())
        return z / ((z / d).sum() * d)

    @torch.no_grad()
    def update(self, new_losses: Tensor) -> None:
        """Logit step from the pre-step losses (seen in :meth:`backward`) and the post-step ``new_losses``."""
        self._check(new_losses, "update")
        if self.prev_losses is None:
            raise ConfigError("famo: update() called before backward()")
        new = new_losses.detach().to(device="cpu")
        # δ in the losses' precision, then to ξ's (float32), as the official vector-Jacobian product does
        delta = (self._d(self.prev_losses).log() - self._d(new).log()).to(self.xi.dtype)
        z = torch.softmax(self.xi, -1)
        g = z * (delta - (z * delta).sum())
        self.optimizer.zero_grad(set_to_none=False)
        self.xi.grad = g.clone()
        self.optimizer.step()
        self.prev_losses = None

    @property
    def weights(self) -> Tensor:
        """z = softmax(ξ), Tensor[n_tasks]."""
        return torch.softmax(self.xi.detach(), -1).clone()

    def state_dict(self) -> dict[str, Any]:
        return {
            "xi": self.xi.detach().clone(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),  # Adam's moments are mutated in place
            "prev_losses": None if self.prev_losses is None else self.prev_losses.clone(),
            "min_losses": self.min_losses.clone(),
            "eps": self.eps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        xi = torch.as_tensor(state["xi"], dtype=torch.float32)
        if xi.shape != (self.n_tasks,):
            raise ConfigError(f"famo: checkpoint has {tuple(xi.shape)} logits, this run has {self.n_tasks} tasks")
        with torch.no_grad():
            self.xi.copy_(xi)
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        pl = state.get("prev_losses")
        self.prev_losses = None if pl is None else torch.as_tensor(pl).clone()
        if "min_losses" in state:
            self.min_losses = torch.as_tensor(state["min_losses"], dtype=torch.float32).clone()
        self.eps = float(state.get("eps", self.eps))
