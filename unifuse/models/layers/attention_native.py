"""Window attention for small head dims through the fused C++ kernel of ``csrc/window_attention.cpp``.

``softmax(q kᵀ · scale + bias [+ mask]) v`` per (image, window, head), forward and backward,
with every window's ``L × L`` logits kept in registers one row at a time: no logits tensor
is written except the softmax output kept for the backward. On the AVX2 CPU measured the
PyTorch path (batched GEMMs of ``64 × 10`` by ``10 × 64`` matrices at ≈ 15 GFLOP/s, then
the softmax as separate passes) took several times longer (BENCHMARKS.md, session 11).

Used by :mod:`.window_attention` when :func:`supported` (CPU, float32 / float64, no
autocast, ``L`` a multiple of 8 up to 64, ``d ≤ 64``) and the kernel could be built
(:mod:`unifuse.native`; ``UNIFUSE_NATIVE=0`` switches it off). The output is written in the
token-major ``(B, nW, L, heads·d)`` layout the output projection reads, so merging the
heads is a view. With ``torch.get_num_threads() > 1`` outside a
:func:`unifuse.parallel.parallel_scope`, the items are split into contiguous ranges run side
by side (a few per thread; each range its own bias-gradient buffer, summed afterwards).

Same values as the PyTorch path up to float rounding (float32: the exp is a polynomial of
about 2 ulp; float64: ``exp`` of the C library); not twice differentiable.
"""

from __future__ import annotations

import ctypes

import torch
from torch.autograd.function import once_differentiable

from ... import native
from ...backend import cpu_tuned
from ...parallel import parallel_map, workers

__all__ = ["supported", "native_window_attention", "disabled"]

_P = ctypes.c_void_p
_I = ctypes.c_int
_L = ctypes.c_int64
_D = ctypes.c_double
_FWD_ARGS = [_P, _P, _P, _P, _P, _P, _P, _P, _D, _P, _P, _P, _I, _I, _I, _I, _L, _L]
_BWD_ARGS = [_P, _P, _P, _P, _P, _P, _P, _P, _P, _D, _P, _P, _P, _P, _P, _P, _P, _I, _I, _I, _I, _L, _L]
_KERNEL = native.Kernel("window_attention", "uf_wattn_abi", 1, {
    f"uf_wattn_{direction}_{tag}": (args, _I)
    for direction, args in (("fwd", _FWD_ARGS), ("bwd", _BWD_ARGS)) for tag in ("f32", "f64")
})
#: ``with disabled():`` takes the PyTorch path inside the block (see :class:`unifuse.native.Switch`)
disabled = _KERNEL.disabled
_FNS: dict = {}  # filled whole on first use: other threads never see a partly filled table

#: fewest items (image, window, head) per range when the work is split over threads, and
#: ranges per thread (several, so that a thread that starts late, e.g. a helper woken on a
#: busy machine, leaves its share to the others instead of delaying the whole call)
_MIN_ITEMS_PER_RANGE = 48
_RANGES_PER_THREAD = 4


