import numpy as np
import pytest
import torch

from unifuse.losses.gradient import gradient_loss, sobel_magnitude, sobel_xy

from _loss_refs import sobel_ref


def test_sobel_on_horizontal_ramp():
    h, w = 6, 7
    x = torch.arange(w, dtype=torch.float64).expand(1, 1, h, w).clone()  # I(r, c) = c
    gx, gy = sobel_xy(x)
    # interior: (c+1 − (c−1)) · (1 + 2 + 1) = 8 and no vertical change
    assert torch.all(gx[0, 0, 1:-1, 1:-1] == 8)
    assert torch.all(gy[0, 0, 1:-1, 1:-1] == 0)
    s = sobel_magnitude(x)[0, 0]
    assert torch.all(s[1:-1, 1:-1] == 8)
    # zero padding, left column (c=0), interior rows: Gx = 1·4 − 0 = 4; Gy = 0
    assert torch.all(s[1:-1, 0] == 4)
    # right column (c=w-1): Gx = 0 − (w−2)·4
    assert torch.all(s[1:-1, -1] == 4 * (w - 2))
    # top row, column c: Gx = (2+1)·2 = 6, |Gy| = |−(c−1) − 2c − (c+1)| = 4c
    assert s[0, 3].item() == 6 + 12


def test_sobel_on_vertical_ramp_sign():
    x = torch.arange(5, dtype=torch.float32).view(1, 1, 5, 1).expand(1, 1, 5, 6).clone()  # I(r, c) = r
    gx, gy = sobel_xy(x)
    assert torch.all(gy[0, 0, 1:-1, 1:-1] == -8)  # Gy weights the row above by +1
    assert torch.all(gx[0, 0, 1:-1, 1:-1] == 0)


def test_sobel_is_l1_not_l2_and_matches_reference():
    x = torch.rand(2, 1, 9, 11, dtype=torch.float64)
    assert np.allclose(sobel_magnitude(x).numpy(), sobel_ref(x.numpy()), atol=1e-12)
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2:, 2:] = 1  # a corner: both directions respond at (2, 2)
    gx, gy = sobel_xy(x)
    assert sobel_magnitude(x)[0, 0, 2, 2] == gx[0, 0, 2, 2].abs() + gy[0, 0, 2, 2].abs()


def test_sobel_per_channel():
    x = torch.rand(2, 3, 8, 8)
    s = sobel_magnitude(x)
    assert torch.allclose(s[:, 1:2], sobel_magnitude(x[:, 1:2]))


def test_gradient_loss_value_and_grad():
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 1, 10, 10, generator=g, dtype=torch.float64), torch.rand(2, 1, 10, 10, generator=g, dtype=torch.float64)
    f = torch.rand(2, 1, 10, 10, generator=g, dtype=torch.float64, requires_grad=True)
    ref = np.abs(sobel_ref(f.detach().numpy()) - np.maximum(sobel_ref(a.numpy()), sobel_ref(b.numpy()))).mean()
    loss = gradient_loss(f, a, b)
    assert loss.dim() == 0 and loss.item() == pytest.approx(ref, abs=1e-12)
    loss.backward()
    assert f.grad is not None and f.grad.abs().sum() > 0
