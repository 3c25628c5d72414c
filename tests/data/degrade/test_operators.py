"""Mechanism checks of each degradation operator (spec mmaif.md §1.7) on small synthetic images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unifuse.data.degrade import TYPES, ORDER, PseudoDepth
from unifuse.data.degrade.filters import fft_conv, gaussian_blur, gaussian_kernel1d, line_kernel
from unifuse.data.degrade.operators import op_haze, op_noise, op_jpeg, op_low_contrast, op_low_exposure, op_high_exposure, op_ir_strips, strip_profile


def _img(h=48, w=64, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(c, h // 8, w // 8, generator=g)
    x = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return (0.15 + 0.7 * x).clamp(0, 1)


@pytest.mark.parametrize("name", ORDER)
@pytest.mark.parametrize("c", [1, 3])
def test_every_operator_shape_range_determinism(name, c):
    x = _img(c=c)
    rng1, rng2 = np.random.default_rng(5), np.random.default_rng(5)
    p1, p2 = TYPES[name].draw(rng1, 48, 64, False), TYPES[name].draw(rng2, 48, 64, False)
    assert p1 == p2
    y1, y2 = TYPES[name].apply(x, p1, {}), TYPES[name].apply(x.clone(), p2, {})
    assert y1.shape == x.shape and y1.dtype == torch.float32
    assert float(y1.min()) >= 0 and float(y1.max()) <= 1
    assert torch.equal(y1, y2)
    assert not torch.equal(y1, x), f"{name} left the image unchanged"


def test_gaussian_kernel_size_and_blur_preserves_mean():
    assert gaussian_kernel1d(0.8).numel() == 2 * math.ceil(2.4) + 1
    assert gaussian_kernel1d(3.0).numel() == 19
    x = torch.rand(3, 40, 50)
    y = gaussian_blur(x, 2.0)
    # reflect padding keeps the mean up to boundary effects; a constant image is unchanged exactly
    assert abs(float(y.mean() - x.mean())) < 2e-3
    assert torch.allclose(gaussian_blur(torch.full((1, 20, 20), 0.3), 2.5), torch.full((1, 20, 20), 0.3), atol=1e-6)
    assert float(y.std()) < float(x.std())


def test_separable_blur_matches_direct_2d_conv():
    x = torch.rand(2, 30, 35)
    sigma = 1.7
    k = gaussian_kernel1d(sigma)
    r = k.numel() // 2
    k2 = torch.outer(k, k)
    xp = torch.nn.functional.pad(x[None], (r, r, r, r), mode="reflect")
    ref = torch.nn.functional.conv2d(xp, k2.expand(2, 1, -1, -1), groups=2)[0]
    assert torch.allclose(gaussian_blur(x, sigma), ref, atol=1e-5)
    assert torch.allclose(fft_conv(x, k2), ref, atol=1e-5)


def test_line_kernel_is_normalised_line_through_centre():
    k = line_kernel(15, 0.0)
    assert abs(float(k.sum()) - 1) < 1e-6
    c = k.shape[0] // 2
    assert float(k[c].sum()) > 0.99  # horizontal line lives in the centre row
    kv = line_kernel(15, 90.0)
    assert float(kv[:, c].sum()) > 0.99
    kd = line_kernel(21, 37.0)
    c = kd.shape[0] // 2
    ys, xs = torch.nonzero(kd > 0.01, as_tuple=True)
    # all mass on the line through the centre at 37° (distance < 1 px)
    d = ((xs - c) * math.sin(math.radians(37)) + (ys - c) * math.cos(math.radians(37))).abs()
    assert float(d.max()) < 1.0
    assert torch.allclose(kd, torch.flip(kd, (0, 1)), atol=1e-6)  # point-symmetric about the centre


def test_haze_follows_scattering_model_with_the_given_depth():
    x = _img()
    d = torch.linspace(0, 1, 64).expand(48, 64).contiguous()
    p = {"beta": 1.7, "airlight": [0.9, 0.92, 0.88]}
    y = op_haze(x, p, {"depth": d})
    t = torch.exp(-1.7 * d)
    a = torch.tensor(p["airlight"]).view(3, 1, 1)
    assert torch.allclose(y, (x * t + a * (1 - t)).clamp(0, 1), atol=1e-6)
    assert torch.allclose(op_haze(x, {"beta": 0.0, "airlight": [1, 1, 1]}, {"depth": d}), x)  # beta = 0: identity
    # far pixels move towards the airlight
    assert float((y[:, :, -1] - a[:, :, 0]).abs().mean()) < float((y[:, :, 0] - a[:, :, 0]).abs().mean())


def test_pseudo_depth_is_row_prior_plus_luma_not_centre_distance():
    x = torch.full((3, 60, 40), 0.5)
    d = PseudoDepth()(x)
    assert d.shape == (60, 40) and float(d.min()) == 0 and float(d.max()) == 1
    assert torch.allclose(d[0], torch.ones(40)) and torch.allclose(d[-1], torch.zeros(40))  # top far
    assert torch.allclose(d, d[:, :1].expand_as(d))  # constant along rows: no radial component
    bright = x.clone()
    bright[:, 25:35, :] = 1.0  # a bright band is pushed further away
    db = PseudoDepth()(bright)
    assert float(db[30].mean()) > float(d[30].mean())


def test_noise_std_matches_drawn_sigma_and_channel_mode():
    x = torch.full((3, 128, 128), 0.5)
    y = op_noise(x, {"sigma": 20 / 255, "per_channel": True, "seed": 3})
    assert abs(float((y - x).std()) - 20 / 255) < 0.003
    assert not torch.equal(y[0], y[1])
    y = op_noise(x, {"sigma": 20 / 255, "per_channel": False, "seed": 3})
    assert torch.equal(y[0], y[1]) and torch.equal(y[1], y[2])
    assert abs(float((y - x).std()) - 20 / 255) < 0.004


def test_jpeg_error_grows_as_quality_drops():
    g = torch.Generator().manual_seed(0)
    x = (_img(64, 64) + 0.05 * torch.randn(3, 64, 64, generator=g)).clamp(0, 1)
    errs = [float((op_jpeg(x, {"quality": q}) - x).abs().mean()) for q in (70, 50, 30, 15)]
    assert all(a < b for a, b in zip(errs, errs[1:])), errs
    g = op_jpeg(x[:1], {"quality": 40})
    assert g.shape == (1, 64, 64)


def test_exposure_and_contrast_formulas():
    x = _img()
    assert torch.allclose(op_low_exposure(x, {"gamma": 2.0, "gain": 0.5, "noise_sigma": 0.0, "seed": 0}), 0.5 * x ** 2)
    assert torch.allclose(op_high_exposure(x, {"gamma": 1.5, "gain": 1.3}), (1.3 * x ** (1 / 1.5)).clamp(0, 1))
    y = op_low_contrast(x, {"contrast": 0.5})
    assert torch.allclose(y.mean((1, 2)), x.mean((1, 2)), atol=1e-6)
    assert torch.allclose(y.std((1, 2)), 0.5 * x.std((1, 2)), atol=1e-6)


def test_ir_strips_darken_the_bands_only():
    x = torch.full((1, 40, 60), 0.8)
    p = {"vertical": True, "bands": [{"pos": 20, "width": 10, "factor": 0.3}], "fpn_std": 0.0, "seed": 1}
    y = op_ir_strips(x, p)
    assert torch.allclose(y[0, :, 24], torch.full((40,), 0.8 * 0.3), atol=1e-3)  # band centre
    assert torch.allclose(y[0, :, 5], torch.full((40,), 0.8))  # far from the band
    assert float(y[0, 0, 19]) < 0.8 and float(y[0, 0, 19]) > 0.24  # softened edge
    h = op_ir_strips(x, {**p, "vertical": False})
    assert torch.allclose(h[0, 24], torch.full((60,), 0.24), atol=1e-3)
    f = op_ir_strips(x, {**p, "bands": [], "fpn_std": 0.02})
    assert torch.allclose(f, f[:, :1].expand_as(f))  # fixed pattern: constant down each column
    assert float(f[0, 0].std()) > 0.005
    assert strip_profile(10, []).allclose(torch.ones(10))


def test_rain_and_snow_brighten_by_screen_and_layers_are_seeded():
    from unifuse.data.degrade.weather import rain_layer, snow_layer

    rng = np.random.default_rng(0)
    pr = TYPES["rain"].draw(rng, 64, 64)
    ps = TYPES["snow"].draw(rng, 64, 64)
    for layer_fn, p in ((rain_layer, pr), (snow_layer, ps)):
        l1, l2 = layer_fn(64, 64, p), layer_fn(64, 64, p)
        assert torch.equal(l1, l2) and l1.shape == (1, 64, 64)
        assert 0 <= float(l1.min()) and float(l1.max()) <= 1 and float(l1.max()) > 0.2
    x = _img(64, 64)
    y = TYPES["rain"].apply(x, {**pr, "veil": None}, {})
    assert bool((y >= x - 1e-6).all())  # screen blend only brightens


def test_file_depth_resizes_normalises_and_inverts(tmp_path):
    from PIL import Image

    from unifuse.data.degrade import FileDepth
    from unifuse.data.degrade.depth import as_depth_estimator
    from unifuse.errors import ConfigError, InputMismatchError

    disp = torch.linspace(2, 10, 20).view(1, 20).expand(10, 20).contiguous()
    d = FileDepth(disp)(torch.zeros(3, 10, 20))
    assert float(d.min()) == 0 and float(d.max()) == 1 and float(d[0, -1]) == 1
    di = FileDepth(disp, inverse=True)(torch.zeros(3, 10, 20))
    assert torch.allclose(di, 1 - d)
    assert FileDepth(disp)(torch.zeros(1, 30, 40)).shape == (30, 40)
    Image.fromarray((np.tile(np.linspace(0, 255, 16), (8, 1))).astype(np.uint8)).save(tmp_path / "d.png")
    fd = as_depth_estimator(str(tmp_path / "d.png"))
    assert isinstance(fd, FileDepth) and fd(torch.zeros(3, 8, 16)).shape == (8, 16)
    with pytest.raises(InputMismatchError):
        FileDepth(torch.zeros(2, 2, 2))
    from unifuse.data.degrade import ModelDepth
    with pytest.raises(ConfigError, match="only loads local files"):
        ModelDepth(tmp_path / "missing.pt")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_model_depth_loads_a_local_torchscript_disparity_net(tmp_path):
    from unifuse.data.degrade import ModelDepth
    from unifuse.data.degrade.depth import normalise01

    class Disp(torch.nn.Module):
        def forward(self, x):
            return x.mean(1, keepdim=True)

    torch.jit.script(Disp()).save(str(tmp_path / "disp.pt"))
    x = _img()
    d = ModelDepth(tmp_path / "disp.pt")(x)
    assert torch.allclose(d, 1 - normalise01(x.mean(0)), atol=1e-6)  # bright = near


def test_sparse_and_fft_convolution_agree_for_asymmetric_kernels():
    from unifuse.data.degrade.filters import convolve, sparse_conv

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 30, 41, generator=g)
    k = torch.zeros(7, 9)
    k[1, 2], k[5, 8], k[3, 4] = 0.5, 0.3, 0.2  # not point-symmetric: checks the flip
    assert torch.allclose(sparse_conv(x, k), fft_conv(x, k), atol=1e-5)
    lk = line_kernel(21, 17.0)
    assert torch.allclose(convolve(x, lk), fft_conv(x, lk), atol=1e-5)
    xs = torch.zeros(1, 31, 31)
    xs[0, 15, 15] = 1
    assert torch.allclose(fft_conv(xs, k)[0, 12:19, 11:20], k, atol=1e-6)  # impulse response = kernel
