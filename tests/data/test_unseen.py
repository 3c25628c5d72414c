"""Tests for the unseen-task pairs (unifuse.data.unseen): pan-sharpening and synthetic medical-like pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unifuse.data import unseen
from unifuse.data.unseen import (TISSUES, head_phantom, hot_colormap, list_unseen, load_unseen,
                                 make_ct_mri_pair, make_pansharpening_pair, make_pet_mri_pair, pansharpening_scores)
from unifuse.errors import ConfigError, InputMismatchError
from unifuse.io import rgb_to_luma


@pytest.fixture(scope="module")
def pairs():
    return {n: load_unseen(n) for n in list_unseen()}


def _block_mean(x: np.ndarray, r: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    t = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]
    return F.avg_pool2d(t, r)[0].numpy()


def _grad_energy(x: np.ndarray) -> float:
    g = x if x.ndim == 2 else x.mean(-1)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def _is_8bit(x: np.ndarray) -> bool:
    return bool(np.allclose(x * 255, np.rint(x * 255), atol=1e-3))


def test_catalogue_shapes_ranges_rules(pairs):
    assert {p.task for p in pairs.values()} == {"PAN", "MED"}
    for name, p in pairs.items():
        assert p.name == name and p.description and len(p.labels) == 2
        for arr in (p.a, p.b) + ((p.ground_truth,) if p.ground_truth is not None else ()):
            assert arr.dtype == np.float32 and arr.min() >= 0 and arr.max() <= 1 and _is_8bit(arr)
            assert arr.shape[:2] == p.a.shape[:2]
        if p.task == "PAN":
            assert p.a.shape == (*unseen.PAN_SIZE, 3) and p.b.shape == unseen.PAN_SIZE
            assert p.ground_truth.shape == p.a.shape and p.color == "from-a"
        else:
            assert p.ground_truth is None and "SYNTHETIC" in p.description
            assert p.a.shape[:2] == (unseen.MED_SIZE, unseen.MED_SIZE)
    assert pairs["med_ct_mri"].a.ndim == pairs["med_ct_mri"].b.ndim == 2
    assert pairs["med_pet_mri"].b.ndim == 3 and pairs["med_pet_mri"].color == "from-b"


def test_deterministic_and_returns_copies():
    for name in list_unseen():
        first = load_unseen(name)
        first.a[:] = 0
        second, third = load_unseen(name), load_unseen(name)
        assert second.a.any()
        np.testing.assert_array_equal(second.a, third.a)
        np.testing.assert_array_equal(second.b, third.b)
    np.testing.assert_array_equal(make_ct_mri_pair(64, seed=3)[1], make_ct_mri_pair(64, seed=3)[1])
    assert not np.array_equal(make_ct_mri_pair(64, seed=3)[1], make_ct_mri_pair(64, seed=4)[1])
    with pytest.raises(ConfigError, match="available"):
        load_unseen("pan_nothing")


def test_pansharpening_inputs_consistent_with_ground_truth(pairs):
    p = pairs["pan_coffee"]
    # PAN is exactly the ground truth's luma (the package's luma definition)
    np.testing.assert_array_equal(p.b, rgb_to_luma(p.ground_truth, 8))
    # MS carries the ground truth's 4x4 block means (up to bicubic ringing and 8-bit rounding) ...
    diff = np.abs(_block_mean(p.a, 4) - _block_mean(p.ground_truth, 4))
    assert diff.mean() < 0.01
    # ... and has lost the detail the PAN image still has
    assert _grad_energy(p.a) < 0.6 * _grad_energy(p.ground_truth)
    assert _grad_energy(p.b) == pytest.approx(_grad_energy(rgb_to_luma(p.ground_truth, 8)))
    # the other photograph uses another spectral response
    q = pairs["pan_rocket"]
    w = np.array([0.45, 0.45, 0.10])
    np.testing.assert_allclose(q.b, np.rint(np.clip(q.ground_truth.astype(np.float64) @ w, 0, 1) * 255) / 255, atol=1e-6)
    assert np.abs(q.b - rgb_to_luma(q.ground_truth, 8)).mean() > 1 / 255


def test_make_pansharpening_pair_crops_and_validates():
    rng = np.random.default_rng(0)
    img = rng.random((37, 42, 3)).astype(np.float32)
    ms, pan, gt = make_pansharpening_pair(img, ratio=4)
    assert ms.shape == gt.shape == (36, 40, 3) and pan.shape == (36, 40)
    np.testing.assert_allclose(gt, np.rint(img[:36, :40] * 255) / 255, atol=1e-6)
    flat = np.full((16, 16, 3), 0.4, np.float32)  # a flat image survives the degradation unchanged
    ms, pan, gt = make_pansharpening_pair(flat, ratio=2)
    np.testing.assert_allclose(ms, gt, atol=1 / 255)
    with pytest.raises(InputMismatchError):
        make_pansharpening_pair(img[..., 0])
    with pytest.raises(ConfigError):
        make_pansharpening_pair(img, ratio=1)
    with pytest.raises(ConfigError):
        make_pansharpening_pair(img, pan_weights=(1, -1, 0))


def test_pansharpening_scores():
    rng = np.random.default_rng(1)
    gt = rng.random((16, 16, 3)) * 0.8 + 0.1
    assert pansharpening_scores(gt, gt) == {"SAM_gt": pytest.approx(0, abs=1e-5), "ERGAS_gt": 0.0}
    half = pansharpening_scores(gt * 0.5, gt)  # same spectral angle, wrong radiometry
    assert half["SAM_gt"] == pytest.approx(0, abs=1e-5) and half["ERGAS_gt"] > 1
    shifted = gt.copy()
    shifted[..., 0] *= 0.5  # a colour change
    assert pansharpening_scores(shifted, gt)["SAM_gt"] > 1
    # ERGAS = 100/ratio * relative RMSE for a uniform relative error
    assert pansharpening_scores(np.full((4, 4, 3), 0.55), np.full((4, 4, 3), 0.5))["ERGAS_gt"] == pytest.approx(2.5)


def test_head_phantom_tissues():
    frac = head_phantom(64)
    assert set(frac) == set(TISSUES)
    total = sum(frac.values())
    assert total.min() >= 0 and total.max() <= 1 + 1e-6
    assert total[32, 32] == pytest.approx(1) and total[0, 0] == 0  # inside / air
    assert all(f.max() > 0.5 for f in frac.values())  # every tissue appears
    with pytest.raises(ConfigError):
        head_phantom(8)


def test_medical_like_contrasts_are_complementary():
    frac = head_phantom(256)
    ct, mri = make_ct_mri_pair(256)
    mri1, pet, uptake = make_pet_mri_pair(256)

    def mean(img, tissue):
        return float(img[frac[tissue] > 0.99].mean())

    # CT: bone bright, soft tissue compressed; MRI: bone dark, CSF bright, lesion visible
    assert mean(ct, "skull") > 0.9 and mean(mri, "skull") < 0.15
    assert abs(mean(ct, "grey") - mean(ct, "white")) < 0.1 < abs(mean(mri, "grey") - mean(mri, "white"))
    assert mean(mri, "csf") > mean(mri, "grey") and mean(ct, "csf") < mean(ct, "grey")
    assert mean(ct, "calcification") > 0.8 and mean(mri, "calcification") < 0.3
    assert mean(mri, "tumour") - mean(mri, "white") > 3 * abs(mean(ct, "tumour") - mean(ct, "white"))
    # T1: white matter brighter than grey, CSF dark; PET: hot tumour, pseudo-colour of the uptake
    assert mean(mri1, "white") > mean(mri1, "grey") > mean(mri1, "csf")
    assert mean(uptake, "tumour") > mean(uptake, "grey") > mean(uptake, "white")
    np.testing.assert_allclose(pet, np.rint(hot_colormap(uptake) * 255) / 255, atol=1e-6)
    assert _grad_energy(uptake) < 0.5 * _grad_energy(mri1)  # low resolution


def test_hot_colormap_is_monotone_in_luma():
    t = np.linspace(0, 1, 256)
    rgb = hot_colormap(t)
    assert rgb.shape == (256, 3)
    np.testing.assert_array_equal(rgb[0], [0, 0, 0])
    np.testing.assert_array_equal(rgb[-1], [1, 1, 1])
    assert (np.diff(rgb @ np.array([0.299, 0.587, 0.114])) >= 0).all()
