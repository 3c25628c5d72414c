"""Tests for the training-free baselines: average, max, laplacian, mertens."""

from __future__ import annotations

import warnings

import pytest
import torch

import unifuse
from unifuse.errors import ConfigError, InputMismatchError
from unifuse.models.baselines import LaplacianFusion, MertensFusion
from unifuse.models.baselines.pyramid import blur

NAMES = ["average", "max", "laplacian", "mertens"]
SIZES = [(1, 1), (1, 7), (2, 3), (5, 5), (13, 31), (64, 48)]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _channels(name):
    return 3 if name == "mertens" else 1


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_loadable(name):
    assert name in unifuse.list_models()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "random weights" warning for training-free models
        model = unifuse.load_model(name)
    assert model.trainable is False
    assert model.input_mode == ("rgb" if name == "mertens" else "luma")
    assert not model.training and len(list(model.parameters())) == 0
    with pytest.raises(ConfigError):
        unifuse.load_model(name, weights="some.safetensors")
    with pytest.raises(ConfigError, match="unknown option"):
        unifuse.create_model(name, bogus=1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", SIZES)
def test_shapes_range_any_size(name, size):
    model = unifuse.create_model(name)
    c = _channels(name)
    a = torch.rand(3, c, *size, generator=_gen(1))
    b = torch.rand(3, c, *size, generator=_gen(2))
    out = model(a, b)
    assert out.shape == a.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_batch_items_are_independent(name):
    model = unifuse.create_model(name)
    c = _channels(name)
    a = torch.rand(4, c, 37, 29, generator=_gen(3))
    b = torch.rand(4, c, 37, 29, generator=_gen(4))
    batched = model(a, b)
    single = torch.cat([model(a[i : i + 1], b[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_identical_inputs_give_the_input(name):
    model = unifuse.create_model(name)
    for size in SIZES:
        x = torch.rand(2, _channels(name), *size, generator=_gen(5))
        torch.testing.assert_close(model(x, x), x, atol=2e-6, rtol=0)


def test_mismatched_inputs_raise():
    model = unifuse.create_model("average")
    with pytest.raises(InputMismatchError):
        model(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5))
    with pytest.raises(InputMismatchError):
        model(torch.rand(1, 4, 4), torch.rand(1, 4, 4))


def test_average_and_max_hand_computed():
    a = torch.tensor([[[[0.0, 0.2], [1.0, 0.6]]]])
    b = torch.tensor([[[[1.0, 0.4], [0.5, 0.6]]]])
    torch.testing.assert_close(unifuse.create_model("average")(a, b), torch.tensor([[[[0.5, 0.3], [0.75, 0.6]]]]))
    torch.testing.assert_close(unifuse.create_model("max")(a, b), torch.tensor([[[[1.0, 0.4], [1.0, 0.6]]]]))


def test_laplacian_levels_clip_for_small_images():
    model = LaplacianFusion()
    assert model.levels_for(512, 512) == 5
    assert model.levels_for(16, 512) == 3  # 16 -> 8 -> 4
    assert model.levels_for(7, 7) == 1 and model.levels_for(1, 1) == 1
    # a 1-level pyramid is the image itself: details = none, base averaged -> plain mean
    a, b = torch.rand(1, 1, 5, 6, generator=_gen(6)), torch.rand(1, 1, 5, 6, generator=_gen(7))
    torch.testing.assert_close(model(a, b), 0.5 * (a + b))
    assert unifuse.create_model("laplacian", levels=2).levels_for(512, 512) == 2
    with pytest.raises(ConfigError):
        unifuse.create_model("laplacian", levels=0)


def test_laplacian_keeps_the_sharp_source_multi_focus():
    # complementary focus: left half sharp in A, right half sharp in B
    x = torch.rand(1, 1, 64, 64, generator=_gen(8)) * 0.6 + 0.2
    soft = blur(blur(blur(x)))
    left = torch.zeros_like(x)
    left[..., :32] = 1
    a = left * x + (1 - left) * soft
    b = (1 - left) * x + left * soft
    fused = unifuse.create_model("laplacian")(a, b)
    err = (fused - x).abs()[..., 4:-4, 4:-4].mean()
    assert err < 0.35 * (a - x).abs()[..., 4:-4, 4:-4].mean()
    assert err < 0.5 * (unifuse.create_model("average")(a, b) - x).abs()[..., 4:-4, 4:-4].mean()


def _textured(seed, lo, hi, size=48):
    t = torch.rand(1, 3, size, size, generator=_gen(seed))
    return lo + (hi - lo) * t


def test_mertens_weights_favour_the_well_exposed_image():
    well = _textured(9, 0.3, 0.7)  # mid-tones with contrast and colour
    over = (well * 0.5 + 0.6).clamp(max=1.0)  # washed out: bright, low contrast, low saturation
    model = MertensFusion()
    w = model.weights(well, over)
    assert w.shape == (2, 1, 1, 48, 48)
    torch.testing.assert_close(w.sum(0), torch.ones(1, 1, 48, 48))
    assert (w[0] > 0.5).float().mean() > 0.95 and w[0].mean() > 0.9
    fused = model(over, well)  # order does not matter
    assert (fused - well).abs().mean() < 0.25 * (over - well).abs().mean()
    torch.testing.assert_close(model(well, over), fused, atol=1e-6, rtol=0)


def test_mertens_hand_computed_weights():
    # flat images: contrast 0 everywhere -> both weights eps -> 0.5 each
    a, b = torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), 0.9)
    torch.testing.assert_close(MertensFusion().weights(a, b), torch.full((2, 1, 1, 4, 4), 0.5))
    # with contrast and saturation equal, the ratio of weights is the ratio of well-exposedness:
    # channels (0.5, 0.5, 0.7) vs (0.7, 0.5, 0.5) have the same std and a swapped pattern
    base = torch.zeros(1, 3, 5, 5)
    base[..., 2, 2] = 0.1  # one bump: same Laplacian for both (applied to all channels)
    pa = base + torch.tensor([0.5, 0.5, 0.7]).view(1, 3, 1, 1)
    pb = base + torch.tensor([0.9, 0.5, 0.7]).view(1, 3, 1, 1)
    w = MertensFusion(unifuse.models.baselines.MertensConfig(saturation_weight=0.0)).weights(pa, pb)
    # E = prod exp(-(c-0.5)^2 / 0.08): at the corner pixel (no bump) the ratio is exp(-(0 - 0.16)/0.08) = e^2
    # ... but contrast is 0 there; use the bump's neighbour (1, 2), where the Laplacian is 0.1 for both
    ratio = w[0, 0, 0, 1, 2] / w[1, 0, 0, 1, 2]
    torch.testing.assert_close(ratio, torch.tensor(2.718281828**2), rtol=1e-4, atol=0)


def test_mertens_gray_input():
    well = _textured(10, 0.3, 0.7)[:, :1]
    over = (well * 0.5 + 0.6).clamp(max=1.0)
    fused = unifuse.create_model("mertens")(well, over)
    assert fused.shape == well.shape
    assert (fused - well).abs().mean() < 0.25 * (over - well).abs().mean()


def test_mertens_gray_pair_stored_as_rgb_equals_gray_path():
    well = _textured(11, 0.3, 0.7)[:, :1]
    over = (well * 0.5 + 0.6).clamp(max=1.0)
    model = unifuse.create_model("mertens")
    gray = model(well, over)
    rgb = model(well.repeat(1, 3, 1, 1), over.repeat(1, 3, 1, 1))
    torch.testing.assert_close(rgb, gray.repeat(1, 3, 1, 1), atol=1e-6, rtol=0)
    # a colour pair in the same batch keeps its saturation term
    colour = _textured(12, 0.3, 0.7)
    both = model(torch.cat([well.repeat(1, 3, 1, 1), colour]), torch.cat([over.repeat(1, 3, 1, 1), colour * 0.5]))
    torch.testing.assert_close(both[:1], rgb, atol=1e-6, rtol=0)
    torch.testing.assert_close(both[1:], model(colour, colour * 0.5), atol=1e-6, rtol=0)
