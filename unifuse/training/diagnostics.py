"""Gradient-conflict diagnostics (TITA paper, Fig. 2).

For each task ``t`` the gradient ``g_t = ∇_θ ℓ_t`` of its own loss w.r.t. the shared
parameters is taken separately; we report ``‖g_t‖₂`` and, for every pair of tasks, the
angle ``arccos(⟨g_i, g_j⟩ / (‖g_i‖‖g_j‖))`` in degrees (90° = orthogonal, > 90° =
conflicting). In the unified TITA network every parameter is shared by all tasks.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Callable, Dict, List, Optional, Sequence

import torch


def flat_task_gradients(
    losses: Sequence[torch.Tensor],
    params: Sequence[torch.nn.Parameter],
    reduce: Optional[Callable[[List[torch.Tensor]], None]] = None,
) -> torch.Tensor:
    """Per-task gradients as a ``(T, P)`` float64 matrix, without touching ``.grad``.

    The autograd graphs are retained so that the ordinary backward can follow.
    ``reduce`` (e.g. a cross-rank sum) is applied in place to the list of flat gradients.
    """
    rows: List[torch.Tensor] = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]))
    if reduce is not None:
        reduce(rows)
    return torch.stack(rows).to(torch.float64)


def conflict_stats(grads: torch.Tensor, task_names: Sequence[str]) -> Dict[str, float]:
    """Norms and pairwise angles from a ``(T, P)`` gradient matrix.

    Returns:
        ``{"gradnorm_<t>": ‖g_t‖, "angle_<i>_<j>": degrees}``; an angle involving a zero
        gradient is NaN.
    """
    if grads.shape[0] != len(task_names):
        raise ValueError(f"{grads.shape[0]} gradients for {len(task_names)} tasks")
    g = grads.to(torch.float64)
    norms = g.norm(dim=1)
    gram = g @ g.T
    out: Dict[str, float] = {f"gradnorm_{t}": float(n) for t, n in zip(task_names, norms)}
    for i, j in combinations(range(len(task_names)), 2):
        denom = float(norms[i] * norms[j])
        if denom > 0 and math.isfinite(denom):
            cos = max(-1.0, min(1.0, float(gram[i, j]) / denom))
            out[f"angle_{task_names[i]}_{task_names[j]}"] = math.degrees(math.acos(cos))
        else:
            out[f"angle_{task_names[i]}_{task_names[j]}"] = float("nan")
    return out


def conflict_fields(task_names: Sequence[str]) -> List[str]:
    """CSV columns written by :func:`conflict_stats` (without ``step``)."""
    return [f"gradnorm_{t}" for t in task_names] + [f"angle_{a}_{b}" for a, b in combinations(task_names, 2)]
