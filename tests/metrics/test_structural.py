"""SSIM (VIFB / CDDFuse), Qc, Qy and Qw: reference values and properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unifuse import metrics as M
from unifuse.metrics.functional import structural as S


from _metric_refs import load_triple, read_rows, rel


def _rand(n=2, h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w), generator=g).double()


def _smooth(n=2, h=40, w=48, seed=0):
    # smooth-ish images (no flat windows) for the SSIM-based metrics
    x = _rand(n, h, w, seed)
    return torch.nn.functional.avg_pool2d(x[:, None], 3, 1, 1, count_include_pad=False)[:, 0].round()


# --------------------------------------------------------------------------- properties
def test_ssim_vifb_identity_is_two_and_symmetric():
    x = _rand(seed=1)
    torch.testing.assert_close(S.ssim_vifb(x, x, x), torch.full((2,), 2.0, dtype=torch.float64), rtol=1e-13, atol=0)
    a, b, f = _rand(seed=2), _rand(seed=3), _rand(seed=4)
    torch.testing.assert_close(S.ssim_vifb(a, b, f), S.ssim_vifb(b, a, f), rtol=1e-13, atol=0)


def test_ssim_vifb_matches_hand_computed_single_window():
    # an 11x11 image has one 'valid' window: SSIM from the Gaussian-weighted moments directly
    x, y = _rand(1, 11, 11, seed=5), _rand(1, 11, 11, seed=6)
    g = torch.arange(11, dtype=torch.float64) - 5
    w = torch.exp(-(g[:, None] ** 2 + g[None] ** 2) / (2 * 1.5**2))
    w = w / w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cxy = (w * (x - mx) * (y - my)).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    torch.testing.assert_close(S.ssim_vifb(x, x, y)[0], 2 * s, rtol=1e-12, atol=0)


def test_ssim_cddfuse_matches_skimage():
    skm = pytest.importorskip("skimage.metrics")
    a, b, f = _rand(1, 30, 33, seed=7), _rand(1, 30, 33, seed=8), _rand(1, 30, 33, seed=9)
    an, bn, fn = (t[0].numpy().astype(np.float32) for t in (a, b, f))
    ref = skm.structural_similarity(fn, an, data_range=2) + skm.structural_similarity(fn, bn, data_range=2)
    assert rel(S.ssim_cddfuse(a, b, f).item(), ref) < 1e-6
    ref64 = skm.structural_similarity(fn.astype(np.float64), an.astype(np.float64), data_range=255) * 2
    assert rel(S.ssim_cddfuse(a, a, f, data_range=255, float32=False).item(), ref64) < 1e-12


def test_qc_qy_qw_identity():
    x = _smooth(seed=10)
    one = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(S.qw(x, x, x), one, rtol=1e-12, atol=0)
    torch.testing.assert_close(S.qy(x, x, x), one, rtol=1e-9, atol=0)
    torch.testing.assert_close(S.qc(x, x, x), one, rtol=1e-9, atol=0)


def test_qc_qy_flat_windows_stable_option():
    # two sources and F flat on the same region: the reference formula turns rounding noise
    # into arbitrary values; 'stable' keeps every pixel score in [0, 1]
    a, b = _smooth(1, 48, 48, seed=11), _smooth(1, 48, 48, seed=12)
    a[..., :20, :20] = 200.0
    b[..., :20, :20] = 37.0
    f = (a + b) / 2
    for fn in (S.qc, S.qy):
        v = fn(a, b, f, stable=True)
        assert torch.isfinite(v).all() and ((v >= 0) & (v <= 1)).all(), (fn.__name__, v)
    # without flat windows both conventions agree
    a2, b2 = _smooth(1, 32, 32, seed=13), _smooth(1, 32, 32, seed=14)
    f2 = (a2 + b2) / 2
    torch.testing.assert_close(S.qy(a2, b2, f2), S.qy(a2, b2, f2, stable=True), rtol=1e-12, atol=0)
    torch.testing.assert_close(S.qc(a2, b2, f2), S.qc(a2, b2, f2, stable=True), rtol=1e-12, atol=0)


def test_flat_window_mask_exact():
    x = torch.zeros(1, 10, 10, dtype=torch.float64)
    x[0, 9, 9] = 1.0
    m = S.flat_window_mask(x, 7)
    assert m.shape == (1, 4, 4) and m.sum() == 15 and not m[0, 3, 3]


def test_registry_entries():
    assert M.create("ssim").higher_is_better and M.create("qc").wrapper == "mefb"
    assert M.create("qy", convention="stable").options["convention"] == "stable"
    with pytest.raises(Exception):
        M.create("qc", convention="bogus")


# --------------------------------------------------------------------------- references
@pytest.fixture(scope="module")
def mefb_rows(reference_dir):
    return read_rows(reference_dir / "mefb_metrics_dev.csv")


def test_crops_all(mefb_rows, data_dir):
    # crops have no flat 7x7 window: Qc/Qy are reproducible there (spec section 4)
    rows = [r for r in mefb_rows if r["dataset"] == "VIFB-crop"]
    assert len(rows) == 12
    ms = {"vifb.Ssim": (M.create("ssim"), 1e-9), "mefb.Qw": (M.create("qw"), 1e-9),
          "mefb.Qc": (M.create("qc"), 1e-3), "mefb.Qy": (M.create("qy"), 1e-6)}
    for r in rows:
        a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        for col, (m, tol) in ms.items():
            v = float(m(a, b, f, mode="gray")[0])
            assert rel(v, float(r[col])) < tol, (r["image"], r["method"], col, v, r[col])


def test_full_size_gray_and_native(mefb_rows, data_dir):
    rows = [r for r in mefb_rows if r["dataset"] == "VIFB" and r["image"] == "carWhite" and r["method"] == "GFF"]
    for r in rows:
        a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        for col, name in (("vifb.Ssim", "ssim"), ("mefb.Qw", "qw")):
            v = float(M.create(name)(a, b, f, mode=r["mode"])[0])
            assert rel(v, float(r[col])) < 1e-9, (r["image"], r["method"], r["mode"], col, v, r[col])


def test_cddfuse_ssim(reference_dir, data_dir):
    rows = [r for r in read_rows(reference_dir / "cddfuse_evaluator_dev.csv") if r["gray"] == "png"]
    rows += [r for r in read_rows(reference_dir / "cddfuse_evaluator_dev.csv")
             if r["gray"] == "matlab" and r["image"] == "carWhite" and r["method"] == "GTF"]
    m = M.create("ssim", convention="cddfuse")
    for r in rows:
        a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        v = float(m(a, b, f, mode="gray")[0])
        assert rel(v, float(r["SSIM"])) < 1e-6, (r["image"], r["method"], v, r["SSIM"])


@pytest.mark.parametrize("subset", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_vifb_dev_native(reference_dir, data_dir, subset):
    # SwinFusion and YDTR are excluded: their fused files do not reproduce the published values
    # (every metric is off, even EN/SD: the authors scored other files)
    rows = [r for r in read_rows(reference_dir / "vifb_dev.csv")
            if r["has_fused_image"] == "1" and r["method"] not in ("SwinFusion", "YDTR")]
    if subset:
        rows = [r for r in rows if (r["image"], r["method"]) in (("carWhite", "CBF"), ("fight", "GFCE"))]
    m = M.create("ssim")
    for r in rows:
        ir, vi, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        v = float(m(vi, ir, f)[0])
        assert rel(v, float(r["Ssim"])) < 1e-4, (r["image"], r["method"], v, r["Ssim"])
