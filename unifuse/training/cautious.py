"""AdamW with the cautious mask (Liang et al. 2024; spec ``mmaif.md`` §6).

With the bias-corrected Adam step ``u = m̂ / (√v̂ + eps)``::

    mask = 1[u · grad > 0]
    u    ← u ⊙ mask / max(mean(mask), 1e-3)
    θ    ← θ − lr · (u + wd · θ)

``caution=False`` is plain decoupled AdamW (``torch.optim.AdamW``'s update, written out
here so both share one code path). The state (``step``, ``exp_avg``, ``exp_avg_sq``) is a
regular optimiser state dict, so checkpoints resume exactly.
"""

from __future__ import annotations

from typing import Iterable

import torch


class CautiousAdamW(torch.optim.Optimizer):
    """Args: ``params`` (tensors or groups), ``lr``, ``betas``, ``eps``, ``weight_decay``
    (decoupled, multiplied by lr), ``caution`` (apply the cautious mask)."""

    def __init__(self, params: Iterable, lr: float = 2e-4, betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                 weight_decay: float = 0.01, caution: bool = True):
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid CautiousAdamW settings: lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, caution=bool(caution)))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                st = self.state[p]
                if not st:
                    st["step"] = torch.zeros((), dtype=torch.float32)
                    st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
                k = float(st["step"])
                m, v = st["exp_avg"], st["exp_avg_sq"]
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                u = (m / (1 - b1 ** k)) / ((v / (1 - b2 ** k)).sqrt_().add_(eps))
                if group["caution"]:
                    mask = (u * g > 0).to(u.dtype)
                    u.mul_(mask).div_(mask.mean().clamp_min(1e-3))
                if wd:
                    p.mul_(1 - lr * wd)
                p.add_(u, alpha=-lr)
        return loss


__all__ = ["CautiousAdamW"]
