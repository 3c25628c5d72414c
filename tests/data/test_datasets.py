"""PairFolderDataset / SyntheticPairDataset / build_dataset on temporary folders (spec §9.2–§9.3)."""

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from unifuse.data.datasets import (
    FOLDER_PRESETS, PairFolderDataset, SyntheticPairDataset, build_dataset, build_task_datasets, canonical_task,
)
from unifuse.errors import ConfigError, ImageReadError, InputMismatchError


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _positional(h=16, w=15):
    """uint8 image whose value encodes the pixel position uniquely: v = r·w + c (< 256)."""
    return (np.arange(h)[:, None] * w + np.arange(w)[None, :]).astype(np.uint8)


@pytest.fixture
def pair_root(tmp_path):
    a = _positional()
    for stem, ext_a, ext_b in [("x1", ".png", ".png"), ("x2", ".png", ".bmp"), ("x3", ".bmp", ".png")]:
        _save(tmp_path / "vi" / f"{stem}{ext_a}", a)
        _save(tmp_path / "ir" / f"{stem}{ext_b}", 255 - a)
    _save(tmp_path / "ir" / "extra.png", a)  # partner-less B files are ignored
    (tmp_path / "vi" / "notes.txt").write_text("not an image")
    return tmp_path


def test_pairs_matched_by_stem_and_sorted(pair_root):
    ds = PairFolderDataset(pair_root, "vi", "ir", "IVIF", crop=None)
    assert len(ds) == 3 and ds.task == "IVF"
    assert [(a.name, b.name) for a, b in ds.pairs] == [("x1.png", "x1.png"), ("x2.png", "x2.bmp"), ("x3.bmp", "x3.png")]
    s = ds[1]
    assert s["name"] == "x2" and s["task"] == "IVF"
    assert s["A"].shape == (1, 16, 15) and s["A"].dtype == torch.float32
    assert torch.equal(s["A"], torch.from_numpy(_positional()).float().div(255)[None])
    assert torch.allclose(s["A"] + s["B"], torch.ones_like(s["A"]))


def test_crop_is_pure_and_aligned(pair_root):
    ds = PairFolderDataset(pair_root, "vi", "ir", "IVF", crop=8, cache=True)
    full = _positional()
    seen = set()
    for seed in range(1500):
        s = ds.get(0, seed)
        assert s["A"].shape == (1, 8, 8)
        v = (s["A"] * 255).round().to(torch.int64)[0]
        top, left = divmod(int(v[0, 0]), 15)
        seen.add((top, left))
        assert np.array_equal(v.numpy(), full[top:top + 8, left:left + 8])  # a true window
        assert torch.allclose(s["A"] + s["B"], torch.ones_like(s["A"]))  # same window in B
    # offsets uniform over all (16-8+1)·(15-8+1) = 72 valid positions: all reached
    assert len(seen) == 72
    assert torch.equal(ds.get(2, 123)["A"], ds.get(2, 123)["A"])
    assert torch.equal(ds[2]["A"], ds.get(2, 0)["A"])
    assert any(not torch.equal(ds.get(2, 123)["A"], ds.get(2, s)["A"]) for s in range(5))
    # the index also seeds the crop (x1 and x2 hold the same image, so only the offsets differ)
    assert any(not torch.equal(ds.get(1, s)["A"], ds.get(2, s)["A"]) for s in range(5))


def test_small_images_are_padded_or_refused(tmp_path):
    a = (np.arange(30).reshape(5, 6) * 8).astype(np.uint8)
    _save(tmp_path / "a" / "p.png", a)
    _save(tmp_path / "b" / "p.png", a)
    s = PairFolderDataset(tmp_path, "a", "b", "MEF", crop=8).get(0, 3)
    assert s["A"].shape == (1, 8, 8)
    assert np.array_equal((s["A"][0] * 255).round().numpy().astype(np.uint8), np.pad(a, ((0, 3), (0, 2)), mode="reflect"))
    with pytest.raises(InputMismatchError, match="smaller than"):
        PairFolderDataset(tmp_path, "a", "b", "MEF", crop=8, pad_mode="error").get(0)


def test_gray_is_pil_luma_and_rgb_option(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 10, 3), dtype=np.uint8)
    _save(tmp_path / "a" / "c.png", rgb)
    _save(tmp_path / "b" / "c.png", rgb)
    s = PairFolderDataset(tmp_path, "a", "b", "IVF", crop=None).get(0)
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    luma = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16  # ITU-R 601-2, PIL's integer rounding
    assert np.array_equal((s["A"][0] * 255).round().numpy().astype(np.int64), luma)
    c = PairFolderDataset(tmp_path, "a", "b", "IVF", crop=4, gray=False).get(0, 1)
    assert c["A"].shape == (3, 4, 4)


