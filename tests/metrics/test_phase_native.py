"""The C++ per-pixel pass of phase congruency (``phase_native``) against the PyTorch path."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from unifuse.metrics.functional import phase as P
from unifuse.metrics.functional import phase_native as N

pytestmark = pytest.mark.skipif(not N.available(), reason=f"phase-congruency kernel unavailable: {__import__('unifuse').native.status()}")


def _both(x, cfg=P.PhaseCongruencyConfig()):
    got = P.phase_congruency(x, cfg)
    with N.disabled():
        ref = P.phase_congruency(x, cfg)
    return got, ref


@pytest.mark.parametrize("shape", [(2, 37, 52), (1, 30, 41)])  # even and odd pixel counts (median)
def test_kernel_equals_pytorch_path(shape):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randint(0, 256, shape, generator=g).double()
    got, ref = _both(x)
    for u, v in zip(got, ref):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-13)
    assert not torch.equal(got.pc[0], torch.zeros_like(got.pc[0]))


@pytest.mark.parametrize("nscale", [3, 5])  # the kernel's generic (not unrolled) scale loop
def test_other_scale_counts(nscale):
    g = torch.Generator().manual_seed(nscale)
    x = torch.randint(0, 256, (1, 33, 40), generator=g).double()
    got, ref = _both(x, dataclasses.replace(P.PhaseCongruencyConfig(), nscale=nscale))
    for u, v in zip(got, ref):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 1001])
def test_median_is_matlab_median_of_squares(n):
    g = torch.Generator().manual_seed(n)
    e, o = torch.randn(2, 1, n, generator=g, dtype=torch.float64)
    sq = torch.sqrt(e * e + o * o)[0] ** 2
    s = sq.sort().values
    want = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2  # MATLAB median
    complex_eo = torch.complex(e, o).reshape(1, 1, 1, n)  # (N, S, H, W), interleaved
    planar_eo = torch.stack([e, o], dim=1).reshape(1, 2, 1, n)  # (N, 2S, H, W)
    assert N.median_squared_amplitude(complex_eo, 1).item() == want.item()
    assert N.median_squared_amplitude(planar_eo, 1).item() == want.item()


def test_planar_and_complex_layouts_agree():
    g = torch.Generator().manual_seed(11)
    n, s, H, W = 2, 4, 9, 13
    eo = torch.randn(n, s, H, W, 2, generator=g, dtype=torch.float64)
    cplx = torch.view_as_complex(eo)
    planar = torch.cat([eo[..., 0], eo[..., 1]], dim=1).contiguous()  # even scales, then odd
    out = []
    for layout in (cplx, planar):
        sums = [torch.zeros(n, H, W, dtype=torch.float64) for _ in range(5)]
        N.accumulate_orientation(layout, [0.3, 0.1], s, 1e-4, 0.5, 10.0, (0.75, 0.25, 0.43), sums)
        out.append(sums)
    for u, v in zip(*out):
        assert torch.equal(u, v) and u.abs().sum() > 0
    with pytest.raises(ValueError, match="contiguous"):
        N.accumulate_orientation(cplx.transpose(-1, -2), [0.3, 0.1], s, 1e-4, 0.5, 10.0, (0.75, 0.25, 0.43), out[0])


def test_switches_choose_the_path(monkeypatch):
    from unifuse.backend import accelerator_paths

    x = torch.randint(0, 256, (1, 24, 28), generator=torch.Generator().manual_seed(3)).double()
    calls = []
    real = N.accumulate_orientation
    monkeypatch.setattr(N, "accumulate_orientation", lambda *a, **k: calls.append(1) or real(*a, **k))
    P.phase_congruency(x)
    assert len(calls) == P.PhaseCongruencyConfig().norient  # one call per orientation
    calls.clear()
    with N.disabled():
        P.phase_congruency(x)
    with accelerator_paths():  # the CUDA branches on CPU tensors: PyTorch only
        P.phase_congruency(x)
    assert calls == []


def test_kernel_path_does_not_build_the_half_spectrum_filters():
    # the half-spectrum even / odd filters serve the PyTorch path only (as large as the bank)
    x = torch.randint(0, 256, (1, 29, 43), generator=torch.Generator().manual_seed(3)).double()
    P._half_filters.cache_clear()
    P.phase_congruency(x)
    assert P._half_filters.cache_info().currsize == 0
    with N.disabled():
        P.phase_congruency(x)
    assert P._half_filters.cache_info().currsize == 1
