"""TITA on its accelerator implementations (plain ``F.linear``, SDPA / the written-out
attention, whole maps: what a CUDA device runs), checked on the CPU through
:func:`unifuse.backend.accelerator_paths` against the official reference; and on a real GPU
where there is one (those tests skip without)."""

from __future__ import annotations

import contextlib

import pytest
import torch

import unifuse
from unifuse.backend import accelerator_paths
from unifuse.models.layers import attention_native, cross_block, linear, swin_block
from unifuse.models.tita import TITA

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def case1(reference_dir):
    return torch.load(reference_dir / "tita_official_case1.pt", weights_only=False)


def _no_cpu_routines(monkeypatch):
    """Make the CPU-tuned routines fail loudly, so a test proves they were not taken."""
    def fail(*a, **k):
        raise AssertionError("a CPU-tuned routine ran on the accelerator path")

    monkeypatch.setattr(attention_native, "native_window_attention", fail)
    monkeypatch.setattr(linear, "_onednn", fail)
    monkeypatch.setattr(swin_block, "blockwise", fail)
    monkeypatch.setattr(cross_block, "blockwise", fail)


@pytest.mark.parametrize("threads", [1, 2])
def test_inference_matches_official_reference(case1, monkeypatch, threads):
    _no_cpu_routines(monkeypatch)
    model = unifuse.load_model("tita", weights=case1["state_dict"])
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with accelerator_paths(), torch.no_grad():
            out = model(case1["a"], case1["b"])
    finally:
        torch.set_num_threads(saved)
    assert out.shape == case1["fused"].shape
    assert (out - case1["fused"]).abs().max().item() < 1e-5


def test_training_forward_and_gradients_equal_the_cpu_tuned_path(monkeypatch):
    torch.manual_seed(0)
    m = TITA(embed_dim=12, num_heads=2, depths_ex=2, depths_fusion=(2,), depths_re=2, drop_path_rate=0.0).train()
    a, b = torch.rand(2, 1, 32, 40), torch.rand(2, 1, 32, 40)
    runs = []
    for accel in (False, True):
        m.zero_grad(set_to_none=True)
        if accel:
            _no_cpu_routines(monkeypatch)
        with (accelerator_paths() if accel else contextlib.nullcontext()):
            out = m(a, b)
            out.square().mean().backward()
            with torch.no_grad():  # the no-grad re-evaluation of the training loop
                again = m(a, b)
        runs.append((out.detach(), again, [p.grad.clone() for p in m.parameters() if p.grad is not None]))
    (o1, r1, g1), (o2, r2, g2) = runs
    assert (o1 - o2).abs().max() < 1e-5 and (r1 - r2).abs().max() < 1e-5
    assert len(g1) == len(g2) > 0
    for x, y in zip(g1, g2):
        assert (x - y).abs().max() <= 1e-4 * y.abs().max() + 1e-9


@needs_cuda
def test_cuda_inference_equals_cpu(case1):
    model = unifuse.load_model("tita", weights=case1["state_dict"])
    gpu = unifuse.load_model("tita", weights=case1["state_dict"], device="cuda")
    with torch.no_grad():
        want = model(case1["a"], case1["b"])
        got = gpu(case1["a"].cuda(), case1["b"].cuda())
    assert got.device.type == "cuda"
    assert (got.cpu() - want).abs().max().item() < 1e-4


@needs_cuda
def test_cuda_training_step_gradients_equal_cpu():
    torch.manual_seed(0)
    m = TITA(embed_dim=12, num_heads=2, depths_ex=2, depths_fusion=(2,), depths_re=2, drop_path_rate=0.0).train()
    g = TITA(embed_dim=12, num_heads=2, depths_ex=2, depths_fusion=(2,), depths_re=2, drop_path_rate=0.0).train()
    g.load_state_dict(m.state_dict())
    g.cuda()
    a, b = torch.rand(2, 1, 32, 40), torch.rand(2, 1, 32, 40)
    m(a, b).square().mean().backward()
    g(a.cuda(), b.cuda()).square().mean().backward()
    for (n, p), q in zip(m.named_parameters(), g.parameters()):
        if p.grad is not None:
            assert (q.grad.cpu() - p.grad).abs().max() <= 1e-3 * p.grad.abs().max() + 1e-7, n