def _fns():
    """``{(direction, dtype): C function}``, or ``{}`` when the kernel is unavailable."""
    global _FNS
    if not _FNS:
        lib = _KERNEL.lib()
        if lib is None:
            return {}
        _FNS = {(direction, dtype): getattr(lib, f"uf_wattn_{direction}_{tag}")
                for direction in ("fwd", "bwd") for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64"))}
    return _FNS


def supported(q: torch.Tensor, bias: torch.Tensor) -> bool:
    """Whether :func:`native_window_attention` can take these ``(B, nW, heads, L, d)`` inputs here."""
    L, d = q.shape[-2:]
    return (_KERNEL.switch.on and cpu_tuned(q) and q.dtype in (torch.float32, torch.float64) and bias.dtype == q.dtype
            and L % 8 == 0 and 0 < L <= 64 and 0 < d <= 64 and not torch.is_autocast_enabled("cpu")
            and bool(_fns()))


def _strides(t: torch.Tensor):
    """``(image, window, head, token)`` strides of a ``(B, nW, heads, L, d)`` tensor with a contiguous last dim."""
    return (_L * 4)(*t.stride()[:4])


def _last_contiguous(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _ranges(n: int) -> list:
    """Contiguous item ranges: one on a single thread (or inside a parallel scope, whose
    workers already share out larger pieces), else up to ``_RANGES_PER_THREAD`` per thread."""
    threads = 1 if workers() else torch.get_num_threads()
    k = 1 if threads <= 1 else max(1, min(threads * _RANGES_PER_THREAD, n // _MIN_ITEMS_PER_RANGE))
    cuts = [n * i // k for i in range(k + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def _run(call, ranges: list) -> None:
    """``call(i, start, end)`` for every range (side by side when there are several)."""
    jobs = [(i, *r) for i, r in enumerate(ranges)]
    rcs = parallel_map(lambda j: call(*j), jobs) if len(jobs) > 1 else [call(*jobs[0])]
    if any(rcs):
        raise RuntimeError("window_attention kernel refused its arguments")  # guarded by supported()


def _forward(q, k, v, bias, mask, scale, probs):
    B, nW, h, L, d = q.shape
    out = q.new_empty(B, nW, L, h, d).transpose(2, 3)  # token-major: merging heads is a view
    fn = _fns()["fwd", q.dtype]
    args = (q.data_ptr(), _strides(q), k.data_ptr(), _strides(k), v.data_ptr(), _strides(v), bias.data_ptr(),
            None if mask is None else mask.data_ptr(), float(scale), out.data_ptr(), _strides(out),
            None if probs is None else probs.data_ptr(), L, nW, h, d)
    _run(lambda i, start, end: fn(*args, start, end), _ranges(B * nW * h))
    return out


class _NativeWindowAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale: float):
        B, nW, h, L, d = q.shape
        probs = q.new_empty(B, nW, h, L, L)  # softmax output, kept for the backward
        out = _forward(q, k, v, bias, mask, scale, probs)
        ctx.save_for_backward(q, k, v, probs)
        ctx.scale = scale
        ctx.bias_needs_grad = ctx.needs_input_grad[3]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v, probs = ctx.saved_tensors
        B, nW, h, L, d = q.shape
        g = _last_contiguous(grad_out)
        dq, dk, dv = (q.new_empty(B, nW, L, h, d).transpose(2, 3) for _ in range(3))
        ranges = _ranges(B * nW * h)
        dbias = [q.new_zeros(h, L, L) for _ in ranges] if ctx.bias_needs_grad else [None] * len(ranges)
        fn = _fns()["bwd", q.dtype]
        args = (q.data_ptr(), _strides(q), k.data_ptr(), _strides(k), v.data_ptr(), _strides(v), probs.data_ptr(),
                g.data_ptr(), _strides(g), float(ctx.scale), dq.data_ptr(), _strides(dq), dk.data_ptr(),
                _strides(dk), dv.data_ptr(), _strides(dv))

        def call(i, start, end):
            db = dbias[i]
            return fn(*args, None if db is None else db.data_ptr(), L, nW, h, d, start, end)

        _run(call, ranges)
        db = None
        if ctx.bias_needs_grad:
            db = dbias[0]
            for extra in dbias[1:]:
                db += extra
        return dq, dk, dv, db, None, None


def native_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                            mask: torch.Tensor | None, scale: float) -> torch.Tensor:
    """``softmax(q kᵀ · scale + bias [+ mask]) v`` by the fused kernel (check :func:`supported` first).

    Args:
        q, k, v: ``(B, nW, heads, L, d)`` float32 / float64 CPU tensors, any strides (a
            non-contiguous last dim is copied).
        bias: ``(heads, L, L)`` logit bias (may need a gradient).
        mask: ``(nW, L, L)`` constant added after the bias (0 / -100 shift mask), or ``None``.
        scale: logit scale (``d ** -0.5``).
    Returns:
        ``(B, nW, heads, L, d)``: a transposed view of a contiguous ``(B, nW, L, heads, d)``
        tensor (so ``out.transpose(2, 3).reshape(B, nW, L, heads·d)`` is a view).
    """
    B, nW, h, L, d = q.shape
    if k.shape != q.shape or v.shape != q.shape or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v must share shape and dtype, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if bias.shape != (h, L, L) or (mask is not None and mask.shape != (nW, L, L)):
        raise ValueError(f"bias must be {(h, L, L)} and mask {(nW, L, L)} or None, got {tuple(bias.shape)}, "
                         f"{None if mask is None else tuple(mask.shape)}")  # the kernel indexes them unchecked
    q, k, v = (_last_contiguous(t) for t in (q, k, v))
    bias = bias.contiguous()
    mask = None if mask is None else mask.to(q.dtype).contiguous()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, bias)):
        return _NativeWindowAttention.apply(q, k, v, bias, mask, scale)
    return _forward(q, k, v, bias, mask, scale, None)
