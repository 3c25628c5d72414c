"""evaluate()/evaluate_batch(), input conversion, wrappers and registry (self-contained)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from unifuse import metrics as M
from unifuse.errors import ConfigError, ImageReadError, InputMismatchError
from unifuse.metrics.functional import feature as ff
from unifuse.metrics.functional import information as fi

RNG = np.random.default_rng(1)


def _rgb(h=24, w=20):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_registry_lists_and_describes_metrics():
    names = M.list_metrics()
    for n in ("en", "ce", "mi", "nmi", "fmi", "te", "qncie", "psnr", "rmse", "sd", "sf", "ag", "ei",
              "mse", "cc", "scd", "viff"):
        assert n in names
        spec = M.metric_info(n)
        assert spec.description and spec.references and spec.higher_is_better in (True, False)
    assert M.metric_info("ce").higher_is_better is False
    assert "fmi_pixel" in names and "fmi_pixel" not in M.default_metrics()
    with pytest.raises(ConfigError):
        M.create("nope")
    with pytest.raises(ConfigError):
        M.create("psnr", convention="bogus")
    with pytest.raises(ConfigError):
        M.create("en", foo=1)


def test_input_types_agree(tmp_path):
    a, b, f = _rgb(), _rgb(), _rgb()
    paths = []
    for name, arr in zip("abf", (a, b, f)):
        p = tmp_path / f"{name}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    ms = ["en", "mi", "psnr", "sf", "fmi"]
    ref = M.evaluate(f, a, b, metrics=ms)
    assert M.evaluate(paths[2], paths[0], paths[1], metrics=ms) == ref
    assert M.evaluate(Image.fromarray(f), Image.fromarray(a), Image.fromarray(b), metrics=ms) == ref
    chw = lambda x: torch.from_numpy(x).permute(2, 0, 1)  # noqa: E731
    assert M.evaluate(chw(f), chw(a), chw(b), metrics=ms) == ref
    # float input in [0, 1] is scaled to 0..255 and quantised like a saved uint8 image
    assert M.evaluate(f / 255.0, a / 255.0, b / 255.0, metrics=ms) == pytest.approx(ref, rel=1e-12)


def test_errors_name_the_problem(tmp_path):
    a, b = _rgb(), _rgb()
    with pytest.raises(InputMismatchError, match="sizes differ"):
        M.evaluate(_rgb(10, 10), a, b, metrics=["en"])
    with pytest.raises(ImageReadError, match="missing.png"):
        M.evaluate(tmp_path / "missing.png", a, b)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="bad.png"):
        M.evaluate(bad, a, b)
    with pytest.raises(ConfigError):
        M.evaluate(a, a, b, metrics=["en"], mode="hsv")


def test_batch_equals_single():
    trip = [(_rgb(), _rgb(), _rgb()) for _ in range(3)]
    t = lambda i: torch.stack([torch.from_numpy(x[i]).permute(2, 0, 1).double() for x in trip])  # noqa: E731
    res = M.evaluate_batch(t(2), t(0), t(1), metrics=["en", "nmi", "fmi", "sf", "viff"])
    for k, (a, b, f) in enumerate(trip):
        single = M.evaluate(f, a, b, metrics=["en", "nmi", "fmi", "sf", "viff"])
        for name, v in single.items():
            assert res[name][k].item() == pytest.approx(v, rel=1e-12, abs=1e-15)


def test_native_wrappers():
    a, b, f = (torch.from_numpy(_rgb()).permute(2, 0, 1).double()[None] for _ in range(3))
    # per-channel mean (VIFB/MEFB)
    en = M.create("en")(a, b, f)
    chans = [fi.entropy(None, None, f[:, k]) for k in range(3)]
    assert en.item() == pytest.approx(sum(c.item() for c in chans) / 3)
    # VIFB SF: R|G|B side by side, including the two seams
    side = torch.cat([f[:, 0], f[:, 1], f[:, 2]], dim=-1)
    assert M.create("sf")(a, b, f).item() == pytest.approx(ff.spatial_frequency(None, None, side).item())
    mefb_sf = M.create("sf", convention="mefb")(a, b, f).item()
    assert mefb_sf == pytest.approx(sum(ff.spatial_frequency(None, None, f[:, k]).item() for k in range(3)) / 3)
    # gray source next to RGB fused = replicated source
    g = a[:, :1]
    assert M.create("psnr")(g, b, f).item() == pytest.approx(M.create("psnr")(g.expand(-1, 3, -1, -1), b, f).item())
    # MEFB wrapper: two gray sources and an RGB fused image -> the fused image's R channel
    assert M.create("nmi")(g, b[:, :1], f).item() == pytest.approx(fi.nmi(g[:, 0], b[:, 0], f[:, 0]).item())
    # gray mode = MATLAB rgb2gray first
    from unifuse.metrics.functional.matlab import rgb2gray_uint8

    assert M.create("mi")(a, b, f, mode="gray").item() == pytest.approx(
        fi.mutual_information(rgb2gray_uint8(a), rgb2gray_uint8(b), rgb2gray_uint8(f)).item())


def test_metric_options_give_distinct_keys():
    a, b, f = _rgb()[..., 0], _rgb()[..., 0], _rgb()[..., 0]
    res = M.evaluate(f, a, b, metrics=[M.create("psnr"), M.create("psnr", convention="standard")])
    assert set(res) == {"psnr", "psnr[convention=standard]"}
    mse = M.evaluate(f, a, b, metrics=["mse"])["mse"]
    assert res["psnr[convention=standard]"] == pytest.approx(10 * math.log10(255**2 / mse))
