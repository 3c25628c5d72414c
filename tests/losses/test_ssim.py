import numpy as np
import pytest
import torch

from unifuse.losses.ssim import SSIMConfig, gaussian_window, ssim, ssim_map

from _loss_refs import ssim_map_ref, ssim_ref


def test_window_is_normalised_gaussian():
    w = gaussian_window(11, 1.5, dtype=torch.float64)
    assert w.shape == (11, 11)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-12)
    # separable, centred, ratio of centre to neighbour = exp(1/(2σ²))
    assert w[5, 5] / w[5, 6] == pytest.approx(np.exp(1 / (2 * 1.5**2)), rel=1e-12)
    assert torch.allclose(w, w.T)


def test_ssim_identity_is_one():
    x = torch.rand(3, 1, 20, 17, dtype=torch.float64)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(ssim_map(x, x), torch.ones_like(x))


def test_ssim_matches_independent_float64_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 19, 23, generator=g, dtype=torch.float64)
    y = (0.6 * x + 0.4 * torch.rand(2, 1, 19, 23, generator=g, dtype=torch.float64))
    ref = np.stack([ssim_map_ref(x[n, 0].numpy(), y[n, 0].numpy()) for n in range(2)])[:, None]
    assert np.allclose(ssim_map(x, y).numpy(), ref, atol=1e-12)
    assert ssim(x, y).item() == pytest.approx(ssim_ref(x.numpy(), y.numpy()), abs=1e-12)
    # float32 agrees to single precision
    assert ssim(x.float(), y.float()).item() == pytest.approx(ssim_ref(x.numpy(), y.numpy()), abs=2e-5)


def test_ssim_interior_matches_skimage():
    skm = pytest.importorskip("skimage.metrics")
    g = np.random.default_rng(1)
    x = g.random((30, 32))
    y = np.clip(x + 0.1 * g.standard_normal(x.shape), 0, 1)
    _, s_map = skm.structural_similarity(x, y, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, full=True)
    ours = ssim_map(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])[0, 0].numpy()
    # zero padding (ours/official) vs reflect (skimage) only differ within 5 px of the border
    assert np.allclose(ours[5:-5, 5:-5], s_map[5:-5, 5:-5], atol=1e-10)


def test_ssim_border_uses_zero_padding():
    # a constant image: interior SSIM with itself shifted in level is the luminance term only,
    # but at the border the zero padding lowers the local mean -> map differs from interior
    x = torch.full((1, 1, 24, 24), 0.5, dtype=torch.float64)
    y = torch.full((1, 1, 24, 24), 0.7, dtype=torch.float64)
    m = ssim_map(x, y)[0, 0]
    c1 = 0.01**2
    interior = (2 * 0.5 * 0.7 + c1) / (0.5**2 + 0.7**2 + c1)
    assert m[12, 12].item() == pytest.approx(interior, abs=1e-12)
    assert abs(m[0, 0].item() - interior) > 1e-3


def test_reduction_none_and_gradient():
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    y = torch.rand(3, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    per = ssim(x, y, reduction="none")
    assert per.shape == (3,)
    assert per.mean().item() == pytest.approx(ssim(x, y).item(), abs=1e-12)
    small_x = x[:1, :, :6, :7]
    small_y = y[:1, :, :6, :7].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: ssim(small_x, t), (small_y,), eps=1e-6, atol=1e-6)


def test_custom_config_changes_constants():
    x = torch.rand(1, 1, 16, 16)
    y = torch.rand(1, 1, 16, 16)
    assert ssim(x, y, SSIMConfig(k2=0.5)).item() != pytest.approx(ssim(x, y).item())
