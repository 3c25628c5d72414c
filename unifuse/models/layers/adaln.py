"""Adaptive LayerNorm modulation and its low-rank (LoRA) conditioning MLP.

``modulate(LN(x), shift, scale)`` is ``LN(x)·(1 + scale) + shift`` (``form="one_plus"``,
identity at zero modulation, as in DiT) or ``LN(x)·scale + shift`` (``form="plain"``).
:class:`LoRAAdaLN` produces ``n_chunks`` modulation tensors of width ``dim`` from a
*per-token* condition through a rank-``rank`` bottleneck, ``SiLU → Linear(dim, rank) → SiLU →
Linear(rank, n_chunks·dim)``; the last Linear is zero-initialised (adaLN-Zero), so every
modulation is 0 at initialisation.
"""

from __future__ import annotations

from torch import Tensor, nn

ADALN_FORMS = ("one_plus", "plain")


def modulate(x: Tensor, shift: Tensor, scale: Tensor, form: str = "one_plus") -> Tensor:
    """``x·(1 + scale) + shift`` or ``x·scale + shift``; all broadcastable to ``x``."""
    if form == "one_plus":
        return x * (1 + scale) + shift
    if form == "plain":
        return x * scale + shift
    raise ValueError(f"adaln form must be one of {ADALN_FORMS}, got {form!r}")


class LoRAAdaLN(nn.Module):
    """Low-rank AdaLN modulation: ``(..., dim)`` condition -> ``n_chunks`` tensors ``(..., dim)``."""

    def __init__(self, dim: int, rank: int, n_chunks: int):
        super().__init__()
        self.n_chunks = n_chunks
        self.mlp1 = nn.Sequential(nn.SiLU(), nn.Linear(dim, rank))
        self.mlp2 = nn.Sequential(nn.SiLU(), nn.Linear(rank, n_chunks * dim))
        self.zero_init()

    def zero_init(self) -> None:
        nn.init.zeros_(self.mlp2[1].weight)
        nn.init.zeros_(self.mlp2[1].bias)

    def forward(self, c: Tensor) -> tuple[Tensor, ...]:
        return self.mlp2(self.mlp1(c)).chunk(self.n_chunks, dim=-1)
