"""OAF's adaptive low-pass: the hand-written backward against autograd of the written-out form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unifuse.models.layers.oaf import adaptive_lowpass


def _reference(x, kernels, padding):
    """The 9-tap sum written out, differentiated by autograd."""
    H, W = x.shape[-2:]
    mode = ("reflect" if min(H, W) > 1 else "replicate") if padding == "reflect" else "constant"
    xp = F.pad(x, (1, 1, 1, 1), mode=mode)
    return sum(kernels[:, k : k + 1] * xp[:, :, k // 3 : k // 3 + H, k % 3 : k % 3 + W] for k in range(9))


@pytest.mark.parametrize("padding", ["reflect", "zeros"])
@pytest.mark.parametrize("shape", [(2, 5, 6, 7), (1, 3, 1, 5)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gradients_equal_autograd_of_the_written_out_taps(padding, shape, channels_last):
    g = torch.Generator().manual_seed(0)
    B, C, H, W = shape
    x = torch.randn(B, C, H, W, dtype=torch.float64, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    k = torch.randn(B, 9, H, W, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(B, C, H, W, dtype=torch.float64, generator=g)
    out = adaptive_lowpass(x, k, padding)
    ref = _reference(x, k, padding)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)
    got = torch.autograd.grad((out * w).sum(), (x, k))
    want = torch.autograd.grad((ref * w).sum(), (x, k))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, b: adaptive_lowpass(a, b, padding), (x, k))


def test_inference_path_equals_the_autograd_path():
    x = torch.randn(2, 4, 8, 8)
    k = torch.softmax(torch.randn(2, 9, 8, 8), dim=1)
    with torch.no_grad():
        plain = adaptive_lowpass(x, k)
    assert torch.equal(plain, adaptive_lowpass(x.requires_grad_(True), k).detach())
