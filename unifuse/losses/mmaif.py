"""MMAIF losses (spec ``mmaif.md`` §3.3, §5.1, §5.2) as pure functions (the MoE
load-balancing term is :func:`unifuse.models.layers.moe.load_balance_loss`).

Latents are normalised DiT latents ``(B, z, h, w)``; images are ``(B, 3, H, W)`` in ``[0, 1]``
unless stated. All losses return 0-dim tensors (means over every element).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .gradient import sobel_xy
from .ssim import ssim

AUX_MODES = ("paper", "max")
LUMA = (0.299, 0.587, 0.114)


def regression_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``L_reg = mean((Ẑ − Z_G)²)``."""
    return (pred.float() - target.float()).pow(2).mean()


def flow_path(z_g: Tensor, noise: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """``(Z_t, target velocity)`` with ``Z_t = (1 − t)·ε + t·Z_G`` and target ``Z_G − ε``; ``t`` (B,)."""
    tt = t.view(-1, *[1] * (z_g.ndim - 1)).to(z_g.dtype)
    return (1 - tt) * noise + tt * z_g, z_g - noise


def sample_t(batch: int, t_eps: float = 1e-4, generator: torch.Generator | None = None, device=None) -> Tensor:
    """``t ~ U(0, 1)`` clamped to ``[t_eps, 1 − t_eps]``, shape (B,)."""
    return torch.rand(batch, generator=generator, device=device).clamp(t_eps, 1 - t_eps)


def flow_matching_loss(v_pred: Tensor, z_g: Tensor, noise: Tensor) -> Tensor:
    """``L_flow = mean‖v̂ − (Z_G − ε)‖²``."""
    return (v_pred.float() - (z_g - noise).float()).pow(2).mean()


def one_step_estimate(z_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
    """``Ẑ_1 = Z_t + (1 − t)·v̂`` (the flow model's estimate of the clean latent)."""
    return z_t + (1 - t.view(-1, *[1] * (z_t.ndim - 1)).to(z_t.dtype)) * v


def luminance(x: Tensor) -> Tensor:
    """BT.601 luma ``(B, 1, H, W)`` of RGB ``(B, 3, H, W)`` (a 1-channel input is returned as is)."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _grad(x: Tensor) -> Tensor:
    """Sobel (x, y) responses of the luminance, stacked: ``(B, 2, H, W)``."""
    gx, gy = sobel_xy(luminance(x))
    return torch.cat([gx, gy], dim=1)


def aux_fusion_loss(fused: Tensor, a: Tensor, b: Tensor, mode: str = "paper") -> Tensor:
    """Pixel-space fusion loss on the decoded estimate (Eq. 9).

    ``"paper"``: ``Σ_{i∈{A,B}} mean|X̃ − X_i| + mean|∇X̃ − ∇X_i|``; ``"max"``: one term against the
    pixel-wise max intensity and the per-pixel larger-magnitude Sobel response (SwinFusion style).
    ∇ = Sobel (x, y) of the BT.601 luminance, zero padding; means over all elements.
    """
    g = _grad(fused)
    if mode == "paper":
        return sum((fused - x).abs().mean() + (g - _grad(x)).abs().mean() for x in (a, b))
    if mode == "max":
        ga, gb = _grad(a), _grad(b)
        gmax = torch.where(ga.abs() >= gb.abs(), ga, gb)
        return (fused - torch.maximum(a, b)).abs().mean() + (g - gmax).abs().mean()
    raise ValueError(f"aux_mode must be one of {AUX_MODES}, got {mode!r}")


def kl_divergence(mean: Tensor, logvar: Tensor, pixels: int) -> Tensor:
    """``KL(N(μ, σ²) ‖ N(0, 1))`` summed over latent elements and divided by ``pixels``."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum() / pixels


def vae_loss(x: Tensor, x_hat: Tensor, mean: Tensor, logvar: Tensor, ssim_weight: float = 0.2,
             kl_weight: float = 1e-6) -> dict[str, Tensor]:
    """Spec §3.3: ``|x − x̂|₁ + 0.2·(1 − SSIM) + 1e-6·KL`` for images in ``[−1, 1]``.

    SSIM is computed on ``[0, 1]`` images; KL is divided by the number of pixels ``B·H·W``.
    Returns ``{"loss", "l1", "ssim", "kl"}``.
    """
    l1 = (x - x_hat).abs().mean()
    s = ssim((x_hat + 1) / 2, (x + 1) / 2)
    kl = kl_divergence(mean, logvar, x.shape[0] * x.shape[-2] * x.shape[-1])
    return {"loss": l1 + ssim_weight * (1 - s) + kl_weight * kl, "l1": l1, "ssim": s, "kl": kl}


__all__ = ["regression_loss", "flow_path", "sample_t", "flow_matching_loss", "one_step_estimate", "aux_fusion_loss",
           "kl_divergence", "vae_loss", "luminance"]
