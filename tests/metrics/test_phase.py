"""Phase congruency (myphasecong3) and Qp (Zhao et al., MEFB Qp)."""

from __future__ import annotations


import pytest
import torch

from unifuse import metrics as M
from unifuse.metrics.functional.phase import PhaseCongruencyConfig, _filter_bank, phase_congruency, qp
from _metric_refs import load_triple, read_rows, rel


@pytest.mark.parametrize("shape", [(24, 32), (25, 31)])
def test_noise_constants_equal_direct_ifft_definition(shape):
    # the reference sums real(ifft2(filter)) * sqrt(rows*cols) products over pixels; the
    # filter bank computes them in the frequency domain (Parseval)
    cfg = PhaseCongruencyConfig()
    bank = _filter_bank(*shape, cfg, "cpu")
    rows, cols = shape
    spatial = torch.fft.ifft2(bank.filters).real * (rows * cols) ** 0.5  # (O, S, r, c)
    an2 = (spatial**2).sum(dim=(1, 2, 3))
    aiaj = torch.zeros(cfg.norient, dtype=torch.float64)
    for i in range(cfg.nscale):
        for j in range(i + 1, cfg.nscale):
            aiaj += (spatial[:, i] * spatial[:, j]).sum(dim=(-2, -1))
    torch.testing.assert_close(bank.sum_an2, an2, rtol=1e-12, atol=0)
    torch.testing.assert_close(bank.sum_aiaj, aiaj, rtol=1e-12, atol=0)
    torch.testing.assert_close(bank.em_n, (bank.filters[:, 0] ** 2).sum(dim=(-2, -1)), rtol=1e-14, atol=0)
    assert (bank.filters[:, :, 0, 0] == 0).all()  # no DC response


def test_log_gabor_peak_at_centre_frequency():
    # along the 0-degree axis the angular spread is 1, so the filter is logGabor * lowpass,
    # which peaks (value ~1) at the centre frequency 1/wavelength of each scale
    cols = 240
    bank = _filter_bank(8, cols, PhaseCongruencyConfig(), "cpu")
    row0 = bank.filters[0, :, 0, : cols // 2]  # frequencies k/cols, k = 0..cols/2-1
    for s, wl in enumerate([3.0, 6.3, 13.23, 27.783]):
        k = int(torch.argmax(row0[s]))
        assert abs(k / cols - 1 / wl) <= 1.0 / cols
        assert row0[s, k].item() == pytest.approx(1.0, abs=2e-2)


def test_step_edge_has_high_congruency():
    x = torch.zeros(1, 64, 64, dtype=torch.float64)
    x[..., :, 32:] = 200.0
    pc = phase_congruency(x)
    assert pc.pc.shape == (1, 64, 64)
    assert ((pc.pc >= 0) & (pc.pc <= 1)).all() and (pc.m <= pc.M + 1e-12).all()
    edge = pc.pc[0, 16:48, 31:33].mean()
    flat = pc.pc[0, 16:48, 8:20].mean()
    assert edge > 0.5 and flat < 0.05


def test_qp_batched_and_symmetric():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (2, 40, 44), generator=g).double()
    b = torch.randint(0, 256, (2, 40, 44), generator=g).double()
    f = ((a + b) / 2).round()
    q = qp(a, b, f)
    assert q.shape == (2,) and torch.isfinite(q).all()
    torch.testing.assert_close(q[1:], qp(a[1:], b[1:], f[1:]), rtol=1e-12, atol=0)
    # the max-feature image picks source 1 only on strict >, so exact ties make it asymmetric;
    # with random images there are none
    torch.testing.assert_close(q, qp(b, a, f), rtol=1e-12, atol=0)
    assert M.create("qp").wrapper == "mefb"


@pytest.fixture(scope="module")
def mefb_rows(reference_dir):
    return read_rows(reference_dir / "mefb_metrics_dev.csv")


@pytest.fixture(params=["kernel", "pytorch"])
def pc_path(request):
    """Phase congruency's per-pixel pass: the C++ kernel (when it builds here) or PyTorch."""
    from unifuse.metrics.functional import phase_native

    if request.param == "pytorch":
        with phase_native.disabled():
            yield request.param
        return
    if not phase_native.available():
        pytest.skip("phase-congruency kernel unavailable here")
    yield request.param


def test_mefb_reference_crops(mefb_rows, data_dir, pc_path):
    rows = [r for r in mefb_rows if r["dataset"] == "VIFB-crop"]
    m = M.create("qp")
    for r in rows:
        a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        v = float(m(a, b, f, mode="gray")[0])
        assert rel(v, float(r["mefb.Qp"])) < 1e-9, (r["image"], r["method"], v)


@pytest.mark.parametrize("mode", ["gray", pytest.param("native", marks=pytest.mark.slow)])
def test_mefb_reference_full_size(mefb_rows, data_dir, mode, pc_path):
    r = next(r for r in mefb_rows if r["dataset"] == "VIFB" and r["image"] == "fight" and r["mode"] == mode)
    a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
    v = float(M.create("qp")(a, b, f, mode=mode)[0])
    assert rel(v, float(r["mefb.Qp"])) < 1e-9


def test_chunked_batch_equals_whole(monkeypatch):
    import unifuse.metrics.functional.phase as P

    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (5, 24, 28), generator=g).double()
    whole = phase_congruency(x)
    monkeypatch.setattr(P, "MAX_CHUNK_ELEMENTS", 2 * 4 * 24 * 28)  # two images per chunk
    for u, v in zip(whole, phase_congruency(x)):
        assert torch.equal(u, v)


def test_duplicate_images_computed_once_same_result():
    g = torch.Generator().manual_seed(2)
    a = torch.randint(0, 256, (2, 24, 28), generator=g).double()
    x = torch.stack([a[0], a[1], a[0], a[0]])
    got = phase_congruency(x)
    single = phase_congruency(a[:1])
    for u, v in zip(got, single):
        assert torch.equal(u[0], v[0]) and torch.equal(u[2], v[0]) and torch.equal(u[3], v[0])
    assert not torch.equal(got.pc[1], got.pc[0])


def test_corr_features_pieces_equal_one_batch():
    # the CPU path (one feature map per piece) and the batched path of other devices agree
    from unifuse.metrics.functional.phase import _corr_features

    g = torch.Generator().manual_seed(4)
    n, H, W = 2, 20, 23
    maps = lambda: [torch.rand(n, H, W, generator=g, dtype=torch.float64) for _ in range(3)]  # noqa: E731
    srcs, fused = (maps(), maps(), maps()), maps()
    masks = tuple(torch.rand(n, H, W, generator=g) > 0.3 for _ in range(3))
    one = _corr_features(srcs, fused, masks, step=1)
    assert one.shape == (3 * n, H, W)
    assert torch.equal(one, _corr_features(srcs, fused, masks, step=3 * n))
    assert torch.equal(one, _corr_features(srcs, fused, masks, step=4))  # uneven pieces
