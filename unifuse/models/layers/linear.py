"""Linear layers through oneDNN with a cached blocked-layout weight (CPU, float32).

For the thin token matmuls of these models (``(N, 60) × (60, 180)`` in TITA) the default
BLAS reaches a fraction of the CPU's matmul peak; oneDNN's matmul with the weight reordered
once into its blocked layout is 1.1–1.8× faster per call on the AVX2 and AVX-512 CPUs
measured (BENCHMARKS.md, issue 14). The reordered weight is cached per parameter and
rebuilt when the parameter changes (its version counter moves at every optimizer step).

:func:`linear` is ``F.linear`` with that fast path; with autograd it runs a small
:class:`torch.autograd.Function` whose backward also uses oneDNN for the input gradient
(``dX = dY · W`` = a linear map with weight ``Wᵀ``, reordered likewise), and a plain
matmul for ``dW = dYᵀ X``. Results equal ``F.linear``'s up to float rounding (≈1e-7
relative). Everything else (float64, autocast, other devices, weights that are neither
parameters nor declared ``persistent``, builds without oneDNN) takes ``F.linear``.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ...backend import cpu_tuned

__all__ = ["Linear", "linear", "onednn_available", "is_cached", "disabled", "weight_grad"]


def onednn_available() -> bool:
    """Whether this torch build has the oneDNN linear ops used here."""
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return (torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise")
                and hasattr(ops, "_reorder_linear_weight"))
    except (AttributeError, RuntimeError):
        return False


_ONEDNN = onednn_available()
#: id(weight) -> {transposed: ((version, data_ptr), reordered weight)}; an entry is removed
#: when its weight is garbage-collected (tensors compare element-wise, so no WeakKeyDictionary)
_PACKED: dict[int, dict] = {}


def is_cached(w: torch.Tensor) -> bool:
    """Whether a reordered copy of ``w`` is cached (it has been used by the fast path)."""
    return id(w) in _PACKED


def _packed(w: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """``w`` (or ``wᵀ``) reordered for oneDNN, cached while ``w`` is unchanged."""
    key = (w._version, w.data_ptr())
    slot = _PACKED.get(id(w))
    if slot is None:
        slot = _PACKED.setdefault(id(w), {})
        weakref.finalize(w, _PACKED.pop, id(w), None)
    hit = slot.get(transposed)
    if hit is None or hit[0] != key:
        src = w.detach().t().contiguous() if transposed else w.detach()
        hit = (key, torch.ops.mkldnn._reorder_linear_weight(src, None))
        slot[transposed] = hit
    return hit[1]


@contextmanager
def disabled():
    """Run every :func:`linear` as ``F.linear`` inside the block (same products; e.g. for
    ``torch.utils.flop_counter``, which does not know oneDNN's op). Not thread-safe."""
    global _ONEDNN
    saved, _ONEDNN = _ONEDNN, False
    try:
        yield
    finally:
        _ONEDNN = saved


def _onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, transposed: bool = False) -> torch.Tensor:
    """``x (..., in)`` times the cached reordered ``weight`` (or ``weightᵀ``), plus ``bias``."""
    out = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]).contiguous(), _packed(weight, transposed),
                                             bias, "none", [], "")
    return out if x.dim() == 2 else _unviewed(out, (*x.shape[:-1], out.shape[-1]))


def _unviewed(out: torch.Tensor, shape: tuple) -> torch.Tensor:
    """``out.view(shape)`` (``out`` contiguous) as a tensor of its own on the same storage
    rather than a view: autograd forbids in-place updates of a view made inside a custom
    Function, and callers may add a residual in place, as to an ``F.linear`` result."""
    strides = [1]
    for size in reversed(shape[1:]):
        strides.append(strides[-1] * size)
    return out.new_empty(0).set_(out.untyped_storage(), out.storage_offset(), shape, tuple(reversed(strides)))


class _LinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn(x, weight, None if bias is None else bias.detach())

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _onednn(grad, weight, None, transposed=True)
        g2 = grad.reshape(-1, grad.shape[-1])
        if ctx.needs_input_grad[1]:
            gw = weight_grad(g2, x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(0)
        return gx, gw, gb


def weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``dW = gradᵀ · x`` (``grad``: ``(N, out)``, ``x``: ``(N, in)`` -> ``(out, in)``), with the
    wider of the two as the product's columns: for the thin token matrices here MKL's
    ``(out × in)`` product over ``N`` = 8192 rows took 1.1–1.3× longer with ``out > in`` than
    the transposed one (e.g. 7.2 vs 5.4 ms for 300 × 60 on the AVX2 CPU; BENCHMARKS.md,
    session 10). A transposed view is returned in that case."""
    if grad.shape[1] > x.shape[1]:
        return x.t().mm(grad).t()
    return grad.t().mm(x)


def _fast_ok(x: torch.Tensor, weight: torch.Tensor, persistent: bool) -> bool:
    return (_ONEDNN and cpu_tuned(x) and x.dtype == torch.float32 and weight.dtype == torch.float32
            and (isinstance(weight, nn.Parameter) or (persistent and not weight.requires_grad))
            and x.numel() > 0 and not torch.is_autocast_enabled("cpu"))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           persistent: bool = False) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` (``x``: ``(..., in)``, ``weight``: ``(out, in)``), through
    oneDNN with a cached reordered weight where that applies (see the module docstring).

    ``persistent=True`` declares a weight that is not a parameter but lives on (e.g. one a
    module composes from its parameters and keeps for inference), so that its reordered
    copy may be cached too; ignored for a weight that requires grad."""
    if not _fast_ok(x, weight, persistent):
        return F.linear(x, weight, bias)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)):
        return _LinearFn.apply(x, weight, bias)
    return _onednn(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) computed by :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
