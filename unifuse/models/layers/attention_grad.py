"""Windowed softmax attention with a hand-written backward, for training.

``softmax(q kᵀ · scale + bias [+ mask]) v`` on many small windows, as autograd would do it,
but with every batched matmul given the memory layout the CPU BLAS handles fastest. With
window attention the products are tiny (``L × d`` by ``d × L`` with ``d`` = 10 in TITA)
and the library's speed depends several-fold on which operand is transposed in memory;
autograd's own backward of ``(q @ kᵀ).softmax() @ v`` lands on the slow layouts for three of
its four products (``benchmarks/bench_train.py`` and BENCHMARKS.md, issue 14). Here:

* forward: ``S = bmm(q·scale, kᵀ)`` with ``kᵀ`` made contiguous (``d × L`` per window),
  ``S += bias`` then ``S += mask`` (the official order of the two additions),
  ``P = softmax(S)``, ``Oᵀ = bmm(vᵀ, Pᵀ)`` (``v`` stored transposed; the transposed product
  has ``L``-wide rows instead of ``d``-wide ones and is about 2× faster in MKL);
* backward: ``dVᵀ = bmm(dOᵀ, P)``, ``dP = bmm(dO, vᵀ)``, ``dS`` by the fused softmax
  backward, ``dQᵀ = bmm(kᵀ, dSᵀ) · scale``, ``dKᵀ = bmm((q·scale)ᵀ, dS)``, and
  ``dbias = Σ_windows dS``.

Same operations and the same values as autograd's up to the summation order inside the
matmuls (tests compare both in float64). Not twice differentiable.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

__all__ = ["window_attention_train"]


class _WindowAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale: float):
        B, nW, h, L, d = q.shape
        n = B * nW * h
        qs = (q * scale).reshape(n, L, d)  # also the contiguous copy bmm wants
        qt = qs.transpose(1, 2).contiguous()  # (n, d, L): for dKᵀ in the backward
        kt = k.transpose(-2, -1).reshape(n, d, L)
        vt = v.transpose(-2, -1).reshape(n, d, L)
        logits = torch.bmm(qs, kt)  # (n, L, L)
        view = logits.view(B, nW, h, L, L)
        view.add_(bias)
        if mask is not None:
            view.add_(mask[:, None])
        p = torch.softmax(logits, dim=-1)
        out_t = torch.bmm(vt, p.transpose(1, 2))  # (n, d, L) = (P V)ᵀ
        ctx.save_for_backward(qt, kt, vt, p)
        ctx.scale = scale
        ctx.shape = (B, nW, h, L, d)
        ctx.bias_needs_grad = ctx.needs_input_grad[3]
        return out_t.view(B, nW, h, d, L).transpose(-2, -1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        qt, kt, vt, p = ctx.saved_tensors
        B, nW, h, L, d = ctx.shape
        n = B * nW * h
        go = grad_out.reshape(n, L, d)
        got = grad_out.transpose(-2, -1).reshape(n, d, L)
        dvt = torch.bmm(got, p)  # (n, d, L) = (Pᵀ dO)ᵀ
        dp = torch.bmm(go, vt)  # (n, L, L)
        ds = torch._softmax_backward_data(dp, p, -1, p.dtype)
        del dp
        dqt = torch.bmm(kt, ds.transpose(1, 2)).mul_(ctx.scale)  # (n, d, L) = (dS k)ᵀ · scale
        dkt = torch.bmm(qt, ds)  # (n, d, L) = (dSᵀ q·scale)ᵀ
        dbias = ds.view(B, nW, h, L, L).sum(dim=(0, 1)) if ctx.bias_needs_grad else None
        return (dqt.view(B, nW, h, d, L).transpose(-2, -1), dkt.view(B, nW, h, d, L).transpose(-2, -1),
                dvt.view(B, nW, h, d, L).transpose(-2, -1), dbias, None, None)


def window_attention_train(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                           mask: torch.Tensor | None, scale: float) -> torch.Tensor:
    """``softmax(q kᵀ · scale + bias + mask) v`` with the layout-aware backward above.

    Args:
        q, k, v: ``(B, nW, heads, L, d)`` (any strides).
        bias: ``(heads, L, L)``, added to every window's logits (may need a gradient).
        mask: ``(nW, L, L)`` constant (0 / -100 shift mask) or ``None``.
        scale: logit scale (``d ** -0.5``).
    Returns:
        ``(B, nW, heads, L, d)``, a transposed view of a contiguous ``(B, nW, heads, d, L)``.
    """
    return _WindowAttention.apply(q, k, v, bias, mask, scale)
