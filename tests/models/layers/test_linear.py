"""oneDNN linear with a cached reordered weight: values, gradients, cache invalidation, fallbacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unifuse.models.layers import linear as L

needs_onednn = pytest.mark.skipif(not L._ONEDNN, reason="this torch build has no oneDNN linear ops")


def _layer(i=12, o=20, seed=0):
    torch.manual_seed(seed)
    return L.Linear(i, o)


@needs_onednn
def test_values_and_gradients_equal_f_linear():
    lin = _layer()
    base = torch.randn(3, 7, 24)
    x = base[..., ::2].detach().requires_grad_(True)  # strided input, (3, 7, 12)
    w = torch.randn(3, 7, 20)
    out = lin(x)
    ref = F.linear(x, lin.weight, lin.bias)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    got = torch.autograd.grad((out * w).sum(), (x, lin.weight, lin.bias))
    want = torch.autograd.grad((ref * w).sum(), (x, lin.weight, lin.bias))
    for a, b in zip(got, want):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert L.is_cached(lin.weight)  # the fast path ran


@needs_onednn
def test_cached_weight_follows_in_place_updates():
    lin = _layer(seed=1)
    x = torch.randn(5, 12)
    with torch.no_grad():
        before = lin(x)
        lin.weight.mul_(-2.0)  # as an optimizer step does: same storage, new version
        after = lin(x)
    torch.testing.assert_close(after, -2.0 * (before - lin.bias) + lin.bias, rtol=1e-5, atol=1e-5)


def test_fallbacks_are_exactly_f_linear():
    lin = _layer(seed=2).double()
    x = torch.randn(4, 12, dtype=torch.float64)
    assert torch.equal(lin(x), F.linear(x, lin.weight, lin.bias))  # float64: not oneDNN
    w = torch.randn(20, 12)  # a plain tensor, not a parameter: never cached
    x32 = torch.randn(4, 12)
    assert torch.equal(L.linear(x32, w), F.linear(x32, w))
    assert not L.is_cached(w)
    lin32 = _layer(seed=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin32(x32)
    assert y.dtype == torch.bfloat16


def test_state_dict_keys_are_nn_linear_keys():
    assert list(L.Linear(3, 4).state_dict()) == list(nn.Linear(3, 4).state_dict())


@needs_onednn
def test_persistent_plain_weights_are_cached_and_grad_weights_are_not():
    w = torch.randn(20, 12)  # e.g. a weight a module composes from its parameters and keeps
    x = torch.randn(6, 12)
    torch.testing.assert_close(L.linear(x, w, persistent=True), F.linear(x, w), rtol=1e-5, atol=1e-5)
    assert L.is_cached(w)
    wg = torch.randn(20, 12, requires_grad=True)  # needs a gradient: F.linear, never cached
    assert torch.equal(L.linear(x, wg, persistent=True), F.linear(x, wg))
    assert not L.is_cached(wg)


@needs_onednn
def test_two_d_output_can_take_an_in_place_residual_under_autograd():
    lin = _layer(seed=4)
    x = torch.randn(5, 12, requires_grad=True)
    r = torch.randn(5, 20)
    out = lin(x).add_(r)  # a view made inside the custom Function would refuse this
    ref = F.linear(x, lin.weight, lin.bias) + r
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    gx, = torch.autograd.grad(out.sum(), x)
    want, = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(gx, want, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_three_d_output_can_take_an_in_place_residual_under_autograd():
    torch.manual_seed(5)
    lin = L.Linear(12, 20)
    x = torch.randn(2, 9, 12, requires_grad=True)
    r = torch.randn(2, 9, 20)
    out = lin(x)
    assert out.shape == (2, 9, 20) and out.is_contiguous() and out._base is None
    out.add_(r)
    ref = F.linear(x, lin.weight, lin.bias) + r
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    got = torch.autograd.grad((out * r).sum(), (x, lin.weight, lin.bias))
    want = torch.autograd.grad((ref * r).sum(), (x, lin.weight, lin.bias))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(300, 60), (60, 120), (60, 60)])
def test_weight_grad_is_grad_transposed_times_input_either_way(shape):
    out_f, in_f = shape
    g, x = torch.randn(50, out_f, dtype=torch.float64), torch.randn(50, in_f, dtype=torch.float64)
    dw = L.weight_grad(g, x)
    assert dw.shape == (out_f, in_f)
    torch.testing.assert_close(dw, g.t() @ x, rtol=1e-12, atol=1e-12)
