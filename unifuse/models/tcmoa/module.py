"""One TC-MoA module (spec §4): reduction, routing, prompts, source embeddings; and the fusion layer F.

Official attribute names (``blocks_MoA.{j}.norm1`` / ``dimReduction`` / ``norm2`` / ``MoA`` /
``modal_shifts`` and ``FusionLayer.{j}.conv1..3``) so official state dicts load as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .moa import MixtureOfAdapters, Routing


@dataclass
class PromptControl:
    """The paper's prompt sliders (Eq. 8, spec §8.1), applied after the sigmoid.

    ``p'_x = μ + α·(p_x − μ) + β`` and ``p'_y = μ + α·(p_y − μ) − β``; ``α = 1, β = 0``
    changes nothing, ``α = 0, β = 0`` makes every prompt ``μ``. ``where``: ``"all"``,
    ``"encoder"``, ``"decoder"`` or a collection of module names such as ``"enc0"``,
    ``"dec1"``. ``clamp01`` clips the controlled prompts to ``[0, 1]``.
    """

    alpha: float = 1.0
    beta: float = 0.0
    mu: float = 0.5
    where: str | tuple[str, ...] = "all"
    clamp01: bool = False

    def applies_to(self, name: str) -> bool:
        if self.where == "all":
            return True
        if self.where == "encoder":
            return name.startswith("enc")
        if self.where == "decoder":
            return name.startswith("dec")
        return name in tuple(self.where)

    def __call__(self, px: torch.Tensor, py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, a, b = self.mu, self.alpha, self.beta
        px, py = mu + a * (px - mu) + b, mu + a * (py - mu) - b
        if self.clamp01:
            px, py = px.clamp(0, 1), py.clamp(0, 1)
        return px, py


@dataclass
class ModuleOutput:
    """Per-token prompts ``(B, N, 1)`` in (0, 1) of both sources, and the routing record."""

    prompt_x: torch.Tensor
    prompt_y: torch.Tensor
    routing: Routing


class BiMixtureOfAdapters(nn.Module):
    """TC-MoA module on two streams ``f_x, f_y`` ``(B, N, C)``.

    ``Φ = LN_b(W_red·LN_a([f_x, f_y]))`` ``(B·N, C/4)`` -> routed adapters ``u`` -> prompts
    ``p = σ(mean_c u[..., half])`` -> ``h_x = p_x·f_x + S_x^(k)``, ``h_y = p_y·f_y + S_y^(k)``.
    ``modal_shifts.{2k}`` / ``.{2k+1}`` are the task's source embeddings S_x / S_y (C,).
    """

    def __init__(self, dim: int, hidden: int, task_num: int = 3, **moa_kwargs):
        super().__init__()
        self.dim = dim
        self.norm1 = nn.LayerNorm(dim * 2)
        self.dimReduction = nn.Linear(dim * 2, dim // 4, bias=False)
        self.norm2 = nn.LayerNorm(dim // 4)
        self.MoA = MixtureOfAdapters(dim // 4, hidden, task_num=task_num, **moa_kwargs)
        self.modal_shifts = nn.ParameterList(nn.Parameter(torch.zeros(dim)) for _ in range(2 * task_num))
        if not self.dimReduction.weight.is_meta:
            nn.init.xavier_uniform_(self.dimReduction.weight)

    def reset_source_embeddings(self, generator: torch.Generator) -> None:
        """Draw the source embeddings from N(0, 0.02²) with ``generator`` (no-op on ``meta``)."""
        with torch.no_grad():
            for p in self.modal_shifts:
                if not p.is_meta:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.02)

    def source_embeddings(self, task: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(S_x, S_y)`` of a task, or their mixture ``Σ_t w_t S^(t)`` for router weights."""
        if isinstance(task, int):
            return self.modal_shifts[2 * task], self.modal_shifts[2 * task + 1]
        w = task.to(self.modal_shifts[0].dtype)
        sx = sum(w[t] * self.modal_shifts[2 * t] for t in range(w.numel()))
        sy = sum(w[t] * self.modal_shifts[2 * t + 1] for t in range(w.numel()))
        return sx, sy

    def forward(self, fx: torch.Tensor, fy: torch.Tensor, task: int | torch.Tensor,
                control: PromptControl | None = None) -> tuple[torch.Tensor, torch.Tensor, ModuleOutput]:
        B, N, C = fx.shape
        phi = self.norm2(self.dimReduction(self.norm1(torch.cat([fx, fy], dim=-1)))).reshape(B * N, C // 4)
        u, routing = self.MoA(phi, task)
        u = u.view(B, N, C // 4)
        half = u.shape[-1] // 2
        px = torch.sigmoid(u[..., :half].mean(dim=-1, keepdim=True))
        py = torch.sigmoid(u[..., half:].mean(dim=-1, keepdim=True))
        if control is not None:
            px, py = control(px, py)
        sx, sy = self.source_embeddings(task)
        return px * fx + sx, py * fy + sy, ModuleOutput(px, py, routing)


class ConvFusionLayer(nn.Module):
    """Fusion layer F: ``Conv1×1(C→C/4) -> Conv3×3(C/4→C/4) -> Conv1×1(C/4→C)``, no bias/norm/activation.

    Tokens ``(B, H·W, C)`` -> tokens ``(B, H·W, C)``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(dim // 4, dim // 4, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(dim // 4, dim, 1, bias=False)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        f = x.transpose(1, 2).reshape(B, C, *size)
        f = self.conv3(self.conv2(self.conv1(f)))
        return f.flatten(2).transpose(1, 2)