def test_mismatches_are_reported(tmp_path):
    a = _positional()
    for stem in ("k1", "k2", "k3"):
        _save(tmp_path / "a" / f"{stem}.png", a)
    _save(tmp_path / "b" / "k1.png", a)
    with pytest.raises(InputMismatchError, match=r"2 file\(s\) have no partner.*k2\.png, k3\.png"):
        PairFolderDataset(tmp_path, "a", "b", "MFF")
    _save(tmp_path / "b" / "k2.png", a)
    _save(tmp_path / "b" / "k2.jpg", a)
    _save(tmp_path / "b" / "k3.png", a[:10])
    with pytest.raises(InputMismatchError, match="k2.png -> k2.jpg/k2.png"):
        PairFolderDataset(tmp_path, "a", "b", "MFF")
    (tmp_path / "b" / "k2.jpg").unlink()
    ds = PairFolderDataset(tmp_path, "a", "b", "MFF")
    with pytest.raises(InputMismatchError, match="k3.png is 16x15 but its partner"):
        ds.get(2)
    with pytest.raises(ImageReadError, match="folder not found"):
        PairFolderDataset(tmp_path, "a", "nope", "MFF")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputMismatchError, match="no image files"):
        PairFolderDataset(tmp_path, "empty", "b", "MFF")
    (tmp_path / "a" / "k1.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match="k1.png: cannot read image"):
        PairFolderDataset(tmp_path, "a", "b", "MFF").get(0)


def test_realmff_partner_rule(tmp_path):
    a = _positional()
    for n in ("1", "2"):
        _save(tmp_path / "imageB" / f"{n}_B.png", a)
        _save(tmp_path / "imageA" / f"{n}_A.png", 255 - a)
    ds = build_dataset({"type": "realmff", "root": str(tmp_path), "crop": 8})
    assert ds.task == "MFF" and [(p.name, q.name) for p, q in ds.pairs] == [("1_B.png", "1_A.png"), ("2_B.png", "2_A.png")]
    custom = PairFolderDataset(tmp_path, "imageB", "imageA", "MFF", partner=lambda s: s.replace("_B", "_A"))
    assert len(custom) == 2
    with pytest.raises(ConfigError):
        PairFolderDataset(tmp_path, "imageB", "imageA", "MFF", partner="nope")


def test_build_dataset_config(pair_root):
    ds = build_dataset({"type": "folder", "root": str(pair_root), "sub_a": "vi", "sub_b": "ir", "task": "ivf", "crop": 4})
    assert isinstance(ds, PairFolderDataset) and ds.crop == 4 and ds.task == "IVF"
    assert FOLDER_PRESETS["llvip"].sub_a == "visible/train" and FOLDER_PRESETS["scie"].sub_b == "ue"
    with pytest.raises(ConfigError, match="unknown key"):
        build_dataset({"type": "folder", "root": str(pair_root), "sub_a": "vi", "sub_b": "ir", "task": "IVF", "crops": 4})
    with pytest.raises(ConfigError, match="missing key"):
        build_dataset({"type": "folder", "root": str(pair_root), "task": "IVF"})
    with pytest.raises(ConfigError, match="unknown dataset type"):
        build_dataset({"type": "lmdb"})
    with pytest.raises(ConfigError, match="preset"):
        build_dataset({"root": str(pair_root), "preset": "nope"})
    out = build_task_datasets({"IVIF": [{"type": "tno", "root": str(pair_root), "sub_a": "vi", "sub_b": "ir"}]})
    assert list(out) == ["IVF"] and len(out["IVF"][0]) == 3
    with pytest.raises(ConfigError, match="declares task"):
        build_task_datasets({"MEF": {"type": "tno", "root": str(pair_root), "task": "IVF"}})
    assert canonical_task("meif") == "MEF"


def test_presets_on_shared_benchmarks(data_dir):
    tno = build_dataset({"type": "tno", "root": str(data_dir / "ivf" / "tno")})
    mef = build_dataset({"type": "mefb_train", "root": str(data_dir / "mef" / "mefb_train")})
    mff = build_dataset({"type": "mfifb_train", "root": str(data_dir / "mff" / "mfifb_train")})
    assert (len(tno), len(mef), len(mff)) == (25, 40, 72)
    assert (tno.task, mef.task, mff.task) == ("IVF", "MEF", "MFF")
    s = mef.get(5, 1)
    assert s["A"].shape == s["B"].shape == (1, 64, 64)
    assert 0 <= s["A"].min() and s["A"].max() <= 1


@pytest.fixture
def fake_synthetic(monkeypatch):
    """Stand-in for unifuse.data.synthetic with the documented signature, to test the wiring only."""
    mod = types.ModuleType("unifuse.data.synthetic")

    def make_mff_pair(img, rng):
        k = rng.random()
        return img * k, img * (1 - k), img

    mod.make_mff_pair = make_mff_pair
    mod.make_mef_pair = lambda img, rng: (img ** 2, np.sqrt(img), img)
    import unifuse.data as pkg

    monkeypatch.setitem(sys.modules, "unifuse.data.synthetic", mod)
    monkeypatch.setattr(pkg, "synthetic", mod, raising=False)
    return mod


def test_synthetic_wiring(fake_synthetic, tmp_path):
    imgs = [_positional(), (255 - _positional())]
    ds = SyntheticPairDataset(imgs, task="MFF", crop=8, length=10)
    assert len(ds) == 10
    s = ds.get(3, 5)
    assert s["A"].shape == s["B"].shape == s["GT"].shape == (1, 8, 8) and s["task"] == "MFF"
    assert torch.allclose(s["A"] + s["B"], s["GT"], atol=1e-6)
    assert torch.equal(ds.get(3, 5)["A"], s["A"])  # pure in (index, seed)
    v = (ds.get(2, 5)["GT"][0] * 255).round().numpy().astype(np.uint8)
    top, left = divmod(int(v[0, 0]), 15)
    assert np.array_equal(v, _positional()[top:top + 8, left:left + 8])  # index 2 -> image 0, a true crop
    _save(tmp_path / "imgs" / "q.png", _positional())
    mef = build_dataset({"type": "synthetic", "task": "MEF", "folder": str(tmp_path / "imgs"), "crop": 8, "length": 4})
    g = mef.get(0, 0)
    assert torch.allclose(g["A"], g["GT"] ** 2, atol=1e-6) and g["name"] == "q_0"
    with pytest.raises(ConfigError, match="no synthetic pair generator"):
        SyntheticPairDataset(imgs, task="IVF")


def test_synthetic_with_builtin_samples():
    pytest.importorskip("unifuse.data.synthetic")
    mff = SyntheticPairDataset(task="MFF", crop=32, length=8)  # default source: unifuse.data.samples
    assert len(mff) == 8 and len(mff.images) >= 1
    s = mff.get(3, 11)
    assert s["A"].shape == s["B"].shape == s["GT"].shape == (1, 32, 32)
    assert all(0 <= s[k].min() and s[k].max() <= 1 for k in ("A", "B", "GT"))
    assert torch.equal(mff.get(3, 11)["A"], s["A"]) and torch.equal(mff.get(3, 11)["B"], s["B"])
    # defocus only blurs: both sources are no sharper than the ground truth on average
    from unifuse.losses.gradient import sobel_magnitude

    g = [sobel_magnitude(s[k][None]).mean().item() for k in ("A", "B", "GT")]
    assert g[0] <= g[2] + 1e-6 and g[1] <= g[2] + 1e-6
    mef = build_dataset({"type": "synthetic", "task": "MEF", "crop": 32, "length": 4})
    e = mef.get(0, 5)
    assert e["A"].mean() > e["B"].mean()  # A over-exposed, B under-exposed


def test_train_dev_split_is_a_deterministic_partition(tmp_path):
    a = _positional()
    stems = [f"p{i:02d}" for i in range(11)]
    for s in reversed(stems):  # creation order must not matter: pairs are sorted by name
        _save(tmp_path / "vi" / f"{s}.png", a)
        _save(tmp_path / "ir" / f"{s}.png", a)
    names = lambda ds: [p[0].stem for p in ds.pairs]  # noqa: E731
    full = PairFolderDataset(tmp_path, "vi", "ir", "IVF", crop=None)
    dev = PairFolderDataset(tmp_path, "vi", "ir", "IVF", crop=None, split="dev", dev_every=4)
    train = build_dataset({"type": "folder", "root": str(tmp_path), "sub_a": "vi", "sub_b": "ir", "task": "IVF",
                           "split": "train", "dev_every": 4})
    assert names(full) == stems
    assert names(dev) == ["p00", "p04", "p08"]
    assert set(names(dev)).isdisjoint(names(train)) and sorted(names(dev) + names(train)) == stems
    assert len(PairFolderDataset(tmp_path, "vi", "ir", "IVF", split="dev")) == 2  # default: every 8th
    with pytest.raises(ConfigError, match="split"):
        PairFolderDataset(tmp_path, "vi", "ir", "IVF", split="test")
    with pytest.raises(ConfigError, match="dev_every"):
        PairFolderDataset(tmp_path, "vi", "ir", "IVF", split="dev", dev_every=1)


def test_shared_dev_splits_are_held_out(data_dir):
    for preset, root, n in [("tno", "ivf/tno", 25), ("mefb_train", "mef/mefb_train", 40), ("mfifb_train", "mff/mfifb_train", 72)]:
        kw = {"type": preset, "root": str(data_dir / root)}
        dev, train = build_dataset({**kw, "split": "dev"}), build_dataset({**kw, "split": "train"})
        assert len(dev) == -(-n // 8) and len(dev) + len(train) == n
        assert {p[0] for p in dev.pairs}.isdisjoint(p[0] for p in train.pairs)
