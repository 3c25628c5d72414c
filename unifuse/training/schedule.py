"""Learning-rate schedules.

:func:`warmup_cosine_lr` is the MAE/TC-MoA schedule (``tcmoa.md`` §6, the official
``util/lr_sched.adjust_learning_rate``): linear warm-up from 0 over ``warmup`` epochs, then a
half-cycle cosine from ``peak`` down to ``min_lr`` at ``total`` epochs, evaluated at the
fractional epoch of every iteration.
"""

from __future__ import annotations

import math


def warmup_cosine_lr(epoch: float, peak: float, warmup: float, total: float, min_lr: float = 0.0) -> float:
    """Learning rate at fractional ``epoch``::

        epoch < warmup:  peak · epoch / warmup
        otherwise:       min_lr + (peak − min_lr) · ½ · (1 + cos(π · (epoch − warmup) / (total − warmup)))

    Past ``total`` the cosine continues (as the official code, which never goes there); call
    sites stop at ``total``.
    """
    if epoch < warmup:
        return peak * epoch / warmup
    span = max(total - warmup, 1e-12)
    return min_lr + (peak - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup) / span))


def set_lr(optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group (a group's ``lr_scale`` multiplies it)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


__all__ = ["warmup_cosine_lr", "set_lr"]
