"""IPA / PA: the weights composed for inference follow parameter updates and give the
training path's values."""

from __future__ import annotations

import copy

import pytest
import torch

from unifuse.models.layers.ipa import InteractionPixelAttention, PixelAttention, _PixelAttentionBase


@pytest.mark.parametrize("cls", [InteractionPixelAttention, PixelAttention])
def test_cached_inference_weights_equal_grad_path_and_follow_updates(cls):
    torch.manual_seed(0)
    m = cls(12, num_heads=3)
    x, y = torch.randn(2, 7, 12), torch.randn(2, 7, 12)
    want = m(x, y)  # autograd on: nothing composed is kept
    assert getattr(m, "_weight_cache", None) is None
    with torch.no_grad():
        got = m(x, y)
        assert m._weight_cache is not None
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        m.cross_attn_0_to_1.in_proj_weight.mul_(0.5)  # an optimizer-like in-place update
        m.relation_judger[0].fc1.weight.add_(0.1)
        after = m(x, y)
    fresh = copy.deepcopy(m)
    fresh._weight_cache = None
    ref = fresh(x, y)
    for a, b in zip(after, ref):
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(after[0], got[0])


def _ipa64(seed: int, dim: int = 12, heads: int = 3) -> InteractionPixelAttention:
    torch.manual_seed(seed)
    m = InteractionPixelAttention(dim, num_heads=heads).double()
    with torch.no_grad():
        for p in m.parameters():  # non-trivial biases, noise rows and key biases
            p.normal_(0.0, 0.5)
    return m


def test_training_path_equals_autograd_of_the_reference_forward():
    """The hand-written IPA backward (layers/ipa_grad.py) against autograd through the
    batched forward of the base class, for the inputs and every parameter (float64)."""
    m = _ipa64(3)
    x = torch.randn(2, 7, 12, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 7, 12, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 7, 12, dtype=torch.float64)
    inputs = [x, y, *m.parameters()]
    got = m(x, y)  # grad enabled: ipa_train
    ref = _PixelAttentionBase.forward(m, x, y)  # autograd
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    g_got = torch.autograd.grad(sum((o * w[i]).sum() for i, o in enumerate(got)), inputs)
    g_ref = torch.autograd.grad(sum((o * w[i]).sum() for i, o in enumerate(ref)), inputs)
    names = ["x", "y", *(n for n, _ in m.named_parameters())]
    for n, a, b in zip(names, g_got, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=n)
    # the key bias cancels in k1 - k2: its gradient is exactly zero in both
    C = 12
    assert torch.count_nonzero(g_got[names.index("cross_attn_0_to_1.in_proj_bias")][C:2 * C]) == 0


def test_training_path_gradcheck_and_follows_parameter_updates():
    m = _ipa64(4, dim=6, heads=2)
    x = torch.randn(1, 3, 6, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: m(a, b), (x, y))
    before = m(x, y)[0].detach()
    with torch.no_grad():
        m.cross_attn_0_to_1.in_proj_weight.mul_(0.5)  # the kept composed weights must follow
        m.relation_judger[0].fc1.weight.add_(0.1)
    after = m(x, y)[0]
    ref = _PixelAttentionBase.forward(m, x, y)[0]
    torch.testing.assert_close(after, ref, rtol=0, atol=1e-13)
    assert not torch.allclose(after, before)
