"""N-source fusion: native baseline rules, the pairwise reduction, reference rule, colour over N, API."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import unifuse
from unifuse.errors import ConfigError, InputMismatchError
from unifuse.inference.frames import load_frames
from unifuse.inference.fuse import Fuser
from unifuse.inference.reduce import order_sources, reduce_pairwise
from unifuse.inference.stack import StackFuser, choose_reference
from unifuse.io import restore_colour
from unifuse.io.colour_stack import ChromaAccumulator
from unifuse.models.baselines.pyramid import collapse, gaussian_pyramid, laplacian_pyramid, max_levels


@pytest.fixture(scope="module")
def tita():
    return unifuse.load_model("tita")  # shipped weights, loaded once for the module


def _frames(k=3, c=1, h=19, w=27, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(1, c, h, w, generator=g) for _ in range(k)]


@pytest.mark.parametrize("name,c", [("average", 1), ("max", 1), ("laplacian", 1), ("mertens", 3), ("mertens", 1)])
def test_two_frames_equal_the_pair_rule(name, c):
    m = unifuse.load_model(name)
    a, b = _frames(2, c)
    torch.testing.assert_close(m.fuse_frames([a, b]), m(a, b), atol=1e-6, rtol=0)


def test_average_and_max_over_n():
    fr = _frames(5)
    x = torch.cat(fr)
    torch.testing.assert_close(unifuse.load_model("average").fuse_frames(fr), x.mean(0, keepdim=True), atol=1e-6, rtol=0)
    torch.testing.assert_close(unifuse.load_model("max").fuse_frames(fr), x.amax(0, keepdim=True))


def test_laplacian_over_n_matches_a_direct_formula():
    fr = _frames(4, h=33, w=40)
    model = unifuse.load_model("laplacian")
    levels = model.levels_for(33, 40)
    pyr = laplacian_pyramid(torch.cat(fr), levels)  # all frames at once, (K, 1, h, w) per level
    fused = []
    for lvl in pyr[:-1]:
        idx = lvl.abs().argmax(dim=0, keepdim=True)  # argmax returns the first maximum: earliest frame on ties
        fused.append(lvl.gather(0, idx))
    fused.append(pyr[-1].mean(0, keepdim=True))
    torch.testing.assert_close(model.fuse_frames(fr), collapse(fused).clamp(0, 1), atol=1e-5, rtol=0)


def test_mertens_over_n_matches_the_joint_normalisation():
    fr = _frames(3, c=3, h=30, w=22)
    model = unifuse.load_model("mertens")
    x = torch.cat(fr)  # (K, 3, H, W)
    gray = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    c = torch.nn.functional.conv2d(torch.nn.functional.pad(gray, (1, 1, 1, 1), mode="replicate"), lap).abs()
    s = x.std(1, unbiased=False, keepdim=True)
    e = torch.exp(-((x - 0.5) ** 2) / (2 * 0.2**2)).prod(1, keepdim=True)
    w = c * s * e + 1e-12
    w = w / w.sum(0, keepdim=True)
    levels = max_levels(30, 22, 1)
    blend = [(gw * li).sum(0, keepdim=True) for li, gw in zip(laplacian_pyramid(x, levels), gaussian_pyramid(w, levels))]
    torch.testing.assert_close(model.fuse_frames(fr), collapse(blend).clamp(0, 1), atol=1e-5, rtol=0)


def test_reduction_structure():
    calls = []

    def pair(a, b):
        calls.append((round(a.item(), 3), round(b.item(), 3)))
        return torch.full((1, 1, 1, 1), 0.9 - 0.1 * len(calls))

    get = lambda k: torch.full((1, 1, 1, 1), k / 100)  # noqa: E731
    reduce_pairwise(get, [0, 1, 2, 3, 4], pair, "sequential")
    assert calls == [(0.0, 0.01), (0.8, 0.02), (0.7, 0.03), (0.6, 0.04)]
    calls.clear()
    out = reduce_pairwise(get, [4, 3, 2, 1, 0], pair, "tree")
    # level 1: (4,3), (2,1), 0 passes; level 2: (r1, r2), r3=0 passes; level 3: (r3', 0)
    assert calls == [(0.04, 0.03), (0.02, 0.01), (0.8, 0.7), (0.6, 0.0)]
    assert out.item() == pytest.approx(0.5)


def test_order_and_reference_rules():
    means = [0.2, 0.8, 0.5, 0.5]
    assert order_sources(means, None, "exposure") == [1, 2, 3, 0]  # brightest first, ties keep input order
    assert order_sources(means, [1.0, 3.0, 2.0, 0.0], "focus") == [1, 2, 0, 3]
    assert order_sources(means, None, "input") == [0, 1, 2, 3]
    assert order_sources([0.9, 0.1], None, "exposure") == [0, 1]  # a pair keeps A/B as given
    assert order_sources(means, [1.0, 3.0, 2.0, 0.0], "auto") == [1, 2, 3, 0]  # a bracket: exposure order
    assert order_sources([0.5, 0.52, 0.49], [1.0, 3.0, 2.0], "auto") == [1, 2, 0]  # a focal stack: focus order
    assert choose_reference([0.1, 0.9, 0.5]) == 2  # bracket: middle exposure
    assert choose_reference([0.1, 0.3, 0.5, 0.9]) == 2
    assert choose_reference([0.5, 0.52, 0.49]) == 0  # focal stack: first frame
    assert choose_reference([0.1, 0.9]) == 0  # pair: first


def test_chroma_rule_over_n_sources():
    rng = np.random.default_rng(1)
    srcs = [np.round(rng.random((6, 7, 3)) * 255) / 255 for _ in range(3)]
    y = rng.random((6, 7)).astype(np.float32)
    acc = ChromaAccumulator("weighted", 8)
    for s in srcs:
        acc.add(s)
    # hand-computed: |c-128|-weighted integer mean over the three sources
    from unifuse.io.colour import rgb_to_ycrcb_u8, ycrcb_to_rgb_u8

    c = np.stack([rgb_to_ycrcb_u8(np.rint(s * 255).astype(np.uint8))[..., 1:].astype(np.int64) for s in srcs])
    wts = np.abs(c - 128)
    chroma = np.where(wts.sum(0) > 0, (c * wts).sum(0) // np.maximum(wts.sum(0), 1), 128)
    expect = ycrcb_to_rgb_u8(np.concatenate([np.rint(y * 255)[..., None], chroma], -1).astype(np.uint8)) / 255
    np.testing.assert_allclose(acc.restore(y), expect, atol=1e-7)
    # a gray source contributes nothing; two sources = the pair rule
    acc2 = ChromaAccumulator("weighted", 8)
    for s in (srcs[0], srcs[1], np.repeat(srcs[2][..., :1], 3, -1)):
        acc2.add(s)
    acc3 = ChromaAccumulator("weighted", 8)
    acc3.add(srcs[0]), acc3.add(srcs[1])
    np.testing.assert_array_equal(acc2.restore(y), acc3.restore(y))
    np.testing.assert_array_equal(acc3.restore(y), restore_colour(y, srcs[0], srcs[1], "weighted", 8))
    for rule, k in (("from-a", 0), ("from-b", 1)):
        acc = ChromaAccumulator(rule, 8)
        for s in srcs:
            acc.add(s)
        np.testing.assert_array_equal(acc.restore(y), restore_colour(y, srcs[k], srcs[k], "from-a", 8))


def test_pair_through_the_stack_path_equals_pair_mode(tita):
    rng = np.random.default_rng(0)
    a = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    b = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    for model in ("laplacian", tita):
        np.testing.assert_array_equal(unifuse.fuse([a, b], model=model, output="numpy"),
                                      unifuse.fuse(a, b, model=model, output="numpy"))


def test_python_api_three_sources_and_errors(tita):
    rng = np.random.default_rng(2)
    fr = [(rng.random((20, 30, 3)) * 255).astype(np.uint8) for _ in range(3)]
    img = unifuse.fuse(fr, model=tita)
    assert img.size == (30, 20) and img.mode == "RGB"
    assert unifuse.fuse(fr, model="mertens", output="numpy").shape == (20, 30, 3)
    with pytest.raises(ConfigError, match="keyword"):
        unifuse.fuse(fr, "laplacian")
    with pytest.raises(InputMismatchError, match="at least two"):
        unifuse.fuse(fr[:1], model="laplacian")
    with pytest.raises(InputMismatchError, match="sizes differ"):
        unifuse.fuse([fr[0], fr[1][:10]], model="laplacian")
    with pytest.raises(ConfigError, match="--reduction"):
        unifuse.fuse(fr, model="laplacian", reduction="zigzag")


def test_frames_stay_compact_and_mixed_depths_are_raised():
    a = np.full((8, 9), 100, np.uint8)
    b = np.full((8, 9), 30000, np.uint16)
    st = load_frames([a, b, a])
    assert st.bit_depth == 16 and all(f.data.dtype == np.uint16 for f in st.frames)
    assert np.all(st.frames[0].data == 100 * 257) and "mixed bit depths" in st.notes[0]
    st8 = load_frames([a, a])
    assert st8.frames[0].data.dtype == np.uint8 and not st8.notes
    res = StackFuser(Fuser("average")).fuse_arrays([a, b])
    assert res.bit_depth == 16
    np.testing.assert_allclose(res.data, (100 * 257 + 30000) / 2 / 65535, atol=1e-6)


def test_python_api_align_and_transforms_file(tmp_path):
    pytest.importorskip("cv2")
    from unifuse.data.stacks import make_stack

    st = make_stack("chelsea", "MEF", 3, seed=4, moving=True, max_side=96)
    frames = [np.floor(f * 255 + 0.5).astype(np.uint8) for f in st.frames]
    out = unifuse.fuse(frames, model="laplacian", align="homography", save_transforms=tmp_path / "t.json",
                       output="numpy")
    again = unifuse.fuse(frames, model="laplacian", transforms=tmp_path / "t.json", output="numpy")
    np.testing.assert_array_equal(out, again)
    assert out.shape == st.ground_truth.shape
    pair = unifuse.fuse(frames[0], frames[1], model="average", align="translation", output="numpy")  # two-argument form
    assert pair.shape == st.ground_truth.shape
    with pytest.raises(ConfigError, match="save_transforms needs align"):
        unifuse.fuse(frames, model="average", save_transforms=tmp_path / "u.json")


def test_chroma_in_bands_equals_the_whole_image(monkeypatch):
    import unifuse.io.colour_stack as cs

    rng = np.random.default_rng(5)
    srcs = [np.round(rng.random((37, 11, 3)) * 255) / 255 for _ in range(3)]
    y = rng.random((37, 11)).astype(np.float32)
    for bits in (8, 16):
        results = []
        for rows in (256, 5):
            monkeypatch.setattr(cs, "BAND_ROWS", rows)
            acc = cs.ChromaAccumulator("weighted", bits)
            for s in srcs:
                acc.add(s)
            results.append(acc.restore(y))
        np.testing.assert_array_equal(results[0], results[1])
