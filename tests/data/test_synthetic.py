"""Tests for the synthetic MFF/MEF pair generator (unifuse.data.synthetic)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from unifuse.data.synthetic import (
    MEFConfig,
    gaussian_blur,
    make_mef_pair,
    make_mff_pair,
    random_focus_mask,
    simulate_exposure,
)

MAKERS = [make_mff_pair, make_mef_pair]


def _img(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.mark.parametrize("make", MAKERS)
def test_reproducible_with_numpy_and_torch_generators(make):
    img = _img((40, 50, 3))
    a1, b1, _ = make(img, np.random.default_rng(5))
    a2, b2, _ = make(img, np.random.default_rng(5))
    a3, _, _ = make(img, np.random.default_rng(6))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.array_equal(a1, a3)
    t = torch.from_numpy(img).permute(2, 0, 1)
    r1 = make(t, torch.Generator().manual_seed(3))
    r2 = make(t, torch.Generator().manual_seed(3))
    for x, y in zip(r1, r2):
        assert torch.equal(x, y)


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize(
    "x",
    [
        _img((33, 47)),
        _img((33, 47, 3)),
        _img((33, 47, 1)),
        torch.rand(33, 47),
        torch.rand(1, 33, 47),
        torch.rand(5, 3, 33, 47),
        torch.rand(2, 1, 64, 64, dtype=torch.float64),
    ],
    ids=["np-hw", "np-hw3", "np-hw1", "t-hw", "t-chw", "t-nchw", "t-f64"],
)
def test_layouts_and_ranges(make, x):
    a, b, gt = make(x, np.random.default_rng(0))
    for out in (a, b, gt):
        assert type(out) is type(x) and tuple(out.shape) == tuple(x.shape)
        assert out.dtype == (np.float32 if isinstance(x, np.ndarray) else x.dtype)
        assert float(out.min()) >= 0 and float(out.max()) <= 1
    np.testing.assert_array_equal(np.asarray(gt, dtype=np.float64), np.asarray(x, dtype=np.float64).astype(np.float32) if isinstance(x, np.ndarray) else np.asarray(x))


def test_mff_pair_complementary_sharp_regions():
    img = _img((64, 64, 3), 1)
    a, b, gt = make_mff_pair(img, np.random.default_rng(2))
    sharp_a = np.abs(a - gt).max(-1) < 1e-6
    sharp_b = np.abs(b - gt).max(-1) < 1e-6
    assert sharp_a.any() and sharp_b.any()
    assert not (sharp_a & sharp_b).any()  # a pixel is in focus in one source at most
    # defocused pixels are smoother than the original (random noise image: blur lowers variance)
    assert a[~sharp_a].std() < 0.8 * gt[~sharp_a].std()
    assert b[~sharp_b].std() < 0.8 * gt[~sharp_b].std()


def test_mff_batch_samples_get_their_own_parameters():
    x = torch.rand(1, 1, 48, 48).repeat(4, 1, 1, 1)
    a, b, _ = make_mff_pair(x, torch.Generator().manual_seed(0))
    assert all(not torch.equal(a[0], a[i]) for i in range(1, 4))


def test_focus_mask_fraction():
    m = random_focus_mask(6, 64, 80, np.random.default_rng(4))
    assert m.shape == (6, 1, 64, 80) and m.min() >= 0 and m.max() <= 1
    share = (m > 0.5).float().mean(dim=(1, 2, 3))
    assert ((share > 0.2) & (share < 0.8)).all()  # fraction_range (0.25, 0.75), up to edge softening


def test_mef_pair_over_and_under():
    img = _img((64, 64, 3), 3) * 0.8 + 0.1
    a, b, gt = make_mef_pair(img, np.random.default_rng(1))
    assert (a >= gt - 0.5 / 255).all() and (b <= gt + 0.5 / 255).all()
    assert a.mean() > gt.mean() + 0.05 and b.mean() < gt.mean() - 0.05
    np.testing.assert_allclose(a * 255, np.rint(a * 255), atol=1e-3)
    a, _, _ = make_mef_pair(img, np.random.default_rng(1), MEFConfig(bits=None))
    assert not np.allclose(a * 255, np.rint(a * 255), atol=1e-3)


def test_simulate_exposure_hand_computed():
    x = torch.tensor([[[[0.0, 0.3, 0.7, 1.0]]]])
    # gamma 1: linear scaling then clipping
    torch.testing.assert_close(simulate_exposure(x, 2.0, 1.0, bits=None), torch.tensor([[[[0.0, 0.6, 1.0, 1.0]]]]))
    # gamma 2, factor 1/4: (x^2 / 4)^(1/2) = x / 2 ; 8-bit: 0.35*255 = 89.25 -> 89
    torch.testing.assert_close(
        simulate_exposure(x, 0.25, 2.0, bits=8), torch.tensor([[[[0.0, 38 / 255, 89 / 255, 128 / 255]]]])
    )
    # factor 1 gives back the (quantised) image
    y = torch.rand(2, 3, 5, 5)
    torch.testing.assert_close(simulate_exposure(y, 1.0, 2.2, bits=None), y, atol=1e-5, rtol=0)


def test_gaussian_blur_matches_scipy_and_per_sample_sigma():
    x = torch.rand(3, 2, 30, 41, dtype=torch.float64)
    sig = torch.tensor([2.0, 1.0, 0.0])
    out = gaussian_blur(x, sig)
    for i, s in enumerate(sig.tolist()):
        if s == 0:
            torch.testing.assert_close(out[i], x[i])
            continue
        # torch 'reflect' padding == scipy 'mirror'; truncate 3 sigma == our radius ceil(3 sigma)
        ref = ndimage.gaussian_filter(x[i].numpy(), sigma=(0, s, s), mode="mirror", truncate=3.0)
        if s == 1.0:  # our radius is taken from the largest sigma in the batch: compare one alone
            ref_t = gaussian_blur(x[i : i + 1], s)[0]
            torch.testing.assert_close(ref_t, torch.from_numpy(ref), atol=1e-12, rtol=0)
            continue
        torch.testing.assert_close(out[i], torch.from_numpy(ref), atol=1e-12, rtol=0)
    flat = torch.full((2, 1, 9, 9), 0.4)
    torch.testing.assert_close(gaussian_blur(flat, 4.0), flat)  # radius > size: replicate, still flat
