"""Registration: recovers known synthetic transforms, refuses implausible ones; transforms JSON; warping."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cv2")

from unifuse.align import (AlignmentError, FrameTransform, Registration, corner_error, load_transforms,  # noqa: E402
                           register_pair, save_transforms, warp_to_reference)
from unifuse.data.stacks import make_stack  # noqa: E402
from unifuse.errors import ConfigError, InputMismatchError  # noqa: E402
from unifuse.io import rgb_to_luma  # noqa: E402


@pytest.fixture(scope="module")
def handheld_bracket():
    return make_stack("chelsea", "MEF", 3, seed=5, moving=True, max_side=160, perspective=0.03)


def _y(x):
    return rgb_to_luma(x.astype(np.float32), 16)


def test_homography_recovered_across_exposures(handheld_bracket):
    st = handheld_bracket
    ref = _y(st.frames[st.reference])
    h, w = ref.shape
    for k in (0, 2):  # -2 and +2 stops against the middle exposure
        m, score, method = register_pair(ref, _y(st.frames[k]), "homography")
        mean_err, max_err = corner_error(m, st.transforms[k], (w, h))
        assert mean_err < 0.5 and max_err < 1.0, (k, mean_err, max_err)
        assert score > 0.9
        assert np.abs(st.transforms[k] - np.eye(3)).max() > 0.01  # a real motion was there to recover


def test_translation_recovered_on_a_focal_pair():
    st = make_stack("coffee", "MFF", 2, seed=2, max_side=128)
    ref = _y(st.frames[0])
    # shift frame 2 by (+3.25, -2.5) px: content at x sits at x + t
    import cv2

    t = np.array([[1, 0, 3.25], [0, 1, -2.5], [0, 0, 1.0]])
    moved = cv2.warpPerspective(st.frames[1], t, ref.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    for motion in ("translation", "euclidean"):
        m, _, _ = register_pair(ref, _y(moved), motion)
        assert corner_error(m, t, ref.shape[::-1])[1] < 0.5, motion


def test_implausible_or_cross_modal_refused(handheld_bracket):
    st = handheld_bracket
    ref = _y(st.frames[st.reference])
    noise = np.random.default_rng(0).random(ref.shape).astype(np.float32)
    with pytest.raises(AlignmentError):
        register_pair(ref, noise, "homography")
    with pytest.raises(AlignmentError):  # inverted contrast: no monotonic intensity relation
        register_pair(ref, 1.0 - ref, "affine")


def test_warp_fills_missing_pixels_from_the_reference():
    src = np.full((20, 30), 200, np.uint8)
    ref = np.full((20, 30), 10, np.uint8)
    t = np.array([[1, 0, 5.0], [0, 1, 0], [0, 0, 1]])  # reference x -> source x + 5: the right 5 columns have no data
    out = warp_to_reference(src, t, ref)
    assert out.dtype == np.uint8 and out.shape == (20, 30)
    assert (out[:, :23] == 200).all() and (out[:, -4:] == 10).all()


def test_transforms_json_round_trip(tmp_path, handheld_bracket):
    st = handheld_bracket
    h, w = st.frames[0].shape[:2]
    reg = Registration("homography", 1, (w, h),
                       [FrameTransform(np.asarray(m), f"f{k}.png", (w, h), "ecc", 0.99) for k, m in enumerate(st.transforms)])
    p = save_transforms(tmp_path / "t.json", reg)
    back = load_transforms(p)
    assert back.motion == "homography" and back.reference == 1 and back.size == (w, h)
    for a, b in zip(reg.frames, back.frames):
        np.testing.assert_allclose(a.matrix, b.matrix, rtol=0, atol=1e-12)
        assert a.source == b.source and a.size == b.size
    back.check_frames([(w, h)] * 3)
    with pytest.raises(InputMismatchError, match="3 transforms but the stack has 2"):
        back.check_frames([(w, h)] * 2)
    with pytest.raises(InputMismatchError, match="made for"):
        back.check_frames([(w, h), (w + 1, h), (w, h)])
    bad = json.loads(p.read_text())
    bad["frames"][0]["matrix"] = [[1, 0], [0, 1]]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="invalid transforms file"):
        load_transforms(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="not found"):
        load_transforms(tmp_path / "missing.json")


def test_register_frames_direct_and_chained():
    from unifuse.align import register_frames

    st = make_stack("coffee", "MFF", 4, seed=11, moving=True, max_side=128)
    ys = [_y(f) for f in st.frames]
    h, w = ys[0].shape
    for chain in (False, True):
        found = register_frames(lambda k: ys[k], 4, 0, "euclidean", chain=chain)
        assert found[0][2] == "identity" and np.array_equal(found[0][0], np.eye(3))
        errs = [corner_error(m, st.transforms[k], (w, h))[0] for k, (m, _, _) in enumerate(found) if k]
        assert max(errs) < 0.8, (chain, errs)  # true motion has scale/perspective a Euclidean model lacks
        assert ("chained" in found[2][2]) == chain
    with pytest.raises(AlignmentError, match="cannot align frame 2 to frame 1"):
        register_frames(lambda k: [ys[0], np.random.default_rng(0).random(ys[0].shape).astype(np.float32)][k], 2, 0,
                        "affine")
