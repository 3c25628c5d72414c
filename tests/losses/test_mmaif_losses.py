"""MMAIF losses on hand-computed cases (spec §3.3, §5.1, §5.2)."""

from __future__ import annotations

import pytest
import torch

from unifuse.losses.mmaif import (aux_fusion_loss, flow_matching_loss, flow_path, kl_divergence, one_step_estimate,
                                  regression_loss, sample_t, vae_loss)
from unifuse.losses.ssim import ssim


def test_regression_loss():
    pred = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    assert float(regression_loss(pred, torch.zeros(2, 2))) == pytest.approx((1 + 4 + 0 + 1) / 4)


def test_flow_path_target_and_loss():
    zg, eps, t = torch.tensor([[2.0, -1.0]]), torch.tensor([[0.5, 1.0]]), torch.tensor([0.25])
    zt, target = flow_path(zg, eps, t)
    torch.testing.assert_close(zt, torch.tensor([[0.75 * 0.5 + 0.25 * 2, 0.75 * 1 - 0.25]]))
    torch.testing.assert_close(target, torch.tensor([[1.5, -2.0]]))
    v = torch.tensor([[1.0, 0.0]])
    assert float(flow_matching_loss(v, zg, eps)) == pytest.approx(((1 - 1.5) ** 2 + (0 + 2) ** 2) / 2)
    # with the true velocity, the one-step estimate recovers the data end exactly
    torch.testing.assert_close(one_step_estimate(zt, t, target), zg)
    assert float(flow_matching_loss(target, zg, eps)) == 0.0


def test_sample_t_is_clamped_and_seeded():
    t = sample_t(10000, 0.1, torch.Generator().manual_seed(0))
    assert float(t.min()) == pytest.approx(0.1) and float(t.max()) == pytest.approx(0.9)
    assert torch.equal(sample_t(5, 1e-4, torch.Generator().manual_seed(1)), sample_t(5, 1e-4, torch.Generator().manual_seed(1)))


def _grey(values):
    return torch.tensor(values, dtype=torch.float64).view(1, 1, 1, -1).expand(1, 3, 1, len(values))


def test_aux_loss_paper_mode_hand_computed():
    # 1×3 grey images; zero-padded Sobel on [0, 1, 0]: gx = 2·(x[j+1] − x[j−1]) = [2, 0, −2], gy = 0
    fused, a, b = _grey([0, 0, 0]), _grey([0, 1, 0]), _grey([0, 0, 0])
    # |F − A| mean 1/3, |∇F − ∇A| mean (2 + 0 + 2 + 0 + 0 + 0)/6 = 2/3; the B terms are 0
    assert float(aux_fusion_loss(fused, a, b)) == pytest.approx(1.0)
    assert float(aux_fusion_loss(a, a, b)) == pytest.approx(1.0)  # symmetric: now the B terms count
    assert float(aux_fusion_loss(a, a, a)) == 0.0


def test_aux_loss_max_mode_hand_computed():
    fused, a, b = _grey([0, 0, 0]), _grey([0, 1, 0]), _grey([0.5, 0.5, 0.5])
    # max intensity [0.5, 1, 0.5] -> 2/3; gradients: ∇A x = [2, 0, −2], ∇B x = [1, 0, −1] -> larger |.| = ∇A -> 4/6
    assert float(aux_fusion_loss(fused, a, b, "max")) == pytest.approx(2 / 3 + 2 / 3)
    with pytest.raises(ValueError):
        aux_fusion_loss(fused, a, b, "mean")


def test_aux_loss_uses_luminance_gradients():
    # a pure-chroma change with constant BT.601 luma has no gradient term
    x = torch.zeros(1, 3, 1, 3, dtype=torch.float64)
    y = x.clone()
    y[0, 0, 0, 1], y[0, 1, 0, 1] = 0.587, -0.299  # luma 0.299·0.587 − 0.587·0.299 = 0
    assert float(aux_fusion_loss(y, x, x)) == pytest.approx(2 * (0.587 + 0.299) / 9)


def test_kl_and_vae_loss_hand_computed():
    mean, logvar = torch.ones(1, 2, 1, 1), torch.zeros(1, 2, 1, 1)
    # 0.5·(1 + 1 − 1 − 0) per element, 2 elements, over 8·8 pixels
    assert float(kl_divergence(mean, logvar, 64)) == pytest.approx(1 / 64)
    assert float(kl_divergence(torch.zeros(3, 4, 2, 2), torch.zeros(3, 4, 2, 2), 1)) == 0.0
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = vae_loss(x, x, torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2))
    assert float(out["loss"]) == pytest.approx(0.0, abs=1e-6)
    x_hat = x + 0.1
    out = vae_loss(x, x_hat, torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2))
    s = ssim((x_hat + 1) / 2, (x + 1) / 2)
    assert float(out["l1"]) == pytest.approx(0.1, rel=1e-5) and float(out["kl"]) == pytest.approx(0.5 * 8 / 256)
    assert float(out["loss"]) == pytest.approx(0.1 + 0.2 * (1 - float(s)) + 1e-6 * 0.5 * 8 / 256, rel=1e-5)
