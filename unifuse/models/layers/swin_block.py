"""Pre-norm Swin transformer block (self-attention), as in SwinIR / SwinFusion."""

from __future__ import annotations

import torch
from torch import nn

from ...backend import cpu_tuned
from ...parallel import parallel_map, workers
from .drop_path import DropPath, residual_add
from .mlp import Mlp
from .window import shift_mask_windows, window_order, window_pieces
from .window_attention import WindowAttention, WindowGrid


def make_grid(H: int, W: int, ws: int, shift: int, device: torch.device) -> WindowGrid:
    """Window geometry for an ``H × W`` map (multiples of ``ws``); mask only when shifted."""
    mask = shift_mask_windows(H, W, ws, shift, device) if shift else None
    return WindowGrid(H // ws, W // ws, mask)


class _PermuteTokens(torch.autograd.Function):
    """``x.index_select(1, order)`` for a permutation ``order`` of the token axis, whose backward
    gathers with the inverse permutation: autograd's ``index_select`` backward scatters with
    ``index_add`` into zeros, 8× slower than the gather for ``(2, 4096, 60)`` on the AVX2 CPU
    measured (1.33 vs 0.16 ms; BENCHMARKS.md, session 10)."""

    @staticmethod
    def forward(ctx, x, order, inverse):
        ctx.inverse = inverse
        return x.index_select(1, order)

    @staticmethod
    def backward(ctx, grad):
        return grad.index_select(1, ctx.inverse), None, None


def permute_tokens(x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """``x (B, N, ...)`` with its token axis gathered by the permutation ``order`` (``inverse``
    undoes it; used by the backward)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _PermuteTokens.apply(x, order, inverse)
    return x.index_select(1, order)


def to_windows(x: torch.Tensor, H: int, W: int, ws: int, shift: int) -> torch.Tensor:
    """Tokens ``(B, H·W, C)`` -> (cyclically shifted) windows ``(B, nW, ws², C)``.

    Same layout as ``window_partition(roll(x, (-shift, -shift)))``, made by one cached gather.
    """
    B, _, C = x.shape
    order, inverse = window_order(H, W, ws, shift, x.device)
    return permute_tokens(x, order, inverse).view(B, (H // ws) * (W // ws), ws * ws, C)


def from_windows(w: torch.Tensor, H: int, W: int, ws: int, shift: int) -> torch.Tensor:
    """Inverse of :func:`to_windows`: ``(B, nW, ws², C)`` -> tokens ``(B, H·W, C)``."""
    order, inverse = window_order(H, W, ws, shift, w.device)
    return permute_tokens(w.reshape(w.shape[0], H * W, -1), inverse, order)


#: on one thread, maps of up to this many tokens (all images of the batch) take the whole-map
#: path: with the fused attention kernel it was faster there (1 thread, TITA no-grad forward:
#: 1.14× at 2 × 64², 1.28× at 128², 1.06× at 256²; BENCHMARKS.md, session 11), while the
#: blockwise path keeps larger maps' intermediates in cache and bounds their memory
WHOLE_MAP_MAX_TOKENS = 65536


def blockwise_ok(tokens: int, device: torch.device | str = "cpu") -> bool:
    """Use the blockwise path for a map of ``tokens`` tokens (batch × H × W) on ``device``: no
    autograd recording (inference, or the no-grad loss re-evaluation of training, where the
    block draws its drop-path factors up front), and either a map larger than
    :data:`WHOLE_MAP_MAX_TOKENS` (memory) or, on the CPU (:func:`unifuse.backend.cpu_tuned`),
    more than one thread to share the pieces out (torch threads, or the workers of an open
    :func:`unifuse.parallel.parallel_scope`). An accelerator runs smaller maps whole: its
    pieces would run one after the other as many small kernels."""
    if torch.is_grad_enabled():
        return False
    threads = max(torch.get_num_threads(), workers()) if cpu_tuned(device) else 1
    return threads > 1 or tokens > WHOLE_MAP_MAX_TOKENS


def blockwise(fn, streams: tuple[torch.Tensor, ...], H: int, W: int, ws: int, shift: int) -> tuple[torch.Tensor, ...]:
    """Run a whole Swin block piece by piece (inference).

    ``streams``: token tensors ``(B, H·W, C)``. For every piece of whole (shifted) windows
    (:class:`~.window.WindowPieces`) the tokens are gathered from each stream as
    ``(1, n, ws², C)`` windows, ``fn(windows, mask, b)`` (``b``: the batch index of the
    piece) returns the block's outputs for them (same layout) and they are scattered back
    to raster order. Every intermediate of a
    piece (qkv, attention, MLP hidden) stays in cache, and the roll/partition copies of
    the whole map disappear. Valid because a Swin block mixes tokens only inside windows.

    With ``torch.get_num_threads() = T > 1`` the pieces are shared out by
    :func:`unifuse.parallel.parallel_map` to ``T`` threads (the caller and ``T - 1`` helpers)
    that each run single-threaded ops (the pieces are independent and write disjoint rows):
    no intra-op barrier per small op, which on a loaded 2-core machine made the piecewise
    pass several times slower than one big op per step. Grad mode, inference mode and
    autocast carry into the helpers; the caller's thread count is restored afterwards.
    """
    B, N, C = streams[0].shape
    pc = window_pieces(H, W, ws, shift, streams[0].device)
    L = ws * ws
    flat = [t.reshape(B * N, C) for t in streams]
    outs = [torch.empty_like(f) for f in flat]

    def run(job):
        b, (t0, t1, mask) = job
        rows = pc.order[t0:t1] if b == 0 else pc.order[t0:t1] + b * N
        res = fn([f.index_select(0, rows).view(1, -1, L, C) for f in flat], mask, b)
        for o, r in zip(outs, res):
            o.index_copy_(0, rows, r.reshape(-1, C))

    jobs = [(b, p) for b in range(B) for p in pc.pieces]
    parallel_map(run, jobs, device=streams[0].device)
    return tuple(o.view(B, N, C) for o in outs)


class SwinBlock(nn.Module):
    """``x + DP(W-MSA(LN1(x)))`` then ``x + DP(MLP(LN2(x)))`` on tokens ``(B, H·W, C)``.

    Args:
        dim: channels C. num_heads: attention heads. window_size: ws.
        shift: cyclic shift (0 or ws/2). mlp_ratio: hidden = C·ratio. drop_path: rate.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 8, shift: int = 0,
                 mlp_ratio: float = 2.0, drop_path: float = 0.0):
        super().__init__()
        self.window_size, self.shift = window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        H, W = size
        ws, s = self.window_size, self.shift
        # drop-path factors in the order the whole-map path draws them (attention, MLP)
        f_attn = self.drop_path.factors(x)
        f_mlp = self.drop_path.factors(x)
        if blockwise_ok(x.shape[0] * x.shape[1], x.device):
            def piece(t, mask, b):
                pick = lambda f: None if f is None else f[b : b + 1]  # noqa: E731
                return (self._window_block(t[0], mask, pick(f_attn), pick(f_mlp)),)

            return blockwise(piece, (x,), H, W, ws, s)[0]
        grid = make_grid(H, W, ws, s, x.device)
        h = self.attn(to_windows(self.norm1(x), H, W, ws, s), grid)
        x = residual_add(x, from_windows(h, H, W, ws, s), f_attn)
        return residual_add(x, self.mlp(self.norm2(x)), f_mlp)

    def _window_block(self, x: torch.Tensor, mask: torch.Tensor | None, f_attn, f_mlp) -> torch.Tensor:
        """The whole block on the tokens of ``n`` whole windows ``(1, n, ws², C)`` (no autograd);
        ``f_attn`` / ``f_mlp``: the piece's drop-path factors or ``None``."""
        x = residual_add(x, self.attn(self.norm1(x), WindowGrid(0, 0, mask)), f_attn)
        return residual_add(x, self.mlp(self.norm2(x)), f_mlp)
