"""Tests for the real held-out demo pairs (unifuse.data.devpairs): on a fake layout, and on ../shared when present."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from unifuse.data import devpairs
from unifuse.data.datasets import DEV_EVERY, PairFolderDataset
from unifuse.data.devpairs import DEV_PAIRS, find_data_root, list_dev_pairs, load_dev_pair, load_dev_pairs
from unifuse.errors import ConfigError


def _save(path, shape, seed, gray_as_rgb=False):
    rng = np.random.default_rng(seed)
    arr = (rng.random(shape) * 255).astype(np.uint8)
    if gray_as_rgb:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def fake_root(tmp_path):
    """A miniature shared/data layout: vifb_dev (3 pairs), MEF with 9 pairs (dev: #0 and #8), no MFF folder."""
    root = tmp_path / "data"
    for i, stem in enumerate(["carWhite", "fight", "zzz"]):
        _save(root / "vifb_dev" / "vi" / f"{stem}.jpg", (20, 30, 3), i)
        _save(root / "vifb_dev" / "ir" / f"{stem}.png", (20, 30), 10 + i, gray_as_rgb=True)
    for i in range(9):
        h = 40 if i == 8 else 60  # the second dev pair is the smallest
        _save(root / "mef" / "mefb_train" / "over" / f"p{i}.png", (h, 50, 3), 20 + i)
        _save(root / "mef" / "mefb_train" / "under" / f"p{i}.png", (h, 50, 3), 30 + i)
    return root


def test_find_data_root(tmp_path, monkeypatch, fake_root):
    assert find_data_root(fake_root) == fake_root
    with pytest.raises(ConfigError, match="not found"):
        find_data_root(tmp_path / "nothing")
    monkeypatch.setenv("UNIFUSE_SHARED", str(tmp_path))
    assert find_data_root() == fake_root  # $UNIFUSE_SHARED/data
    monkeypatch.setenv("UNIFUSE_SHARED", str(tmp_path / "elsewhere"))
    assert find_data_root() is None and list_dev_pairs() == [] and load_dev_pairs() == []


def test_pairs_from_a_fake_layout(fake_root):
    assert list_dev_pairs(fake_root) == ["ivf_vifb_1", "ivf_vifb_2", "mef_mefb_dev"]  # no MFF folder here
    pairs = {p.name: p for p in load_dev_pairs(fake_root)}
    assert sorted(pairs) == ["ivf_vifb_1_carWhite", "ivf_vifb_2_fight", "mef_mefb_dev_p8"]
    ivf = pairs["ivf_vifb_1_carWhite"]
    assert ivf.task == "IVF" and ivf.ground_truth is None and ivf.labels == ("visible", "infrared")
    assert ivf.a.shape == (20, 30, 3) and ivf.b.shape == (20, 30)  # gray stored as RGB -> (H, W)
    assert ivf.a.dtype == ivf.b.dtype == np.float32 and 0 <= ivf.a.min() and ivf.a.max() <= 1
    np.testing.assert_array_equal(ivf.a, np.asarray(Image.open(fake_root / "vifb_dev/vi/carWhite.jpg")) / np.float32(255))
    assert "No ground truth" in ivf.description and "30×20" in ivf.description
    # MEF: preferred stem absent -> the smallest pair of the dev split (#0 or #8; #8 is smaller)
    mef = pairs["mef_mefb_dev_p8"]
    assert mef.task == "MEF" and mef.a.shape == (40, 50, 3) and "dev split" in mef.description


def test_downscales_large_pairs_with_a_note(fake_root):
    p = load_dev_pair("ivf_vifb_2", fake_root, max_pixels=150)
    assert p.a.shape[0] * p.a.shape[1] <= 150 and p.a.shape[:2] == p.b.shape[:2]
    assert "downscaled" in p.description
    with pytest.raises(ConfigError, match="available"):
        load_dev_pair("nope", fake_root)


def test_real_dev_pairs(data_dir):
    names = list_dev_pairs(data_dir)
    if not names:
        pytest.skip(f"none of the dev-pair folders is under {data_dir}")
    for name in names:
        spec = DEV_PAIRS[name]
        p = load_dev_pair(name, data_dir)
        assert p.ground_truth is None and p.task == spec.task
        assert p.a.shape[:2] == p.b.shape[:2] and p.a.shape[0] * p.a.shape[1] <= devpairs.MAX_PIXELS
        stem = p.name[len(name) + 1:]
        if spec.split == "dev":  # really a held-out pair: index % 8 == 0 among all pairs sorted by name
            every = PairFolderDataset(data_dir / spec.folder, spec.sub_a, spec.sub_b, spec.task, crop=None, split="all")
            index = [pa.stem for pa, _ in every.pairs].index(stem)
            assert index % DEV_EVERY == 0
