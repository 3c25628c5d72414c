"""Hand-computed properties of the information-theory and feature cores (self-contained)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from unifuse import metrics as M
from unifuse.metrics.functional import cddfuse as fc
from unifuse.metrics.functional import feature as ff
from unifuse.metrics.functional import information as fi
from unifuse.metrics.functional import structural as fs

RNG = np.random.default_rng(2)


def _img(h=16, w=20, hi=256):
    return torch.from_numpy(RNG.integers(0, hi, (1, h, w)).astype(np.float64))


def test_entropy_and_cross_entropy_by_hand():
    half = torch.zeros(1, 4, 4, dtype=torch.float64)
    half[:, :2] = 200
    assert fi.entropy(None, None, half).item() == pytest.approx(1.0)
    assert fi.entropy(None, None, torch.full((1, 4, 4), 9.0, dtype=torch.float64)).item() == 0.0
    x = _img()
    assert fi.cross_entropy(x, x, x).item() == pytest.approx(0.0, abs=1e-15)
    # P_X = (3/4 at 0, 1/4 at 1), P_F = (1/2, 1/2): KL = 3/4 log2(3/2) + 1/4 log2(1/2)
    a = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]], dtype=torch.float64)
    f = torch.tensor([[[0.0, 0.0, 1.0, 1.0]]], dtype=torch.float64)
    kl = 0.75 * math.log2(1.5) + 0.25 * math.log2(0.5)
    assert fi.cross_entropy(a, a, f).item() == pytest.approx(kl)


def test_mutual_information_family():
    x, y = _img(hi=8), _img(hi=8)
    # MI(X, X) = H(X) in nats, for both sources
    h_nats = fi.entropy(None, None, x).item() * math.log(2)
    assert fi.mutual_information(x, x, x).item() == pytest.approx(2 * h_nats)
    # sklearn-style check with a numpy joint histogram
    j = np.histogram2d(x.flatten().numpy(), y.flatten().numpy(), bins=8, range=[[0, 8], [0, 8]])[0]
    p = j / j.sum()
    px, py = p.sum(1), p.sum(0)
    nz = p > 0
    mi = (p[nz] * np.log(p[nz] / np.outer(px, py)[nz])).sum()
    assert fi.mutual_information(x, y, x).item() == pytest.approx(h_nats + mi)  # MI(X,X) + MI(Y,X)
    assert fi.nmi(x, x, x).item() == pytest.approx(2.0)
    # NCC(X,X) = H(X)/8 = c for every pair -> eigenvalues 1+2c, 1-c, 1-c
    c = fi.entropy(None, None, x).item() / 8
    r = np.array([1 + 2 * c, 1 - c, 1 - c]) / 3
    assert fi.qncie(x, x, x).item() == pytest.approx(1 + (r * np.log2(r)).sum() / 8)
    assert 0.0 <= fi.qncie(x, y, _img(hi=8)).item() <= 1.0


def test_tsallis_corrected_is_zero_for_independent_and_benchmark_differs():
    # independent X and F (every pair once): h = pX pF -> S = sum (pX pF) = 1 -> TE = 0
    xv, fv = torch.meshgrid(torch.arange(4.0), torch.arange(4.0) * 50, indexing="ij")
    x, f = xv[None].double(), fv[None].double()
    assert fi.tsallis_entropy(x, x, f, variant="corrected").item() == pytest.approx(0.0, abs=1e-12)
    y = _img()
    assert fi.tsallis_entropy(y, y, _img(), variant="benchmark").item() != pytest.approx(
        fi.tsallis_entropy(y, y, _img(), variant="corrected").item())


@pytest.mark.parametrize("feature", ["edge", "pixel", "gradient"])
def test_fmi_identity_and_range(feature):
    x, y = _img(), _img()
    assert fi.fmi(x, x, x, feature=feature).item() == pytest.approx(1.0)
    v = fi.fmi(x, y, _img(), feature=feature).item()
    assert 0.0 <= v <= 1.0


def test_fmi_edge_table_matches_direct_computation():
    x, y, f = (torch.from_numpy((RNG.random((1, 20, 24)) > 0.6) * 255.0) for _ in range(3))
    # binary inputs go through the generic path when called with 'pixel' features
    direct = fi.fmi(x, y, f, feature="pixel").item()
    codes = [fi._binary_codes(t > 0) for t in (x, y, f)]
    ca, cb, cf = codes
    s_af = fi._binary_fmi_lookup(ca, cf)
    const_f = (cf == 0) | (cf == 511)
    s_bf = fi._binary_fmi_lookup(cb, torch.where((ca != cf) & const_f, torch.full_like(cf, 511), cf))
    assert ((s_af + s_bf) / 2).mean().item() == pytest.approx(direct, abs=1e-12)


def test_feature_metrics_by_hand():
    x = _img()
    assert ff.standard_deviation(None, None, x).item() == pytest.approx(x.numpy().std())
    ramp = torch.arange(5.0, dtype=torch.float64).repeat(3, 1)[None] * 2  # rows 0 2 4 6 8
    # RF = 3 rows * 4 diffs * 4 / 15 ; CF = 0
    assert ff.spatial_frequency(None, None, ramp).item() == pytest.approx(math.sqrt(48 / 15))
    assert ff.spatial_frequency(None, None, ramp, "cddfuse").item() == pytest.approx(2.0)
    # AG: gx = 2 everywhere, gy = 0 -> s = sqrt(2); sum over 15 px / (2*4)
    assert ff.average_gradient(None, None, ramp).item() == pytest.approx(15 * math.sqrt(2) / 8)
    assert ff.average_gradient(None, None, ramp, "cddfuse").item() == pytest.approx(math.sqrt(2))
    a, b, f = _img(), _img(), _img()
    d = lambda s: math.sqrt(((s - f) ** 2).sum().item()) / f.numel()  # noqa: E731
    mes = (d(a) + d(b)) / 2
    assert ff.rmse(a, b, f).item() == pytest.approx(mes)
    assert ff.psnr(a, b, f).item() == pytest.approx(20 * math.log10(255 / math.sqrt(mes)))
    std = ff.psnr(a, a, f, "standard").item()
    assert std == pytest.approx(peak_signal_noise_ratio(a.numpy(), f.numpy(), data_range=255))


def test_cddfuse_only_metrics():
    a, b, f = _img(), _img(), _img()
    r = lambda u, v: np.corrcoef(u.flatten().numpy(), v.flatten().numpy())[0, 1]  # noqa: E731
    assert fc.correlation_coefficient(a, b, f).item() == pytest.approx((r(a, f) + r(b, f)) / 2)
    assert fc.scd(a, b, f).item() == pytest.approx(r(a, f - b) + r(b, f - a))
    assert fc.viff(a, b, a).item() == pytest.approx(1.0 + fc._vifp(b, a).item())
    from skimage.metrics import structural_similarity

    big = [torch.from_numpy(RNG.integers(0, 256, (1, 40, 40)).astype(np.float64)) for _ in range(3)]
    ref = sum(structural_similarity(big[2][0].numpy(), s[0].numpy(), data_range=2.0) for s in big[:2])
    assert fs.ssim_cddfuse(*big, float32=False).item() == pytest.approx(ref, rel=1e-10)
    # the registered metric is the float32 computation CDDFuse ran (skimage on float32 images)
    ref32 = sum(structural_similarity(big[2][0].numpy().astype(np.float32), s[0].numpy().astype(np.float32),
                                      data_range=2.0) for s in big[:2])
    assert fc.ssim_cddfuse(*big).item() == pytest.approx(ref32, rel=1e-6)
    assert torch.equal(M.create("ssim_cddfuse")(*big), M.create("ssim", convention="cddfuse")(*big))
