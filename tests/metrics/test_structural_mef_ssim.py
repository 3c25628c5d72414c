"""MEF-SSIM (Ma et al., MEFB MEF_SSIM): reference values, a brute-force per-patch check of
the vectorised single-scale computation, and properties."""

from __future__ import annotations

import math

import pytest
import torch

from unifuse import metrics as M
from unifuse.metrics.functional.mef_ssim import MEF_SSIM_WEIGHTS, mef_ssim, mef_ssim_level


from _metric_refs import load_triple, read_rows, rel

EPS = 2.220446049250313e-16


def _smooth(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, h, w), generator=g).double()
    return torch.nn.functional.avg_pool2d(x[:, None], 3, 1, 1, count_include_pad=False)[:, 0].round()


def _patch_loop(x1, x2, f, k=0.03):
    """Direct transcription of the per-patch definition (spec 2.3) for a small image."""
    win = 11
    g = torch.arange(win, dtype=torch.float64) - 5
    gw = torch.exp(-(g[:, None] ** 2 + g[None] ** 2) / (2 * 1.5**2))
    gw = (gw / gw.sum()).reshape(-1)
    c = (k * 255) ** 2
    H, W = x1.shape
    q = []
    for i in range(H - win + 1):
        for j in range(W - win + 1):
            ps = [t[i : i + win, j : j + win].reshape(-1) for t in (x1, x2)]
            pf = f[i : i + win, j : j + win].reshape(-1)
            mu = [p.mean() for p in ps]
            ed = [torch.sqrt(torch.clamp_min(((p - m) ** 2).sum(), 0)) + 0.001 for p, m in zip(ps, mu)]
            den = sum(torch.linalg.norm(p - m) for p, m in zip(ps, mu))
            s = ps[0] + ps[1]
            r = (torch.linalg.norm(s - s.mean()) + EPS) / (den + EPS)
            r = min(max(r.item(), EPS), 1 - EPS) if r > 1 or r < 0 else r.item()
            p = min(math.tan(math.pi / 2 * r), 10.0)
            w = [(e / win) ** p + EPS for e in ed]
            w = [x / sum(w) for x in w]
            rb = sum(wk * (pk - mk) / ek for wk, pk, mk, ek in zip(w, ps, mu, ed))
            nrm = torch.linalg.norm(rb)
            if nrm > 0:
                rb = rb / nrm * max(ed)
            m1, m2 = (gw * rb).sum(), (gw * pf).sum()
            s1, s2 = (gw * (rb - m1) ** 2).sum(), (gw * (pf - m2) ** 2).sum()
            s12 = (gw * (rb - m1) * (pf - m2)).sum()
            q.append((2 * s12 + c) / (s1 + s2 + c))
    return torch.stack(q).mean()


def test_single_scale_matches_patch_loop():
    x1, x2, f = _smooth(1, 16, 17, 1), _smooth(1, 16, 17, 2), _smooth(1, 16, 17, 3)
    x1[0, :12, :12] = 250.0  # a flat, saturated corner: exercises the flat-patch handling
    got = mef_ssim_level(x1, x2, f)[0]
    ref = _patch_loop(x1[0], x2[0], f[0])
    assert rel(got.item(), ref.item()) < 1e-10


def test_multiscale_combination_and_properties():
    a, b = _smooth(2, 48, 50, 4), _smooth(2, 48, 50, 5)
    f = ((a + b) / 2).round()
    q = mef_ssim(a, b, f)
    assert q.shape == (2,) and ((q > 0) & (q <= 1)).all()
    torch.testing.assert_close(mef_ssim(a, b, f), mef_ssim(b, a, f), rtol=1e-12, atol=0)
    # identical exposures and fused image: every patch score is ~1
    assert (mef_ssim(a, a, a) > 1 - 1e-4).all()
    assert sum(MEF_SSIM_WEIGHTS) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mef_ssim(a[..., :40, :40], b[..., :40, :40], f[..., :40, :40])


def test_registry_converts_rgb_to_gray():
    m = M.create("mef_ssim")
    assert m.wrapper == "gray"
    a, b = _smooth(1, 48, 48, 6), _smooth(1, 48, 48, 7)
    rgb = lambda t: t[:, None].expand(1, 3, 48, 48)  # noqa: E731  (gray RGB: rgb2gray is the identity)
    torch.testing.assert_close(m(rgb(a), rgb(b), rgb(a)), m(a, b, a), rtol=1e-12, atol=0)


@pytest.fixture(scope="module")
def mefb_rows(reference_dir):
    return read_rows(reference_dir / "mefb_metrics_dev.csv")


def test_mefb_reference(mefb_rows, data_dir):
    rows = [r for r in mefb_rows if r["dataset"] == "VIFB-crop"]
    rows += [r for r in mefb_rows if r["dataset"] == "VIFB" and r["image"] == "fight" and r["method"] == "GFF"]
    m = M.create("mef_ssim")
    for r in rows:
        a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        v = float(m(a, b, f, mode=r["mode"])[0])
        assert rel(v, float(r["mefb.MEF_SSIM"])) < 1e-9, (r["image"], r["method"], r["mode"], v)
