"""IPA / PA: the weights composed for inference follow parameter updates and give the
training path's values."""

from __future__ import annotations

import copy

import pytest
import torch

from unifuse.models.layers.ipa import InteractionPixelAttention, PixelAttention


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
