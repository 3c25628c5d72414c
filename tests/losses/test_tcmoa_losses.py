"""TC-MoA losses (spec tcmoa.md §5) against independent float64 numpy formulas, and against the
official loss values of the reference case (its image terms; the full totals with prompts and
L_aux need the network and are checked in tests/training/test_tcmoa_objective.py)."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unifuse.errors import ConfigError, InputMismatchError
from unifuse.losses.gradient import SIGNED_KX, SIGNED_KY, signed_gradient
from unifuse.losses.mef_ssim import mef_ssim_color
from unifuse.losses.tcmoa import (
    TCMoALoss, TCMoALossConfig, max_gradient_target, mff_mask_target, mir_loss, recover_norm, task_index,
)

from _loss_refs import SOBEL_X, SOBEL_Y, correlate_zero, gauss2d, ssim_map_ref

REF = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "tcmoa_official_case1.pt"


def _rand(*shape, seed=0, lo=0.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)


def _g_ref(img):
    """Signed gradient of (N, C, H, W) numpy: Σ_c (Kx⋆I_c + Ky⋆I_c); -> (N, 1, H, W)."""
    kx, ky = np.array(SIGNED_KX), np.array(SIGNED_KY)
    out = np.zeros((img.shape[0], 1, *img.shape[2:]))
    for n in range(img.shape[0]):
        for c in range(img.shape[1]):
            out[n, 0] += correlate_zero(img[n, c], kx) + correlate_zero(img[n, c], ky)
    return out


def _ssim_ref(a, b):
    return float(np.mean([ssim_map_ref(a[n, c], b[n, c]) for n in range(a.shape[0]) for c in range(a.shape[1])]))


# ---------------------------------------------------------------------- building blocks
def test_signed_gradient_matches_direct_correlation_and_keeps_sign():
    x = _rand(2, 3, 7, 9, seed=1)
    np.testing.assert_allclose(signed_gradient(x).numpy(), _g_ref(x.numpy()), atol=1e-12)
    # a rising horizontal ramp has a positive Kx response, its mirror a negative one
    ramp = torch.arange(6, dtype=torch.float64).expand(1, 3, 6, 6).contiguous()
    g = signed_gradient(ramp)[0, 0, 2:-2, 2:-2]
    assert (g > 0).all() and (signed_gradient(ramp.flip(-1))[0, 0, 2:-2, 2:-2] < 0).all()


def test_max_gradient_target_takes_source_of_larger_magnitude_with_sign_and_ties_to_x():
    x, y = _rand(1, 3, 8, 8, seed=2), _rand(1, 3, 8, 8, seed=3)
    gx, gy = _g_ref(x.numpy()), _g_ref(y.numpy())
    expect = np.where(np.abs(gx) >= np.abs(gy), gx, gy)
    t = max_gradient_target(x, y).numpy()
    np.testing.assert_allclose(t, expect, atol=1e-12)
    assert (np.sign(t) == np.sign(expect)).all() and (t < 0).any()
    # y = -x: equal magnitudes everywhere -> x's signed gradient
    np.testing.assert_allclose(max_gradient_target(x, -x).numpy(), gx, atol=1e-12)


def test_mff_target_picks_sharp_patches_and_equals_x_when_y_is_blurred_x():
    x = _rand(1, 3, 32, 32, seed=4)
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert torch.equal(mff_mask_target(x, blur, patch=8), x)
    assert torch.equal(mff_mask_target(blur, x, patch=8), x)
    # mixed: left half of y sharp, right half of x sharp -> patch-wise copy (direct numpy decision)
    y = _rand(1, 3, 32, 32, seed=5)
    xs = torch.cat([F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)[..., :16], x[..., 16:]], -1)
    ys = torch.cat([y[..., :16], F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, stride=1)[..., 16:]], -1)
    out = mff_mask_target(xs, ys, patch=8).numpy()
    gray = lambda t: 0.2989 * t[0, 0] + 0.587 * t[0, 1] + 0.114 * t[0, 2]
    mag = lambda g: np.abs(correlate_zero(g, SOBEL_X)) + np.abs(correlate_zero(g, SOBEL_Y))
    mx, my = mag(gray(xs.numpy())), mag(gray(ys.numpy()))
    for i in range(0, 32, 8):
        for j in range(0, 32, 8):
            src = xs if mx[i:i + 8, j:j + 8].max() >= my[i:i + 8, j:j + 8].max() else ys
            np.testing.assert_array_equal(out[..., i:i + 8, j:j + 8], src.numpy()[..., i:i + 8, j:j + 8])
    # interior patches (no zero-padding border, no seam) come from the sharp side
    assert np.array_equal(out[..., 8:16, 8:16], ys.numpy()[..., 8:16, 8:16])
    assert np.array_equal(out[..., 8:16, 16:24], xs.numpy()[..., 8:16, 16:24])


def _mef_ssim_ref(f, ys):
    """Direct float64 MEF-SSIM: f (C, H, W), ys (K, C, H, W) numpy."""
    c = f.shape[0]
    w = gauss2d(11, 11 / 6)
    filt = lambda im: sum(correlate_zero(im[ch], w) for ch in range(c)) / c
    mu_y = np.stack([filt(y) for y in ys])
    sig_y = np.stack([filt(y * y) for y in ys]) - mu_y**2
    mu_x = filt(f)
    sig_x = filt(f * f) - mu_x**2
    sig_xy = np.stack([filt(f * y) for y in ys]) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    k = np.argmax(sig_y, 0)
    cs = np.take_along_axis((2 * sig_xy + c2) / (sig_x + sig_y + c2), k[None], 0)[0]
    lw = np.exp(-((mu_y.reshape(len(ys), -1).mean(1) - 0.5) ** 2) / 0.08)[:, None, None] * np.exp(-((mu_y - 0.5) ** 2) / 0.08)
    mu_t = (lw * mu_y).sum(0) / lw.sum(0)
    lum = (2 * mu_x * mu_t + c1) / (mu_x**2 + mu_t**2 + c1)
    return lum.mean() * cs.mean()


def test_mef_ssim_direct_formula_batch_stacked_vertically_and_identity():
    f, a, b = _rand(2, 3, 12, 10, seed=6), _rand(2, 3, 12, 10, seed=7, hi=0.6), _rand(2, 3, 12, 10, seed=8, lo=0.4)
    got = mef_ssim_color(f, torch.stack([a, b])).item()
    tall = lambda t: np.concatenate(list(t.numpy()), axis=1)  # (C, 2H, W): sample 0 above sample 1
    assert got == pytest.approx(_mef_ssim_ref(tall(f), np.stack([tall(a), tall(b)])), rel=1e-10)
    x = _rand(1, 3, 16, 16, seed=9).float()
    assert mef_ssim_color(x, torch.stack([x, x])).item() == pytest.approx(1.0, abs=1e-5)


def test_mir_zero_when_prompts_sum_to_one_and_weighted_squares_otherwise():
    px = _rand(2, 5, 1, seed=10)
    assert mir_loss([px], [1 - px], [px], [1 - px]).item() == pytest.approx(0.0, abs=1e-15)
    ex, ey, dx, dy = (_rand(2, 5, 1, seed=s) for s in (11, 12, 13, 14))
    ex2, ey2 = _rand(2, 5, 1, seed=15), _rand(2, 5, 1, seed=16)
    expect = 0.75 * np.mean(np.concatenate([(ex + ey - 1).numpy() ** 2, (ex2 + ey2 - 1).numpy() ** 2])) + 0.25 * np.mean((dx + dy - 1).numpy() ** 2)
    assert mir_loss([ex, ex2], [ey, ey2], [dx], [dy]).item() == pytest.approx(expect, rel=1e-12)


def test_recover_norm_inverts_imagenet_normalisation_and_clips():
    img = _rand(1, 3, 4, 4, seed=17)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(recover_norm((img - mean) / std), img, atol=1e-12)
    assert recover_norm(torch.full((1, 3, 2, 2), 9.0)).eq(1).all() and recover_norm(torch.full((1, 3, 2, 2), -9.0)).eq(0).all()


# ---------------------------------------------------------------------- totals per task and phase
def _case(seed=20):
    n, h, w = 2, 16, 16
    f, x, y = _rand(n, 3, h, w, seed=seed), _rand(n, 3, h, w, seed=seed + 1), _rand(n, 3, h, w, seed=seed + 2, hi=0.5)
    prompts = {k: [_rand(n, 4, 1, seed=seed + 3 + i)] for i, k in enumerate(("enc_x", "enc_y", "dec_x", "dec_y"))}
    return f, x, y, prompts


@pytest.mark.parametrize("task", ["IVF", "MEF", "MFF"])
@pytest.mark.parametrize("epoch", [0, 1, 2, 10])
def test_totals_follow_the_official_recipes(task, epoch):
    f, x, y, prompts = _case()
    aux = torch.tensor(0.37, dtype=torch.float64)
    out = TCMoALoss(TCMoALossConfig(mff_patch=8))(f, x, y, task, epoch, prompts, aux)
    fn, xn, yn = f.numpy(), x.numpy(), y.numpy()
    mir = 0.75 * np.mean((prompts["enc_x"][0] + prompts["enc_y"][0] - 1).numpy() ** 2) + 0.25 * np.mean((prompts["dec_x"][0] + prompts["dec_y"][0] - 1).numpy() ** 2)
    aux_t = 0.37 / (epoch + 1)
    ssim2 = ((1 - _ssim_ref(fn, xn)) + (1 - _ssim_ref(fn, yn))) / 2
    avg_pixel = 3 * np.abs(fn - (xn + yn) / 2).mean()
    gx, gy = _g_ref(xn), _g_ref(yn)
    max_grad = 3 * np.abs(_g_ref(fn) - np.where(np.abs(gx) >= np.abs(gy), gx, gy)).mean()
    warm = epoch < 2
    if task == "MFF":
        t = mff_mask_target(x, y, 8).numpy()
        pixel, grad, s = np.abs(fn - t).mean(), 3 * np.abs(_g_ref(fn) - _g_ref(t)).mean(), 1 - _ssim_ref(fn, t)
        expect = (pixel + mir + s + aux_t) if warm else 20 * (grad + pixel) + mir + 3 * s + aux_t
    elif warm:
        expect = avg_pixel + mir + ssim2 + aux_t
    elif task == "IVF":
        expect = 1.5 * max_grad + 1.5 * np.abs(fn - np.maximum(xn, yn)).mean() + mir + 2 * ssim2 + aux_t
    else:
        mef = 1 - _mef_ssim_ref(np.concatenate(list(fn), 1), np.stack([np.concatenate(list(xn), 1), np.concatenate(list(yn), 1)]))
        expect = 1.8 * (max_grad + mir + 2 * mef + avg_pixel) + aux_t
    assert out["loss"].item() == pytest.approx(expect, rel=1e-9)
    assert out["prompt_loss"].item() == pytest.approx(mir, rel=1e-12) and out["aux_loss"].item() == pytest.approx(0.37)


def test_loss_is_differentiable_and_validates_input():
    f, x, y, prompts = _case()
    f = f.clone().requires_grad_(True)
    TCMoALoss()(f, x, y, "MEF", 5, prompts, 0.0)["loss"].backward()
    assert f.grad is not None and torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0
    with pytest.raises(ConfigError):
        task_index("PAN")
    with pytest.raises(InputMismatchError):
        TCMoALoss()(f, x[..., :8], y, 0, 0, prompts, 0.0)
    with pytest.raises(ConfigError):
        TCMoALossConfig.from_dict({"w_grad": 1.0, "bogus": 1})


# ---------------------------------------------------------------------- official reference values
@pytest.mark.skipif(not REF.is_file(), reason="reference file not available")
def test_image_terms_equal_official_values_on_reference_outputs():
    """The reference's decoder outputs -> every image term of the official loss dict to 1e-5 relative.

    The official CPU model holds its gradient kernels as (perturbed) parameters of its state dict;
    ``use_official_kernels`` takes them, as the TC-MoA objective does when it loads official weights.
    """
    d = torch.load(REF, weights_only=True)
    x, y = recover_norm(d["x"]), recover_norm(d["y"])
    loss = TCMoALoss()
    assert loss.use_official_kernels(d["state_dict"]) == ["grad_kernels", "select_kernels"]
    p = torch.full((1, x.shape[-2] * x.shape[-1] // 16, 1), 0.5)
    prompts = {"enc_x": [p], "enc_y": [p], "dec_x": [p], "dec_y": [p]}
    for k in range(3):
        ref = d[f"task{k}"]
        fused = recover_norm(F.interpolate(ref["decoder"], size=x.shape[-2:]))
        assert torch.equal(fused, ref["fused"])
        out = loss(fused, x, y, k, 10, prompts, ref["loss"]["aux_loss"])
        for name, value in ref["loss"].items():
            if name not in ("loss", "prompt_loss", "aux_loss"):
                assert out[name].item() == pytest.approx(value, rel=1e-5), (k, name)
