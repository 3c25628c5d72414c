"""2-D rotary position embedding (RoPE) for tokens on an ``h × w`` grid.

Each head of width ``D`` (a multiple of 4) is split in two halves: the first ``D/2`` dims
rotate by the token's row index, the last ``D/2`` by its column index. Within a half the
dims form ``D/4`` pairs ``(2i, 2i+1)`` rotated by ``pos · θ_i`` with
``θ_i = base^(−i/(D/4))``. Because a rotation by ``pos_q·θ`` of the query and ``pos_k·θ`` of
the key leaves ``q·k`` depending on ``pos_q − pos_k`` only, attention scores depend on the
relative offset between tokens, and larger grids simply extend the range of positions.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_2d_angles(h: int, w: int, head_dim: int, base: float = 10000.0, *, device=None) -> Tensor:
    """Rotation angles ``(h·w, head_dim/2)`` (float32) for a row-major ``h × w`` token grid."""
    if head_dim % 4:
        raise ValueError(f"2-D RoPE needs a head width divisible by 4, got {head_dim}")
    q = head_dim // 4
    theta = base ** (-torch.arange(q, dtype=torch.float32, device=device) / q)  # (q,)
    rows = torch.arange(h, dtype=torch.float32, device=device).repeat_interleave(w)  # (N,)
    cols = torch.arange(w, dtype=torch.float32, device=device).repeat(h)
    return torch.cat([rows[:, None] * theta, cols[:, None] * theta], dim=1)  # (N, head_dim/2)


def apply_rope(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate pairs ``(2i, 2i+1)`` of the last axis of ``x`` (``(..., N, D)``) by ``angles`` (``(N, D/2)``)."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)  # (..., N, D/2) each
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)
