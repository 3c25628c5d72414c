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

__all__ = ["window_attention_train", "attend_chunks", "head_chunks", "chunk_size"]

#: windows per chunk: one head's logits of 32 windows of 64 tokens are 512 KiB (a core's L2
#: on the CPUs measured); 16 and 64 measured 1.1× slower and equal (BENCHMARKS.md, session 9)
_CHUNK_WINDOWS = 32


def chunk_size(nW: int) -> int:
    """Windows per chunk for ``nW`` windows per image."""
    return max(1, min(nW, _CHUNK_WINDOWS))


def head_chunks(t: torch.Tensor, c: int) -> list:
    """Views ``t[b, w0:w0 + c, i]`` of a ``(B, nW, heads, ...)`` tensor: a list over
    ``(b, chunk)`` (image-major) of tuples over heads. Made by ``unbind`` / ``split`` (one C++
    call per level instead of three Python indexing ops per view)."""
    return [ch.unbind(1) for tb in t.unbind(0) for ch in tb.split(c, 0)]


def attend_chunks(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                  mask: torch.Tensor | None, scale: float, probs: torch.Tensor | None = None) -> torch.Tensor:
    """The forward of window attention, head by head on chunks of windows, without autograd.

    ``q, k, v``: ``(B, nW, h, L, d)`` (any strides; read in place); ``bias``: ``(h, L, L)``;
    ``mask``: ``(nW, L, L)`` or None. Per head and chunk: ``S = Q Kᵀ``, ``S = bias + scale·S``
    (``+ mask``), softmax in place, ``Oᵀ = Vᵀ Sᵀ``. ``probs``: an ``(h, B, nW, L, L)`` buffer
    that receives the softmax output (kept for a backward), or None to reuse one chunk buffer.
    Returns ``Oᵀ`` as a contiguous ``(h, B, nW, d, L)`` tensor.
    """
    B, nW, h, L, d = q.shape
    c = chunk_size(nW)
    out = q.new_empty(h, B, nW, d, L)
    hc = lambda t: head_chunks(t, c)  # noqa: E731
    masks = [None] * len(range(0, nW, c)) if mask is None else mask.split(c)
    kept = None if probs is None else hc(probs.permute(1, 2, 0, 3, 4))
    buf = q.new_empty(c, L, L) if probs is None else None
    views = zip(hc(q), hc(k.transpose(-2, -1)), hc(v.transpose(-2, -1)), hc(out.permute(1, 2, 0, 3, 4)))
    for j, (qc, ktc, vtc, oc) in enumerate(views):
        m = masks[j % len(masks)]
        scores = (buf[: qc[0].shape[0]],) * h if kept is None else kept[j]
        for i, s in enumerate(scores):
            torch.bmm(qc[i], ktc[i], out=s)
            torch.add(bias[i], s, alpha=scale, out=s)
            if m is not None:
                s.add_(m)
            torch._softmax(s, -1, False, out=s)
            torch.bmm(vtc[i], s.transpose(1, 2), out=oc[i])
    return out


class _WindowAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale: float):
        B, nW, h, L, d = q.shape
        p = q.new_empty(h, B, nW, L, L)  # softmax output, kept for the backward
        out = attend_chunks(q, k, v, bias, mask, scale, probs=p)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        ctx.bias_needs_grad = ctx.needs_input_grad[3]
        return out.permute(1, 2, 0, 4, 3)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v, p = ctx.saved_tensors
        B, nW, h, L, d = q.shape
        c = chunk_size(nW)
        dq, dk, dv = (q.new_empty(h, B, nW, d, L) for _ in range(3))  # transposed, like the output
        dbias = q.new_zeros(h, L, L) if ctx.bias_needs_grad else None
        buf = q.new_empty(c, L, L)
        hc = lambda t: head_chunks(t, c)  # noqa: E731
        tr = lambda t: t.transpose(-2, -1)  # noqa: E731
        hm = lambda t: t.permute(1, 2, 0, 3, 4)  # noqa: E731  (h, B, nW, ...) -> (B, nW, h, ...)
        views = zip(hc(grad_out), hc(tr(grad_out)), hc(tr(q)), hc(tr(k)), hc(tr(v)), hc(hm(p)),
                    hc(hm(dq)), hc(hm(dk)), hc(hm(dv)))
        for goc, gotc, qtc, ktc, vtc, pc, dqc, dkc, dvc in views:
            ds = buf[: pc[0].shape[0]]
            dst = ds.transpose(1, 2)
            for i in range(h):
                torch.bmm(goc[i], vtc[i], out=ds)  # dP
                torch._softmax_backward_data(ds, pc[i], -1, ds.dtype, grad_input=ds)  # dS, in place
                torch.bmm(gotc[i], pc[i], out=dvc[i])
                torch.bmm(ktc[i], dst, out=dqc[i])
                torch.bmm(qtc[i], ds, out=dkc[i])
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
