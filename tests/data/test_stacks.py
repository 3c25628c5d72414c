"""Synthetic stack generators: brackets, focal stacks, hand-held motion with known transforms."""

from __future__ import annotations

import numpy as np
import pytest

from unifuse.data.stacks import exposure_bracket, focal_stack, handheld, make_stack, random_homography


@pytest.fixture(scope="module")
def img():
    rng = np.random.default_rng(0)
    base = np.linspace(0.1, 0.9, 48 * 64, dtype=np.float32).reshape(48, 64)
    return np.clip(np.stack([base, base[::-1], base * 0.8], -1)
                   + 0.05 * rng.standard_normal((48, 64, 3)).astype(np.float32), 0, 1)


@pytest.mark.parametrize("n", [3, 5, 9])
def test_bracket_is_ordered_and_quantised(img, n):
    frames, stops = exposure_bracket(img, n)
    assert len(frames) == n and stops == sorted(stops) and stops[0] == -stops[-1]
    means = [f.mean() for f in frames]
    assert means == sorted(means)  # darkest first
    assert all(np.allclose(f * 255, np.round(f * 255), atol=1e-4) for f in frames)


@pytest.mark.parametrize("n", [3, 5])
def test_focal_stack_frame_k_is_sharp_on_layer_k(img, n):
    from unifuse.data.stacks import depth_layers

    frames = focal_stack(img, n, np.random.default_rng(3))
    masks = depth_layers(48, 64, n, np.random.default_rng(3))
    for k, f in enumerate(frames):
        inside = masks[k] > 1 - 1e-6
        assert inside.any()
        np.testing.assert_allclose(f[inside], img[inside], atol=1e-4)  # in focus: the ground truth
        other = masks[(k + 1) % n] > 1 - 1e-6
        assert np.abs(f[other] - img[other]).mean() > 1e-3  # another layer is blurred


def test_handheld_transforms_are_true_and_seeded(img):
    import cv2

    frames, _ = exposure_bracket(img, 3)
    moved, mats = handheld(frames, 1, np.random.default_rng(4), quantise=None)
    moved2, mats2 = handheld(frames, 1, np.random.default_rng(4), quantise=None)
    np.testing.assert_array_equal(mats[0], mats2[0])
    assert np.array_equal(mats[1], np.eye(3)) and np.array_equal(moved[1], frames[1])
    # moved(M x) = frame(x): sampling the moved frame at M x gives the frame back (interior)
    back = cv2.warpPerspective(moved[0], mats[0], (64, 48), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    assert np.abs(back[10:-10, 10:-10] - frames[0][10:-10, 10:-10]).mean() < 0.01
    m = random_homography(np.random.default_rng(0), (64, 48), perspective=0.05)
    assert m.shape == (3, 3) and m[2, 2] == 1.0


def test_make_stack_from_a_builtin_photograph():
    st = make_stack("rocket", "MEF", 5, seed=1, moving=True, max_side=64)
    assert st.name == "mef5_rocket_handheld" and st.reference == 2 and len(st.frames) == 5
    assert st.frames[0].shape == st.ground_truth.shape and max(st.ground_truth.shape[:2]) == 64
    st2 = make_stack("coffee", "MFF", 3, max_side=64)
    assert st2.reference == 0 and all(np.array_equal(m, np.eye(3)) for m in st2.transforms)
