"""unifuse.fuse(): input kinds, colour rules, sizes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import unifuse
from unifuse.errors import ConfigError, InputMismatchError
from unifuse.io import restore_colour, rgb_to_luma


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.random((21, 30, 3)).astype(np.float32)
    b = rng.random((21, 30)).astype(np.float32)
    return a, b


def test_input_kinds_give_the_same_result(pair, tmp_path):
    a, b = pair
    a8 = (a * 255).round().astype(np.uint8)
    b8 = (b * 255).round().astype(np.uint8)
    Image.fromarray(a8).save(tmp_path / "a.png")
    Image.fromarray(b8).save(tmp_path / "b.png")
    ref = unifuse.fuse(tmp_path / "a.png", tmp_path / "b.png", model="average", output="numpy")
    for xa, xb in [(a8, b8), (Image.fromarray(a8), Image.fromarray(b8)),
                   (torch.from_numpy(a8).permute(2, 0, 1), torch.from_numpy(b8)[None])]:
        out = unifuse.fuse(xa, xb, model="average", output="numpy")
        assert np.array_equal(out, ref)
    pil = unifuse.fuse(a8, b8, model="average")
    assert isinstance(pil, Image.Image) and pil.size == (30, 21) and pil.mode == "RGB"


def test_luma_fusion_then_official_colour_rule(pair):
    a, b = pair
    a8 = (a * 255).round().astype(np.uint8)
    b8 = (b * 255).round().astype(np.uint8)
    out = unifuse.fuse(a8, b8, model="max", output="numpy")
    ya = rgb_to_luma(a8.astype(np.float32) / 255)
    yb = b8.astype(np.float32) / 255
    expected = restore_colour(np.maximum(ya, yb), a8 / 255.0, yb, "weighted")
    assert np.abs(out - expected).max() < 1e-6
    gray = unifuse.fuse(a8, b8, model="max", color="gray", output="numpy")
    assert gray.ndim == 2 and np.abs(gray - np.floor(np.maximum(ya, yb) * 255 + 0.5) / 255).max() < 1e-6


def test_two_gray_sources_give_gray(pair):
    _, b = pair
    out = unifuse.fuse(b, 1 - b, model="average", output="numpy")
    assert out.ndim == 2


def test_rgb_model_gets_colour(pair):
    a, _ = pair
    out = unifuse.fuse(a, a * 0.5, model="mertens", output="numpy")
    assert out.shape == a.shape


def test_size_mismatch_and_resize(pair):
    a, b = pair
    small = b[:10, :12]
    with pytest.raises(InputMismatchError, match="sizes differ.*--resize-to"):
        unifuse.fuse(a, small, model="average")
    out = unifuse.fuse(a, small, model="average", resize_to="a", output="numpy")
    assert out.shape[:2] == a.shape[:2]
    out = unifuse.fuse(a, small, model="average", resize_to="b", output="numpy")
    assert out.shape[:2] == small.shape


def test_bad_options(pair):
    a, b = pair
    with pytest.raises(ConfigError, match="color"):
        unifuse.fuse(a, b, model="average", color="purple")
    with pytest.raises(ConfigError, match="tile"):
        unifuse.fuse(a, b, model="average", tile=3)
    with pytest.raises(ConfigError, match="unknown model"):
        unifuse.fuse(a, b, model="nope")
    with pytest.raises(ConfigError, match="output"):
        unifuse.fuse(a, b, model="average", output="jpeg")


def test_untrained_tita_is_refused(pair, monkeypatch):
    from unifuse.models.tita import TITA

    monkeypatch.setattr(TITA, "default_weights", staticmethod(lambda: None))
    a, b = pair
    with pytest.raises(ConfigError, match="no trained weights"):
        unifuse.fuse(a, b, model="tita")


def test_tita_with_explicit_weights_any_size(reference_dir):
    case = torch.load(reference_dir / "tita_official_case1.pt", weights_only=False)
    a = case["a"][0, 0, :37, :53].numpy()
    b = case["b"][0, 0, :37, :53].numpy()
    out = unifuse.fuse(a, b, model="tita", weights=case["state_dict"], output="numpy")
    assert out.shape == (37, 53)
    with torch.no_grad():
        net = unifuse.load_model("tita", weights=case["state_dict"])
        y = net(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])[0, 0].clamp(0, 1).numpy()
    assert np.abs(out - np.floor(y * 255 + 0.5) / 255).max() < 1e-6
