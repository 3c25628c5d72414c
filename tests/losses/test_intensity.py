import pytest
import torch

from unifuse.errors import ConfigError
from unifuse.losses.intensity import intensity_loss, intensity_target


def test_targets():
    a = torch.tensor([[[[0.2, 0.9]]]])
    b = torch.tensor([[[[0.6, 0.1]]]])
    assert torch.allclose(intensity_target(a, b, "max"), torch.tensor([[[[0.6, 0.9]]]]))
    assert torch.allclose(intensity_target(a, b, "mean"), torch.tensor([[[[0.4, 0.5]]]]))
    with pytest.raises(ConfigError):
        intensity_target(a, b, "min")


@pytest.mark.parametrize("rule", ["max", "mean"])
def test_zero_at_target_and_l1_elsewhere(rule):
    a = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    b = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    t = intensity_target(a, b, rule)
    assert intensity_loss(t, a, b, rule).item() == 0
    assert intensity_loss(t + 0.25, a, b, rule).item() == pytest.approx(0.25, abs=1e-12)
    f = (t - 0.1).requires_grad_()
    intensity_loss(f, a, b, rule).backward()
    assert torch.allclose(f.grad, torch.full_like(f, -1 / f.numel()))
