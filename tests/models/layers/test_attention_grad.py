"""The hand-written backward of window attention (training path): gradcheck and strided inputs."""

from __future__ import annotations

import pytest
import torch

from unifuse.models.layers import attention_grad
from unifuse.models.layers.attention_grad import window_attention_train


def _strided_qkv(g, B, nW, h, L, d):
    """q, k, v as views of one ``(B, nW, L, 3, h, d)`` projection, as the attention modules make them."""
    base = torch.randn(B, nW, L, 3, h, d, generator=g, dtype=torch.float64)
    return [base[:, :, :, i].transpose(2, 3).detach().requires_grad_(True) for i in range(3)]


@pytest.mark.parametrize("shifted", [False, True])
def test_gradcheck(shifted):
    g = torch.Generator().manual_seed(0)
    B, nW, h, L, d = 2, 3, 2, 4, 3
    q, k, v = _strided_qkv(g, B, nW, h, L, d)
    bias = torch.randn(h, L, L, generator=g, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(nW, L, L, generator=g) < 0.3).double() * -100.0 if shifted else None
    assert torch.autograd.gradcheck(lambda *t: window_attention_train(*t, mask, d**-0.5), (q, k, v, bias))


@pytest.mark.parametrize("chunk", [32, 3, 1])
def test_equals_written_out_attention_and_autograd(chunk, monkeypatch):
    """Whole image per chunk, chunks that do not divide the 4 windows, one window per chunk."""
    monkeypatch.setattr(attention_grad, "_CHUNK_WINDOWS", chunk)
    g = torch.Generator().manual_seed(1)
    B, nW, h, L, d = 2, 4, 3, 16, 5
    q, k, v = _strided_qkv(g, B, nW, h, L, d)
    bias = torch.randn(h, L, L, generator=g, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(nW, L, L, generator=g) < 0.3).double() * -100.0
    w = torch.randn(B, nW, h, L, d, generator=g, dtype=torch.float64)
    out = window_attention_train(q, k, v, bias, mask, d**-0.5)
    ref = ((q * d**-0.5) @ k.transpose(-2, -1) + bias + mask[:, None]).softmax(-1) @ v
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-13)
    got = torch.autograd.grad((out * w).sum(), (q, k, v, bias))
    want = torch.autograd.grad((ref * w).sum(), (q, k, v, bias))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_constant_bias_gets_no_gradient():
    g = torch.Generator().manual_seed(2)
    q, k, v = _strided_qkv(g, 1, 2, 2, 4, 3)
    bias = torch.randn(2, 4, 4, generator=g, dtype=torch.float64)
    out = window_attention_train(q, k, v, bias, None, 3**-0.5)
    gq, = torch.autograd.grad(out.sum(), (q,))
    assert gq.shape == q.shape and torch.isfinite(gq).all()
