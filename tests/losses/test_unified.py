"""U2Fusion-style ``uni`` loss (spec §7.3): formula, weights, VGG19 loading."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unifuse.errors import ConfigError, WeightsError
from unifuse.losses import create_loss
from unifuse.losses.unified import (
    VGG19_TAPS, UnifiedLoss, UnifiedLossConfig, kernel_energy, load_vgg19_features, vgg19_features,
)

from _loss_refs import correlate_zero, ssim_ref


def test_kernel_energy_by_hand():
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 2] = 1.0  # impulse: response −1 at centre, 1/8 at its 8 neighbours
    assert kernel_energy(x).item() == pytest.approx((1 + 8 / 64) / 25)
    k = np.full((3, 3), 1 / 8)
    k[1, 1] = -1
    y = torch.rand(2, 3, 6, 7, dtype=torch.float64)
    ref = [np.mean([correlate_zero(y[n, c].numpy(), k) ** 2 for c in range(3)]) for n in range(2)]
    assert np.allclose(kernel_energy(y).numpy(), ref)


def test_formula_with_substitute_weights(monkeypatch):
    monkeypatch.delenv("UNIFUSE_VGG19_WEIGHTS", raising=False)
    loss = create_loss("uni")
    assert isinstance(loss, UnifiedLoss) and loss.backend == "gradient_energy"
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 1, 16, 16, generator=g, dtype=torch.float64)
    b = 0.5 + 0.05 * torch.rand(3, 1, 16, 16, generator=g, dtype=torch.float64)  # nearly flat
    f = torch.rand(3, 1, 16, 16, generator=g, dtype=torch.float64, requires_grad=True)
    wa, wb = loss.source_weights(a, b)
    assert torch.allclose(wa + wb, torch.ones(3, dtype=torch.float64))
    assert torch.all(wa > 0.5) and torch.all(wa < 0.881)  # textured source favoured, bounded
    val = loss(f, a, b)
    fn, an, bn, wan, wbn = (t.detach().numpy() for t in (f, a, b, wa, wb))
    mse_a = ((an - fn) ** 2).reshape(3, -1).mean(1)
    mse_b = ((bn - fn) ** 2).reshape(3, -1).mean(1)
    ref = 20 * np.mean(wan * mse_a + wbn * mse_b) + 1 - np.mean(wan * ssim_ref(an, fn) + wbn * ssim_ref(bn, fn))
    assert val.item() == pytest.approx(ref, rel=1e-10)
    val.backward()
    assert torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0
    # equal sources -> equal weights; F = A = B -> zero loss
    wa, wb = loss.source_weights(a, a)
    assert torch.allclose(wa, torch.full_like(wa, 0.5))
    assert loss(a, a, a).item() == pytest.approx(0.0, abs=1e-12)
    flat = torch.full_like(a, 0.3)
    wa, _ = loss.source_weights(flat, flat)
    assert torch.allclose(wa, torch.full_like(wa, 0.5))


def test_vgg19_backend_from_local_file(tmp_path, monkeypatch):
    torch.manual_seed(0)
    feats = vgg19_features()
    assert len(feats) == max(VGG19_TAPS) + 2
    assert all(isinstance(feats[i], torch.nn.Conv2d) for i in VGG19_TAPS)
    path = tmp_path / "vgg19.pth"
    sd = {f"features.{k}": v for k, v in feats.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # extra torchvision keys are ignored
    torch.save(sd, path)
    monkeypatch.setenv("UNIFUSE_VGG19_WEIGHTS", str(path))
    loss = create_loss("uni")
    assert loss.backend == "vgg19"
    x = torch.rand(2, 1, 32, 32)
    # scores: pre-ReLU taps, ImageNet normalisation, /3000
    h = (x.expand(-1, 3, -1, -1) - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    vals = []
    with torch.no_grad():
        for i, layer in enumerate(feats):
            h = layer(h)
            if i in VGG19_TAPS:
                vals.append(kernel_energy(h))
    ref = torch.stack(vals).mean(0) / 3000
    assert torch.allclose(loss.scores(x), ref, rtol=1e-5)
    wa, wb = loss.source_weights(x, x.flip(-1))
    assert torch.allclose(wa + wb, torch.ones(2))
    f = torch.rand(2, 1, 32, 32, requires_grad=True)
    loss(f, x, x.flip(-1)).backward()
    assert all(p.grad is None for p in loss.vgg.parameters())  # frozen


def test_vgg19_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("UNIFUSE_VGG19_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match="not found"):
        load_vgg19_features(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(WeightsError, match="not a VGG19"):
        load_vgg19_features(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_vgg19_features(junk)
    with pytest.raises(ConfigError):
        UnifiedLoss(UnifiedLossConfig(backend="vgg19"))
