"""Qabf (Xydeas-Petrovic): reference values and hand-derived properties."""

from __future__ import annotations

import math

import pytest
import torch

from unifuse import metrics as M
from unifuse.metrics.functional.qabf import qabf, sobel_strength_orientation


from _metric_refs import load_triple, read_rows, rel


def _rand(n=2, h=40, w=52, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w), generator=g).double()


# --------------------------------------------------------------------------- properties
def test_identical_images_hand_value():
    # gA == gF everywhere: G = gF (x255 -> Q_g saturates at 0.9994 where g > 0), A = 1;
    # pixels with g = 0 carry no weight. So Qabf = 0.9994 * 0.9879 / (1 + exp(-22 * 0.2)).
    x = _rand()
    expected = 0.9994 * 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))
    out = qabf(x, x, x)
    assert out.shape == (2,) and out.dtype == torch.float64
    torch.testing.assert_close(out, torch.full((2,), expected, dtype=torch.float64), rtol=1e-12, atol=0)


def test_symmetric_bounded_and_batched():
    a, b, f = _rand(seed=1), _rand(seed=2), _rand(seed=3)
    q_ab, q_ba = qabf(a, b, f), qabf(b, a, f)
    torch.testing.assert_close(q_ab, q_ba, rtol=1e-12, atol=0)
    assert ((q_ab >= 0) & (q_ab <= 1)).all()
    single = torch.stack([qabf(a[i : i + 1], b[i : i + 1], f[i : i + 1])[0] for i in range(2)])
    torch.testing.assert_close(q_ab, single, rtol=1e-13, atol=0)


def test_black_fused_image_bounded_by_strength_term():
    # gF = 0 everywhere (a zero image also has no zero-padding border edges), so G = 0 where
    # a source has an edge and Q <= Q_g(0) = 0.9994 / (1 + exp(7.5))
    a, b = _rand(seed=4), _rand(seed=5)
    q = qabf(a, b, torch.zeros_like(a))
    assert (q > 0).all() and (q <= 0.9994 / (1 + math.exp(7.5))).all()


def test_orientation_uses_atan_and_vertical_edge():
    # vertical step edge: Sy = 0 inside, Sx > 0 -> alpha = 0; a horizontal edge gives Sx == 0 -> pi/2
    x = torch.zeros(1, 8, 8, dtype=torch.float64)
    x[..., 4:] = 10.0
    g, al = sobel_strength_orientation(x)
    assert g[0, 4, 3].item() == pytest.approx(40.0) and al[0, 4, 3].item() == 0.0
    _, al_t = sobel_strength_orientation(x.transpose(-1, -2))
    assert al_t[0, 3, 4].item() == pytest.approx(math.pi / 2)


def test_registry_entry():
    m = M.create("qabf")
    assert m.higher_is_better is True and m.wrapper == "vifb"
    assert M.create("qabf", convention="mefb").wrapper == "mefb"


# --------------------------------------------------------------------------- references
@pytest.fixture(scope="module")
def mefb_rows(reference_dir):
    return read_rows(reference_dir / "mefb_metrics_dev.csv")


def test_mefb_reference_crops_and_gray(mefb_rows, data_dir):
    rows = [r for r in mefb_rows if r["dataset"] == "VIFB-crop"] + [
        r for r in mefb_rows if r["dataset"] == "VIFB" and r["mode"] == "gray" and r["method"] == "GTF"
    ][:2]
    for r in rows:
        a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        v = float(M.create("qabf", convention="mefb")(a, b, f, mode="gray")[0])
        for col in ("mefb.Qabf", "vifb.Qabf"):
            assert rel(v, float(r[col])) < 1e-9, (r["image"], r["method"], col, v, r[col])


def test_mefb_reference_native(mefb_rows, data_dir):
    r = next(r for r in mefb_rows if r["mode"] == "native" and r["image"] == "fight")
    a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
    v = float(M.create("qabf", convention="mefb")(a, b, f, mode="native")[0])
    assert rel(v, float(r["mefb.Qabf"])) < 1e-9


def _vifb_rows(reference_dir, data_dir, subset):
    # SwinFusion and YDTR are excluded: their fused files do not reproduce the published values
    # (every metric is off, even EN/SD: the authors scored other files)
    rows = [r for r in read_rows(reference_dir / "vifb_dev.csv")
            if r["has_fused_image"] == "1" and r["method"] not in ("SwinFusion", "YDTR")]
    if subset:
        rows = [r for r in rows if (r["image"], r["method"]) in (("carWhite", "ADF"), ("fight", "U2Fusion"))]
    return rows


@pytest.mark.parametrize("subset", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_vifb_dev_native(reference_dir, data_dir, subset):
    # VIFB calls metricsQabf(VI, IR, F); values have 5 significant digits
    for r in _vifb_rows(reference_dir, data_dir, subset):
        ir, vi, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        v = float(M.create("qabf")(vi, ir, f)[0])
        assert rel(v, float(r["Qabf"])) < 1e-4, (r["image"], r["method"], v, r["Qabf"])
