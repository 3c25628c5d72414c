"""The C++ separable filter (``separable_native``) against the banded shifted sums."""

from __future__ import annotations

import pytest
import torch

from unifuse.metrics.functional import matlab as Mt
from unifuse.metrics.functional import separable_native as S

pytestmark = pytest.mark.skipif(not S.available(), reason=f"separable kernel unavailable: {__import__('unifuse').native.status()}")


def _both(x, hc, hr):
    got = Mt.separable_valid(x, hc, hr)
    with S.disabled():
        ref = Mt.separable_valid(x, hc, hr)
    return got, ref


@pytest.mark.parametrize("shape,kh,kw", [((3, 50, 61), 11, 11), ((2, 4, 40, 33), 7, 3), ((1, 31, 31), 31, 31),
                                         ((5, 9, 12), 1, 5), ((2, 12, 9), 5, 1), ((1, 8, 8), 8, 8)])
def test_equals_shifted_sums(shape, kh, kw):
    g = torch.Generator().manual_seed(kh * 100 + kw)
    x = torch.rand(shape, dtype=torch.float64, generator=g) * 255
    hc = torch.rand(kh, dtype=torch.float64, generator=g)
    hr = torch.rand(kw, dtype=torch.float64, generator=g) - 0.5
    got, ref = _both(x, hc, hr)
    assert got.shape == (*shape[:-2], shape[-2] - kh + 1, shape[-1] - kw + 1)
    # same operations in the same order as PyTorch's vectorised passes: equal to the last bit
    # where both use fused multiply-adds; to rounding otherwise
    torch.testing.assert_close(got, ref, rtol=1e-15, atol=1e-13)


def test_zero_taps_skipped_and_equal_to_direct_correlation():
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 20, 24, dtype=torch.float64, generator=g)
    hc = torch.tensor([0.0, 1.0, 0.0, -2.0, 0.5], dtype=torch.float64)
    hr = torch.tensor([0.25, 0.0, 0.75], dtype=torch.float64)
    got, ref = _both(x, hc, hr)
    torch.testing.assert_close(got, ref, rtol=1e-15, atol=1e-15)
    direct = torch.nn.functional.conv2d(x[:, None], torch.outer(hc, hr)[None, None])[:, 0]  # a correlation
    torch.testing.assert_close(got, direct, rtol=1e-13, atol=1e-13)


def test_not_taken_for_float32_all_zero_or_accelerator(monkeypatch):
    from unifuse.backend import accelerator_paths

    def boom(*a, **k):
        raise AssertionError("kernel used")

    monkeypatch.setattr(S, "separable_valid", boom)
    h = torch.ones(3, dtype=torch.float64)
    Mt.separable_valid(torch.rand(1, 6, 6), h.float(), h.float())  # float32
    Mt.separable_valid(torch.rand(1, 6, 6, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), h)
    with accelerator_paths():
        Mt.separable_valid(torch.rand(1, 6, 6, dtype=torch.float64), h, h)
    with S.disabled():
        Mt.separable_valid(torch.rand(1, 6, 6, dtype=torch.float64), h, h)
    with pytest.raises(AssertionError, match="kernel used"):
        Mt.separable_valid(torch.rand(1, 6, 6, dtype=torch.float64), h, h)
