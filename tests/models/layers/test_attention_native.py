"""The fused C++ window attention against autograd of the written-out form."""

from __future__ import annotations

import pytest
import torch

from unifuse.models.layers import attention_native
from unifuse.models.layers.attention_native import native_window_attention, supported

pytestmark = pytest.mark.skipif(not attention_native._fns(), reason="native kernel not buildable here (no C++ compiler?)")


def _reference(q, k, v, bias, mask, scale):
    logits = (q @ k.transpose(-2, -1)) * scale + bias
    if mask is not None:
        logits = logits + mask[:, None]
    return logits.softmax(-1) @ v


def _inputs(B, nW, h, L, d, dtype, seed=0, masked=True):
    """q, k, v as the strided head views of one (B, nW, L, 3·h·d) projection output."""
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(B, nW, L, 3 * h * d, generator=g, dtype=dtype)
    q, k, v = (t.view(B, nW, L, h, d).transpose(2, 3).detach().requires_grad_() for t in qkv.chunk(3, -1))
    bias = torch.randn(h, L, L, generator=g, dtype=dtype, requires_grad=True)
    mask = (torch.rand(nW, L, L, generator=g) < 0.3).to(dtype) * -100.0 if masked else None
    return q, k, v, bias, mask


@pytest.mark.parametrize("shape", [(2, 4, 6, 64, 10), (1, 3, 2, 16, 3), (2, 2, 1, 8, 1), (1, 2, 3, 24, 5),
                                   (1, 1, 2, 40, 17), (1, 2, 1, 56, 8)])
@pytest.mark.parametrize("masked", [False, True])
def test_values_and_gradients_equal_autograd_float64(shape, masked):
    B, nW, h, L, d = shape
    q, k, v, bias, mask = _inputs(*shape, torch.float64, masked=masked)
    assert supported(q, bias)
    out = native_window_attention(q, k, v, bias, mask, d**-0.5)
    ref = _reference(q, k, v, bias, mask, d**-0.5)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, rtol=0, atol=1e-13)
    w = torch.randn(ref.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    got = torch.autograd.grad((out * w).sum(), (q, k, v, bias))
    want = torch.autograd.grad((ref * w).sum(), (q, k, v, bias))
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 4, 6, 64, 10), (1, 3, 2, 24, 10), (1, 2, 2, 16, 8), (1, 1, 2, 40, 17),
                                   (1, 2, 1, 8, 16), (1, 2, 2, 32, 5)])
def test_float32_close_to_float64_reference(shape):
    # float32 has its own transposes (8 x 8 blocks in registers, then the d % 8 last columns) and
    # d = 10 its own instantiation: every block / tail split, masked, against float64 autograd
    B, nW, h, L, d = shape
    q, k, v, bias, mask = _inputs(*shape, torch.float64, seed=d + L, masked=True)
    ref = _reference(q, k, v, bias, mask, d**-0.5)
    f = [t.detach().float().requires_grad_() for t in (q, k, v, bias)]
    out = native_window_attention(*f, mask.float(), d**-0.5)
    assert (out.double() - ref).abs().max() < 2e-6
    w = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    got = torch.autograd.grad((out * w.float()).sum(), f)
    want = torch.autograd.grad((ref * w).sum(), (q, k, v, bias))
    for a, b in zip(got, want):
        assert (a.double() - b).abs().max() <= 1e-5 * b.abs().max()


def test_gradcheck():
    q, k, v, bias, mask = _inputs(1, 2, 2, 8, 3, torch.float64, seed=3)
    assert torch.autograd.gradcheck(lambda *t: native_window_attention(*t, mask, 3**-0.5), (q, k, v, bias))


def test_output_is_token_major_so_merging_heads_is_a_view():
    q, k, v, bias, mask = _inputs(1, 2, 3, 16, 4, torch.float32)
    with torch.no_grad():
        out = native_window_attention(q, k, v, bias, mask, 0.5)
    merged = out.transpose(2, 3)
    assert merged.is_contiguous()
    assert merged.reshape(1, 2, 16, 12).data_ptr() == out.data_ptr()


def test_no_grad_keeps_nothing_and_equals_grad_mode():
    q, k, v, bias, mask = _inputs(1, 3, 2, 16, 4, torch.float32, seed=4)
    with_grad = native_window_attention(q, k, v, bias, mask, 0.5)
    assert with_grad.grad_fn is not None
    with torch.no_grad():
        without = native_window_attention(q, k, v, bias, mask, 0.5)
    assert without.grad_fn is None
    assert torch.equal(with_grad.detach(), without)


def test_two_threads_equal_one_thread():
    """Items split into ranges over threads: each item is computed by the same code, bias gradients summed per range."""
    q, k, v, bias, mask = _inputs(2, 16, 6, 64, 10, torch.float32, seed=6)
    w = torch.randn(q.shape, generator=torch.Generator().manual_seed(7))
    res = []
    saved = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            ranges = attention_native._ranges(q.shape[0] * q.shape[1] * q.shape[2])
            assert (len(ranges) == 1) == (n == 1)
            assert ranges[0][0] == 0 and ranges[-1][1] == q.shape[0] * q.shape[1] * q.shape[2]
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            out = native_window_attention(q, k, v, bias, mask, 10**-0.5)
            res.append((out.detach(), torch.autograd.grad((out * w).sum(), (q, k, v, bias))))
    finally:
        torch.set_num_threads(saved)
    (o1, g1), (o2, g2) = res
    assert torch.equal(o1, o2)
    for a, b in zip(g1[:3], g2[:3]):
        assert torch.equal(a, b)
    assert torch.allclose(g1[3], g2[3], rtol=1e-5, atol=1e-6)


def test_non_contiguous_last_dim_is_copied():
    q, k, v, bias, mask = _inputs(1, 2, 2, 16, 4, torch.float64)
    qt = q.detach().transpose(-2, -1).contiguous().transpose(-2, -1)  # last dim strided
    assert qt.stride(-1) != 1
    with torch.no_grad():
        got = native_window_attention(qt, k, v, bias, mask, 0.5)
        want = _reference(q, k, v, bias, mask, 0.5)
    assert torch.allclose(got, want, atol=1e-13)


@pytest.mark.parametrize("case", ["L=49", "L=72", "d=65", "float16", "bias dtype", "autocast"])
def test_unsupported_inputs_are_declined(case):
    shape = {"L=49": (1, 1, 1, 49, 4), "L=72": (1, 1, 1, 72, 4), "d=65": (1, 1, 1, 8, 65)}.get(case, (1, 1, 1, 8, 4))
    q = torch.zeros(shape, dtype=torch.float16 if case == "float16" else torch.float32)
    bias = torch.zeros(shape[2], shape[3], shape[3], dtype=torch.float64 if case == "bias dtype" else q.dtype)
    if case == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not supported(q, bias)
    else:
        assert not supported(q, bias)


@pytest.mark.parametrize("bad", ["mask windows", "bias heads", "k shape", "v dtype"])
def test_mismatched_shapes_are_refused_before_the_kernel_reads_out_of_bounds(bad):
    q, k, v, bias, mask = _inputs(1, 4, 2, 16, 4, torch.float32)
    if bad == "mask windows":
        mask = mask[:2]
    elif bad == "bias heads":
        bias = bias[:1]
    elif bad == "k shape":
        k = k[:, :2]
    else:
        v = v.double()
    with pytest.raises(ValueError):
        native_window_attention(q, k, v, bias, mask, 0.5)
