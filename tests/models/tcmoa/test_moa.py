"""Routers and adapter bank (spec §4.2–§4.3, §8.2): gates, log-space mixture, load balancing, mixing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unifuse.models.tcmoa.moa import MixtureOfAdapters, cv_squared


def _moa(**kw) -> MixtureOfAdapters:
    torch.manual_seed(0)
    m = MixtureOfAdapters(16, 4, **kw)
    with torch.no_grad():
        m.w_gate.normal_(0, 0.2)
        m.w_noise.normal_(0, 0.2)
    return m.eval()


def test_eval_gates_top2_rows_sum_to_one():
    m = _moa()
    phi = torch.randn(50, 16)
    r = m.route(phi, 1)
    assert r.gates.shape == (50, 4)
    assert ((r.gates > 0).sum(1) == 2).all()
    assert torch.allclose(r.gates.sum(1), torch.ones(50), atol=1e-6)
    # the chosen adapters are the two largest clean logits of router 1
    top2 = (phi @ m.w_gate[1]).topk(2, dim=1).indices.sort(1).values
    assert torch.equal((r.gates > 0).nonzero()[:, 1].view(50, 2), top2)


def test_gates_at_most_1e4_are_dropped():
    m = _moa()
    with torch.no_grad():
        m.w_gate[0] *= 200  # very confident router: the second gate underflows the threshold
    r = m.route(torch.randn(50, 16), 0)
    assert ((r.gates > 0).sum(1) == 1).any() and (r.gates[r.gates > 0] > 1e-4).all()
    assert ((r.gates > 0).sum(0) <= r.load).all()  # the load counts gates before the threshold


def test_logsumexp_mixture_equals_official_log_space():
    m = _moa()
    phi = torch.randn(40, 16)
    gates = m.route(phi, 0).gates
    outs = m.adapters(phi)
    mine = m.mix(outs, gates)
    # official SparseDispatcher.combine: log(sum_e g_e exp(A_e)) over non-zero gates, 0 -> eps
    ref = (outs.double().exp() * gates.double()[..., None]).sum(1)
    ref[ref == 0] = np.finfo(float).eps
    assert torch.allclose(mine.double(), ref.log(), atol=1e-5)
    lin = MixtureOfAdapters(16, 4, combine="linear")
    assert torch.allclose(lin.mix(outs, gates), (outs * gates[..., None]).sum(1), atol=1e-6)


def test_adapters_dense_equals_each_adapter():
    m = _moa()
    phi = torch.randn(7, 16)
    outs = m.adapters(phi)
    for e, ad in enumerate(m.experts):
        assert torch.allclose(outs[:, e], ad(phi), atol=1e-6)


def test_cv_squared_and_aux_loss_by_hand():
    assert float(cv_squared(torch.ones(4) * 3)) == 0.0
    v = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert float(cv_squared(v)) == pytest.approx(v.var().item() / (v.mean().item() ** 2 + 1e-10))
    m = _moa()
    phi = torch.randn(30, 16)
    r = m.route(phi, 2)
    by_hand = 1e-3 * (cv_squared(r.importance) + cv_squared((r.gates > 0).sum(0)))
    assert r.aux_loss.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_untrained_router_splits_evenly_over_two_adapters():
    m = MixtureOfAdapters(16, 4).eval()  # zero-initialised routers: equal logits, torch.topk breaks the tie
    r = m.route(torch.randn(5, 16), 0)
    assert ((r.gates == 0.5).sum(1) == 2).all() and ((r.gates == 0).sum(1) == 2).all()


def test_training_noise_and_differentiable_load():
    m = _moa().train()
    phi = torch.randn(64, 16)
    torch.manual_seed(1)
    r1 = m.route(phi, 0)
    torch.manual_seed(2)
    r2 = m.route(phi, 0)
    assert not torch.equal(r1.gates, r2.gates)  # noisy gating
    assert ((r1.gates > 0).sum(1) <= 2).all()
    assert r1.load.dtype.is_floating_point and (r1.load > 0).all() and (r1.load <= 64).all()
    r1.aux_loss.backward()
    assert m.w_gate.grad.abs().sum() > 0 and m.w_noise.grad.abs().sum() > 0


def test_router_mixing_interpolates_gates():
    m = _moa()
    phi = torch.randn(20, 16)
    g = [m.route(phi, t).gates for t in range(3)]
    w = torch.tensor([0.2, 0.5, 0.3])
    mixed = m.route(phi, w).gates
    expect = sum(w[t] * g[t] for t in range(3))
    expect = expect.masked_fill(expect <= 1e-4, 0)
    assert torch.allclose(mixed, expect, atol=1e-7)
    assert torch.allclose(mixed.sum(1), torch.ones(20), atol=1e-6)
    assert torch.equal(m.route(phi, torch.tensor([0.0, 1.0, 0.0])).gates, g[1])
    logits = MixtureOfAdapters(16, 4, mix_mode="logits")
    logits.load_state_dict(m.state_dict())
    lg = logits.eval().route(phi, w).gates
    assert ((lg > 0).sum(1) == 2).all()
