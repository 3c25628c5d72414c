"""Tests for the built-in sample pairs (unifuse.data.samples)."""

from __future__ import annotations

import numpy as np
import pytest

from unifuse.data.samples import SamplePair, clean_images, list_samples, load_sample
from unifuse.errors import ConfigError


@pytest.fixture(scope="module")
def pairs() -> dict[str, SamplePair]:
    return {name: load_sample(name) for name in list_samples()}


def _grad_energy(x: np.ndarray) -> float:
    g = x.mean(axis=-1)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def test_catalogue_has_both_tasks(pairs):
    tasks = {p.task for p in pairs.values()}
    assert tasks == {"MFF", "MEF"}
    for name, p in pairs.items():
        assert p.name == name and p.description
        assert p.a.shape == p.b.shape == p.ground_truth.shape
        h, w, c = p.a.shape
        assert c == 3 and max(h, w) <= 512 and min(h, w) >= 64
        for arr in (p.a, p.b, p.ground_truth):
            assert arr.dtype == np.float32 and arr.min() >= 0 and arr.max() <= 1


def test_multi_focus_pairs_are_complementary(pairs):
    for p in (p for p in pairs.values() if p.task == "MFF"):
        sharp_a = np.abs(p.a - p.ground_truth).max(-1) < 1e-6
        sharp_b = np.abs(p.b - p.ground_truth).max(-1) < 1e-6
        assert 0.15 < sharp_a.mean() < 0.85 and 0.15 < sharp_b.mean() < 0.85
        # each region is sharp in one source only (but flat areas are unchanged by blur in both)
        assert (sharp_a & sharp_b).mean() < 0.1
        # the blurred part of each source has less detail than the original there
        fg = sharp_b & ~sharp_a
        assert _grad_energy(np.where(fg[..., None], p.a, 0)) < 0.7 * _grad_energy(np.where(fg[..., None], p.ground_truth, 0))
        assert _grad_energy(p.a) < _grad_energy(p.ground_truth) and _grad_energy(p.b) < _grad_energy(p.ground_truth)


def test_multi_exposure_pairs(pairs):
    for p in (p for p in pairs.values() if p.task == "MEF"):
        assert p.b.mean() < p.ground_truth.mean() < p.a.mean()
        assert (p.a >= 1.0).mean() > (p.ground_truth >= 1.0).mean() + 0.01  # clipped highlights
        for x in (p.a, p.b):  # 8-bit quantised captures
            np.testing.assert_allclose(x * 255, np.rint(x * 255), atol=1e-3)
        # the tone curve is monotone: exposure order is kept pixel-wise
        assert (p.a + 1 / 255 >= p.ground_truth).all() and (p.b <= p.ground_truth + 1 / 255).all()


def test_deterministic_and_returns_copies():
    name = list_samples()[0]
    first = load_sample(name)
    first.a[:] = 0
    again = load_sample(name)
    assert again.a.max() > 0
    np.testing.assert_array_equal(again.b, load_sample(name.replace("_", "-")).b)


def test_unknown_sample():
    with pytest.raises(ConfigError, match="unknown sample 'nope'; available: "):
        load_sample("nope")


def test_clean_images_are_the_ground_truths(pairs):
    photos = clean_images()
    assert photos and all(v.ndim == 3 and v.dtype == np.float32 for v in photos.values())
    gts = [p.ground_truth for p in pairs.values()]
    for photo in photos.values():
        assert any(g.shape == photo.shape and np.array_equal(g, photo) for g in gts)
