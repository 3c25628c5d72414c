"""MATLAB helper ports against scipy/numpy equivalents and hand-computed MATLAB results."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as sps
import torch

from unifuse.metrics.functional import matlab as ml

RNG = np.random.default_rng(0)
X = RNG.random((2, 9, 11)) * 255
T = torch.from_numpy(X)


@pytest.mark.parametrize("k", [(3, 3), (7, 7), (5, 1), (1, 9)])
@pytest.mark.parametrize("shape", ["same", "valid", "full"])
def test_filter2_conv2_match_scipy_for_odd_kernels(k, shape):
    h = RNG.random(k)
    ref_corr = np.stack([sps.convolve2d(x, np.rot90(h, 2), shape) for x in X])
    ref_conv = np.stack([sps.convolve2d(x, h, shape) for x in X])
    np.testing.assert_allclose(ml.filter2(torch.from_numpy(h), T, shape).numpy(), ref_corr, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ml.conv2(T, torch.from_numpy(h), shape).numpy(), ref_conv, rtol=1e-12, atol=1e-9)


def test_even_kernel_same_uses_matlab_centre():
    # MATLAB: conv2([1 2 3], [1 1], 'same') = [3 5 3]; filter2([1 2], [1 2 3]) = [5 8 3]
    x = torch.tensor([[[1.0, 2.0, 3.0]]], dtype=torch.float64)
    assert ml.conv2(x, [[1.0, 1.0]], "same").tolist() == [[[3.0, 5.0, 3.0]]]
    assert ml.filter2([[1.0, 2.0]], x, "same").tolist() == [[[5.0, 8.0, 3.0]]]


@pytest.mark.parametrize("padding,mode", [("replicate", "nearest"), ("symmetric", "reflect"), ("zero", "constant")])
def test_imfilter_paddings(padding, mode):
    h = RNG.random((3, 3))
    ref = np.stack([ndi.correlate(x, h, mode=mode) for x in X])
    np.testing.assert_allclose(ml.imfilter(T, torch.from_numpy(h), padding).numpy(), ref, rtol=1e-12)


def test_separable_equals_full_kernel():
    g = ml.fspecial_gaussian(11, 1.5)
    g1 = g[:, 5] / g[:, 5].sum()
    x = torch.from_numpy(RNG.random((2, 30, 40)) * 255)
    full = ml.filter2(g, x, "valid")
    sep = ml.separable_filter2(x, g1, g1, shape="valid")
    torch.testing.assert_close(sep, full, rtol=1e-12, atol=1e-10)


def test_gradient_matches_numpy():
    gx, gy = ml.gradient(T)
    ref_y, ref_x = np.gradient(X, axis=(1, 2))
    np.testing.assert_allclose(gx.numpy(), ref_x)
    np.testing.assert_allclose(gy.numpy(), ref_y)


def test_fspecial_and_rounding():
    # fspecial('gaussian', 3, 0.5) from MATLAB's documentation values
    g = ml.fspecial_gaussian(3, 0.5)
    assert g[1, 1].item() == pytest.approx(0.619347, abs=1e-6)
    assert g[0, 0].item() == pytest.approx(0.011344, abs=1e-6)
    assert g.sum().item() == pytest.approx(1.0)
    assert ml.round_half_away(torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5])).tolist() == [1, 2, 3, -1, -3]
    # rgb2gray(uint8([255 0 0])) = 76 (0.2989*255 = 76.23), ([0 0 255]) = 29, (128,128,128) -> 128
    # pixels (255,0,0), (0,0,255), (128,128,128) as an (N=1, C=3, H=1, W=3) tensor
    rgb = torch.tensor([[[[255.0, 0, 128]], [[0, 0, 128]], [[0, 255, 128]]]], dtype=torch.float64)
    assert ml.rgb2gray_uint8(rgb).flatten().tolist() == [76.0, 29.0, 128.0]


def test_normalize1_and_blocks_and_freqspace():
    x = torch.tensor([[[10.0, 20.0], [30.0, 40.0]]], dtype=torch.float64)
    assert ml.normalize1(x).flatten().tolist() == [0.0, 85.0, 170.0, 255.0]
    assert ml.normalize1(torch.zeros(1, 2, 2, dtype=torch.float64)).abs().sum() == 0
    b = ml.blocks(torch.ones(1, 5, 3, dtype=torch.float64), 4)
    assert b.shape == (1, 2, 1, 4, 4)
    assert b.sum().item() == 15.0  # zero padding adds nothing
    f1, f2 = ml.freqspace(3, 4)
    assert f1[0].tolist() == [-1.0, -0.5, 0.0, 0.5]
    assert f2[:, 0].tolist() == pytest.approx([-2 / 3, 0.0, 2 / 3])


def test_edge_sobel_finds_vertical_step_and_thins_it():
    x = torch.zeros(1, 12, 12, dtype=torch.float64)
    x[:, :, 6:] = 200.0
    e = ml.edge_sobel(x)[0]
    cols = e.any(dim=0).nonzero().flatten().tolist()
    assert len(cols) == 1 and cols[0] in (5, 6)  # one thinned column at the step
    assert e[:, cols[0]].all()
    assert not ml.edge_sobel(torch.full((1, 8, 8), 7.0, dtype=torch.float64)).any()


def test_histograms():
    x = torch.tensor([[[0.0, 1.0], [1.0, 255.0]]], dtype=torch.float64)
    h = ml.histc256(x)
    assert h[0, 0] == 1 and h[0, 1] == 2 and h[0, 255] == 1 and h.sum() == 4
    j = ml.joint_hist256(x, 255 - x)
    assert j[0, 1, 254] == 2 and j[0, 0, 255] == 1 and j.sum() == 4
