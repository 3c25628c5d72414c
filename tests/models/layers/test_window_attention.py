"""Window attention: the explicit training path and the SDPA inference path against plain softmax attention."""

from __future__ import annotations

import pytest
import torch

from unifuse.models.layers import attention_native
from unifuse.models.layers.window_attention import WindowGrid, windowed_attention


@pytest.fixture(params=["native", "pytorch"])
def attention_path(request, monkeypatch):
    """Run a test on the fused C++ kernel and on the PyTorch path (the fallback)."""
    if request.param == "native" and not attention_native._fns():
        pytest.skip("native kernel not buildable here")
    if request.param == "pytorch":
        monkeypatch.setattr(attention_native, "supported", lambda q, bias: False)
    return request.param


def _reference(q, k, v, bias, mask):
    """softmax(q kᵀ / sqrt(d) + bias + mask) v, written out without any fusion."""
    logits = torch.einsum("bwhld,bwhmd->bwhlm", q, k) / q.shape[-1] ** 0.5 + bias
    if mask is not None:
        logits = logits + mask[:, None]
    return torch.einsum("bwhlm,bwhmd->bwhld", logits.softmax(-1), v)


@pytest.mark.parametrize("shifted", [False, True])
def test_training_path_values_and_gradients(shifted, attention_path):
    g = torch.Generator().manual_seed(0)
    B, nW, h, L, d = 2, 4, 3, 16, 5
    q, k, v = (torch.randn(B, nW, h, L, d, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    bias = torch.randn(h, L, L, generator=g, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(nW, L, L, generator=g) < 0.3).double() * -100.0 if shifted else None
    grid = WindowGrid(2, 2, mask)
    w = torch.randn(B, nW, h, L, d, generator=g, dtype=torch.float64)
    out = windowed_attention(q, k, v, bias, grid)  # bias needs a gradient: the explicit path
    ref = _reference(q, k, v, bias, mask)
    assert torch.allclose(out, ref, atol=1e-12)
    got = torch.autograd.grad((out * w).sum(), (q, k, v, bias))
    want = torch.autograd.grad((ref * w).sum(), (q, k, v, bias))
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-10)


def test_inference_path_matches_reference(attention_path):
    g = torch.Generator().manual_seed(1)
    B, nW, h, L, d = 1, 9, 2, 16, 4
    q, k, v = (torch.randn(B, nW, h, L, d, generator=g) for _ in range(3))
    bias = torch.randn(h, L, L, generator=g)
    mask = (torch.rand(nW, L, L, generator=g) < 0.3).float() * -100.0
    with torch.no_grad():
        out = windowed_attention(q, k, v, bias, WindowGrid(3, 3, mask))
    assert torch.allclose(out, _reference(q, k, v, bias, mask), atol=1e-5)


@pytest.mark.parametrize("shift", [0, 2])
def test_gather_windows_equal_roll_and_partition(shift):
    from unifuse.models.layers.swin_block import from_windows, to_windows
    from unifuse.models.layers.window import window_partition

    B, H, W, C, ws = 2, 8, 12, 3, 4
    x = torch.randn(B, H * W, C)
    want = window_partition(torch.roll(x.view(B, H, W, C), (-shift, -shift), (1, 2)), ws)
    got = to_windows(x, H, W, ws, shift)
    assert torch.equal(got, want)
    assert torch.equal(from_windows(got, H, W, ws, shift), x)


@pytest.mark.parametrize("shift", [0, 2])
def test_window_gathers_backpropagate_like_index_select(shift):
    """to_windows / from_windows under autograd (gather with the inverse permutation in the
    backward) give autograd's index_select gradients, also twice differentiated."""
    from unifuse.models.layers.swin_block import from_windows, to_windows
    from unifuse.models.layers.window import window_order

    B, H, W, C, ws = 2, 8, 12, 3, 4
    x = torch.randn(B, H * W, C, dtype=torch.float64, requires_grad=True)
    order, inverse = window_order(H, W, ws, shift, x.device)
    wts = torch.randn(B, (H // ws) * (W // ws), ws * ws, C, dtype=torch.float64)
    got = torch.autograd.grad((to_windows(x, H, W, ws, shift) * wts).sum(), x)[0]
    want = torch.autograd.grad((x.index_select(1, order).view_as(wts) * wts).sum(), x)[0]
    assert torch.equal(got, want)
    w = torch.randn_like(wts).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: from_windows(t, H, W, ws, shift), (w,))
    assert torch.autograd.gradgradcheck(lambda t: to_windows(t, H, W, ws, shift) ** 2, (x,))


@pytest.mark.parametrize("shift", [0, 4])
def test_window_pieces_cover_every_token_once_with_the_right_masks(shift, monkeypatch):
    from unifuse.models.layers import window as win

    monkeypatch.setattr(win, "PIECE_WINDOWS", 3)
    H, W, ws = 32, 40, 8
    pc = win.WindowPieces(H, W, ws, shift, "cpu")
    assert torch.equal(pc.order.sort().values, torch.arange(H * W))
    order, _ = win.window_order(H, W, ws, shift, torch.device("cpu"))
    full = win.shift_mask_windows(H, W, ws, shift, torch.device("cpu")) if shift else None
    seen = 0
    for t0, t1, mask in pc.pieces:
        assert t0 == seen and (t1 - t0) % (ws * ws) == 0 and (t1 - t0) // (ws * ws) <= 3
        seen = t1
        # which windows of the plain (shifted) partition this piece holds
        wins = (order.view(-1, ws * ws)[:, 0][None, :] == pc.order[t0:t1:ws * ws][:, None]).nonzero()[:, 1]
        if full is None or mask is None:
            assert full is None or full[wins].abs().sum() == 0
        else:
            assert torch.equal(mask, full[wins])
    assert seen == H * W


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("d", [4, 24])  # below / above _SMALL_HEAD_DIM: native kernel or head-by-head bmm / fused SDPA
def test_inference_paths_on_projection_views(shifted, d, monkeypatch, attention_path):
    """q, k, v as the blocks pass them (head views of one projection output, not contiguous),
    batch 2, more windows than one chunk: equal to the written-out reference."""
    from unifuse.models.layers import attention_grad

    monkeypatch.setattr(attention_grad, "_CHUNK_WINDOWS", 4)  # the chunked loop of both paths
    g = torch.Generator().manual_seed(2)
    B, nW, h, L = 2, 10, 3, 16
    qkv = torch.randn(B, nW, L, 3 * h * d, generator=g)
    q, k, v = (t.view(B, nW, L, h, d).transpose(2, 3) for t in qkv.chunk(3, dim=-1))
    bias = torch.randn(h, L, L, generator=g)
    mask = (torch.rand(nW, L, L, generator=g) < 0.3).float() * -100.0 if shifted else None
    with torch.no_grad():
        out = windowed_attention(q, k, v, bias, WindowGrid(2, 5, mask))
    assert out.shape == (B, nW, h, L, d)
    assert torch.allclose(out, _reference(q, k, v, bias, mask), atol=1e-5)
