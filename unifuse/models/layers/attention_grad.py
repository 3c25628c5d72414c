"""Windowed softmax attention with a hand-written backward, for training.

``softmax(q kᵀ · scale + bias [+ mask]) v`` on many small windows, as autograd would do it,
but computed head by head on chunks of windows, so that every window's ``L × L`` logits stay
in a core's L2 cache between the passes over them. With window attention the products are
tiny (``L × d`` by ``d × L`` with ``d`` = 10 in TITA) and MKL's batched GEMM is several
times slower per matrix when its operands and output stream through main memory (one
``(B·nW·heads, L, L)`` logits tensor is 12 MiB for a batch of two 64×64 crops) than on a
chunk that fits in L2 (BENCHMARKS.md, issue 14, session 9). Per head ``i`` and chunk of
windows:

* forward: ``S = Q Kᵀ`` (``Q``, ``K`` read in place from the projection output),
  ``S = bias_i + scale·S`` then ``S += mask`` (the official order of the two additions),
  ``P = softmax(S)`` in place (``P`` is kept for the backward), ``Oᵀ = Vᵀ Pᵀ`` (the
  transposed product has ``L``-wide rows instead of ``d``-wide ones, about 2× faster in
  MKL);
* backward: ``dP = dO Vᵀ`` into a reused chunk buffer, ``dS`` by the fused softmax backward
  in place, ``dVᵀ = dOᵀ P``, ``dQᵀ = Kᵀ dSᵀ``, ``dKᵀ = Qᵀ dS`` (both times ``scale``),
  ``dbias_i += Σ_windows dS``.

Same values as autograd's up to the summation order inside the matmuls (tests compare both
in float64). Not twice differentiable.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

__all__ = ["window_attention_train"]

#: windows per chunk: one head's logits of 32 windows of 64 tokens are 512 KiB (a core's L2
#: on the CPUs measured); 16 and 64 measured 1.1× slower and equal (BENCHMARKS.md, session 9)
_CHUNK_WINDOWS = 32


def _chunks(B: int, nW: int):
    """``(b, w0, w1)`` for every chunk of at most ``_CHUNK_WINDOWS`` windows of each image."""
    c = max(1, min(nW, _CHUNK_WINDOWS))
    return [(b, w0, min(w0 + c, nW)) for b in range(B) for w0 in range(0, nW, c)]


class _WindowAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale: float):
        B, nW, h, L, d = q.shape
        p = q.new_empty(h, B, nW, L, L)  # softmax output, kept for the backward
        out = q.new_empty(h, B, nW, d, L)  # Oᵀ per head and window
        for b, w0, w1 in _chunks(B, nW):
            m = None if mask is None else mask[w0:w1]
            for i in range(h):
                s = p[i, b, w0:w1]
                torch.bmm(q[b, w0:w1, i], k[b, w0:w1, i].transpose(1, 2), out=s)
                torch.add(bias[i], s, alpha=scale, out=s)
                if m is not None:
                    s.add_(m)
                torch._softmax(s, -1, False, out=s)
                torch.bmm(v[b, w0:w1, i].transpose(1, 2), s.transpose(1, 2), out=out[i, b, w0:w1])
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        ctx.bias_needs_grad = ctx.needs_input_grad[3]
        return out.permute(1, 2, 0, 4, 3)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v, p = ctx.saved_tensors
        B, nW, h, L, d = q.shape
        dq, dk, dv = (q.new_empty(h, B, nW, d, L) for _ in range(3))  # transposed, like the output
        dbias = q.new_zeros(h, L, L) if ctx.bias_needs_grad else None
        buf = q.new_empty(max(1, min(nW, _CHUNK_WINDOWS)), L, L)
        for b, w0, w1 in _chunks(B, nW):
            ds = buf[: w1 - w0]
            for i in range(h):
                pc, go = p[i, b, w0:w1], grad_out[b, w0:w1, i]
                torch.bmm(go, v[b, w0:w1, i].transpose(1, 2), out=ds)  # dP
                torch._softmax_backward_data(ds, pc, -1, pc.dtype, grad_input=ds)  # dS, in place
                torch.bmm(go.transpose(1, 2), pc, out=dv[i, b, w0:w1])
                torch.bmm(k[b, w0:w1, i].transpose(1, 2), ds.transpose(1, 2), out=dq[i, b, w0:w1])
                torch.bmm(q[b, w0:w1, i].transpose(1, 2), ds, out=dk[i, b, w0:w1])
                if dbias is not None:
                    dbias[i] += ds.sum(0)
        dq.mul_(ctx.scale)
        dk.mul_(ctx.scale)
        back = lambda t: t.permute(1, 2, 0, 4, 3)  # noqa: E731
        return back(dq), back(dk), back(dv), dbias, None, None


def window_attention_train(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                           mask: torch.Tensor | None, scale: float) -> torch.Tensor:
    """``softmax(q kᵀ · scale + bias + mask) v`` with the chunked forward and backward above.

    Args:
        q, k, v: ``(B, nW, heads, L, d)`` (any strides; read in place).
        bias: ``(heads, L, L)``, added to every window's logits (may need a gradient).
        mask: ``(nW, L, L)`` constant (0 / -100 shift mask) or ``None``.
        scale: logit scale (``d ** -0.5``).
    Returns:
        ``(B, nW, heads, L, d)``, a permuted view of a contiguous ``(heads, B, nW, d, L)``.
    """
    return _WindowAttention.apply(q, k, v, bias, mask, scale)
