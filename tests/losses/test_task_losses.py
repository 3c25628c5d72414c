"""TITA task losses vif / mff / mef against an independent numpy formula (spec §7.2)."""

import numpy as np
import pytest
import torch

from unifuse.errors import ConfigError
from unifuse.losses import TASK_LOSS, create_loss, list_losses
from unifuse.losses.tita import TaskFusionLoss, TaskLossConfig, ssim_source_weights

from _loss_refs import sobel_ref, ssim_ref


def _inputs(seed=0, dtype=torch.float64, n=2, h=12, w=14):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, 1, h, w, generator=g, dtype=dtype)
    b = 0.3 * torch.rand(n, 1, h, w, generator=g, dtype=dtype)  # less texture than a
    f = (1.2 * torch.rand(n, 1, h, w, generator=g, dtype=dtype) - 0.1)  # raw output, outside [0,1]
    return f, a, b


def _reference(key, f, a, b):
    f, a, b = (t.detach().double().numpy() for t in (f, a, b))
    target = np.maximum(a, b) if key == "vif" else (a + b) / 2
    l_int = np.abs(f - target).mean()
    l_grad = np.abs(sobel_ref(f) - np.maximum(sobel_ref(a), sobel_ref(b))).mean()
    if key == "mef":
        wa = 0.5
    else:
        ga, gb = sobel_ref(a).mean(), sobel_ref(b).mean()
        wa = ga / (ga + gb)
    s = wa * ssim_ref(a, f) + (1 - wa) * ssim_ref(b, f)
    return 20 * l_int + 20 * l_grad + 10 * (1 - s)


def test_registry_and_task_map():
    assert {"vif", "mff", "mef", "uni"} <= set(list_losses())
    assert TASK_LOSS == {"IVF": "vif", "MFF": "mff", "MEF": "mef"}
    with pytest.raises(ConfigError):
        create_loss("nope")


@pytest.mark.parametrize("key", ["vif", "mff", "mef"])
def test_matches_independent_reference(key):
    f, a, b = _inputs()
    loss = create_loss(key)(f, a, b)
    assert loss.dim() == 0 and loss.dtype == torch.float64
    assert loss.item() == pytest.approx(_reference(key, f, a, b), rel=1e-10)
    loss32 = create_loss(key)(f.float(), a.float(), b.float())
    assert loss32.dtype == torch.float32
    assert loss32.item() == pytest.approx(loss.item(), rel=1e-4)


@pytest.mark.parametrize("key", ["vif", "mff", "mef"])
def test_zero_when_all_equal_and_gradient_flows(key):
    _, a, _ = _inputs()
    assert create_loss(key)(a.clone(), a, a).item() == pytest.approx(0.0, abs=1e-10)
    f, a, b = _inputs(seed=1, dtype=torch.float32)
    f.requires_grad_()
    create_loss(key)(f, a, b).backward()
    assert torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0


def test_terms_and_weights():
    f, a, b = _inputs(seed=2)
    t = create_loss("vif").terms(f, a, b)
    assert t.total.item() == pytest.approx((t.grad + t.int + t.ssim).item())
    # gradient-proportional weights: a is more textured, so w_A > 1/2, and they sum to 1
    wa, wb = ssim_source_weights(a, b, "gradient")
    assert 0.5 < wa.item() < 1 and (wa + wb).item() == pytest.approx(1.0)
    assert wa.item() == pytest.approx(sobel_ref(a.numpy()).mean() / (sobel_ref(a.numpy()).mean() + sobel_ref(b.numpy()).mean()))
    # batch scalars: computed over the whole batch, not per sample
    wa_batch, _ = ssim_source_weights(a, b, "gradient")
    wa_first, _ = ssim_source_weights(a[:1], b[:1], "gradient")
    assert wa_batch.item() != pytest.approx(wa_first.item())
    wa, wb = ssim_source_weights(a, b, "equal")
    assert wa.item() == wb.item() == 0.5


def test_mff_uses_mean_target_vif_max():
    # F = max(A, B) zeroes vif's intensity term, F = (A+B)/2 zeroes mff's and mef's
    _, a, b = _inputs(seed=3)
    assert create_loss("vif").terms(torch.maximum(a, b), a, b).int.item() == 0
    assert create_loss("mff").terms((a + b) / 2, a, b).int.item() == 0
    assert create_loss("mef").terms((a + b) / 2, a, b).int.item() == 0
    assert create_loss("mff").terms(torch.maximum(a, b), a, b).int.item() > 0


def test_paper_variant_switches():
    f, a, b = _inputs(seed=4)
    paper_mff = create_loss("mff", intensity_rule="max", ssim_weighting="equal")
    assert paper_mff.cfg == TaskLossConfig(intensity_rule="max", ssim_weighting="equal")
    assert paper_mff(f, a, b).item() != pytest.approx(create_loss("mff")(f, a, b).item())
    with pytest.raises(ConfigError):
        TaskFusionLoss(TaskLossConfig(intensity_rule="median"))
