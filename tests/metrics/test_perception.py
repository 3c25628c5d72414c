"""Qcb (Chen-Blum) and Qcv (Chen-Varshney): reference values and properties."""

from __future__ import annotations


import pytest
import torch

from unifuse import metrics as M
from unifuse.metrics.functional import perception as P
from unifuse.metrics.functional.matlab import freqspace
from _metric_refs import load_triple, read_rows, rel


def _rand(n=2, h=40, w=46, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w), generator=g).double()


# --------------------------------------------------------------------------- properties
@pytest.mark.parametrize("shape", [(16, 20), (15, 21)])
def test_csf_filter_equals_full_complex_fft(shape):
    # the rfft path must equal MATLAB's real(ifft2(ifftshift(fftshift(fft2(I)) .* S)))
    x = _rand(2, *shape, seed=1)
    for s in (P.chen_blum_csf(*shape), P.mannos_sakrison_csf(*shape)):
        full = torch.fft.ifft2(torch.fft.ifftshift(torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1)) * s, dim=(-2, -1)))
        assert full.imag.abs().max() < 1e-9
        torch.testing.assert_close(P.csf_filter(x, s), full.real, rtol=0, atol=1e-10)


def test_csf_values_at_hand_points():
    # DC of the Chen-Blum DoG: 1 - 0.7622; Mannos-Sakrison at r = 0: 2.6 * 0.0192
    M_, N_ = 30, 40
    cb = P.chen_blum_csf(M_, N_)
    ms = P.mannos_sakrison_csf(M_, N_)
    assert cb[M_ // 2, N_ // 2].item() == pytest.approx(1 - 0.7622, rel=1e-15)
    assert ms[M_ // 2, N_ // 2].item() == pytest.approx(2.6 * 0.0192, rel=1e-15)
    f1, f2 = freqspace(M_, N_)
    r = ((N_ / 30 * f1[0, 0]) ** 2 + (M_ / 30 * f2[0, 0]) ** 2).sqrt()
    expected = torch.exp(-((r / 15.3870) ** 2)) - 0.7622 * torch.exp(-((r / 1.3456) ** 2))
    assert cb[0, 0].item() == pytest.approx(expected.item(), rel=1e-14)


def test_identity_values():
    x = _rand(seed=2)
    # Q_XF = 1 everywhere and the saliency weights sum to 1; differences are 0
    torch.testing.assert_close(P.qcb(x, x, x), torch.ones(2, dtype=torch.float64), rtol=1e-12, atol=0)
    assert (P.qcv(x, x, x) == 0).all()


def test_symmetry_and_ranges():
    a, b, f = _rand(seed=3), _rand(seed=4), _rand(seed=5)
    torch.testing.assert_close(P.qcb(a, b, f), P.qcb(b, a, f), rtol=1e-12, atol=0)
    torch.testing.assert_close(P.qcv(a, b, f), P.qcv(b, a, f), rtol=1e-12, atol=0)
    q = P.qcb(a, b, f)
    assert ((q > 0) & (q < 1)).all() and (P.qcv(a, b, f) > 0).all()


def test_registry_conventions():
    assert M.create("qcb").wrapper == "vifb" and M.create("qcb", convention="mefb").wrapper == "mefb"
    assert M.create("qcv").higher_is_better is False
    with pytest.raises(ValueError):
        P.qcb(_rand(), _rand(), _rand(), convention="nope")


# --------------------------------------------------------------------------- references
@pytest.fixture(scope="module")
def mefb_rows(reference_dir):
    return read_rows(reference_dir / "mefb_metrics_dev.csv")


def test_mefb_reference(mefb_rows, data_dir):
    # crops + one full-size gray and one native triple; 'mefb' and 'vifb' Qcb differ on crops
    rows = [r for r in mefb_rows if r["dataset"] == "VIFB-crop"]
    rows += [r for r in mefb_rows if r["dataset"] == "VIFB" and r["image"] == "carWhite" and r["method"] == "GFF"]
    cols = {
        "vifb.Qcb": M.create("qcb"), "mefb.Qcb": M.create("qcb", convention="mefb"),
        "vifb.Qcv": M.create("qcv"), "mefb.Qcv": M.create("qcv", convention="mefb"),
    }
    for r in rows:
        a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        for col, m in cols.items():
            v = float(m(a, b, f, mode=r["mode"])[0])
            assert rel(v, float(r[col])) < 1e-9, (r["image"], r["method"], r["mode"], col, v, r[col])


@pytest.mark.parametrize("subset", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_vifb_dev_native(reference_dir, data_dir, subset):
    # SwinFusion and YDTR are excluded: their fused files do not reproduce the published values
    # (every metric is off, even EN/SD: the authors scored other files)
    rows = [r for r in read_rows(reference_dir / "vifb_dev.csv")
            if r["has_fused_image"] == "1" and r["method"] not in ("SwinFusion", "YDTR")]
    if subset:
        rows = [r for r in rows if (r["image"], r["method"]) in (("carWhite", "LatLRR"), ("fight", "MSVD"))]
    qcb, qcv = M.create("qcb"), M.create("qcv")
    for r in rows:
        ir, vi, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        for col, m in (("Qcb", qcb), ("Qcv", qcv)):
            v = float(m(vi, ir, f)[0])
            assert rel(v, float(r[col])) < 1e-4, (r["image"], r["method"], col, v, r[col])
