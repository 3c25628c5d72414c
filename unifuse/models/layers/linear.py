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


def _vector_lanes() -> int:
    """float32 lanes of this CPU's widest vector unit that torch's kernels use (16 with
    AVX-512, else 8)."""
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return 8
    return 16 if "AVX512" in cap.upper() else 8


_LANES = _vector_lanes()


def out_padding(n: int) -> int:
    """Zero rows appended to an ``n``-row (output features) weight before it is reordered.

    oneDNN's matmul kernels work on output columns in whole vectors; with ``n`` not a multiple
    of the vector width (TITA's 60, 180, 300) the remainder columns run a slow tail. Padding
    the weight to the next multiple of 8 (AVX2: 8 floats per vector) and reading the first
    ``n`` columns of the result made the product 1.05–1.3× faster in absolute time (60 -> 64:
    1.17–1.31×, over 2048 and 8192 rows, inputs of 60, 120 and 300 features) on the AVX2 CPU
    measured (BENCHMARKS.md, session 10). Not measured on AVX-512 (padded to a multiple of
    16 there). Weights of at most one vector are left alone."""
    return -n % _LANES if n > _LANES else 0


def _packed(w: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """``w`` (or ``wᵀ``) reordered for oneDNN, with :func:`out_padding` zero rows, cached
    while ``w`` is unchanged."""
    key = (w._version, w.data_ptr())
    slot = _PACKED.get(id(w))
    if slot is None:
        slot = _PACKED.setdefault(id(w), {})
        weakref.finalize(w, _PACKED.pop, id(w), None)
    hit = slot.get(transposed)
    if hit is None or hit[0] != key:
        src = w.detach().t().contiguous() if transposed else w.detach()
        pad = out_padding(src.shape[0])
        if pad:
            src = F.pad(src, (0, 0, 0, pad))
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
    n = weight.shape[1] if transposed else weight.shape[0]
    pad = out_padding(n)
    if pad and bias is not None:
        bias = F.pad(bias, (0, pad))
    out = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]).contiguous(), _packed(weight, transposed),
                                             bias, "none", [], "")
    return out if (x.dim() == 2 and not pad) else _first_columns(out, x.shape[:-1], n)


def _first_columns(out: torch.Tensor, lead: tuple, n: int) -> torch.Tensor:
    """The first ``n`` columns of the ``(rows, n + pad)`` product, shaped ``(*lead, n)`` (row
    stride ``n + pad``), as a tensor of its own on the same storage rather than a view:
    autograd forbids in-place updates of a view made inside a custom Function, and callers
    may add a residual in place, as to an ``F.linear`` result."""
    strides = [1, out.stride(0)]
    for size in reversed(lead[1:]):
        strides.append(strides[-1] * size)
    res = out.new_empty(0)
    return res.set_(out.untyped_storage(), out.storage_offset(), (*lead, n), tuple(reversed(strides)))


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
    return (_ONEDNN and x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
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
