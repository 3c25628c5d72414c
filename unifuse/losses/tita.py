"""TITA's per-task fusion objectives ``vif``, ``mff`` and ``mef`` (TITA spec §7.2).

All three have the form::

    ℓ = w_int·L1(F, M(A,B)) + w_grad·L1(S(F), max(S(A), S(B))) + w_ssim·(1 − (w_A·ssim(A,F) + w_B·ssim(B,F)))

with (w_int, w_grad, w_ssim) = (20, 20, 10), S the Sobel L1 magnitude and SSIM as in :mod:`.ssim`.

=====  ===========  =====================  =================================================
key    task         intensity target M      SSIM weights (w_A, w_B)
=====  ===========  =====================  =================================================
vif    IVF          element-wise max        gradient-proportional: w_A = mean S(A)/(mean S(A)+mean S(B))
mff    MFF          element-wise mean       gradient-proportional (as vif)
mef    MEF          element-wise mean       0.5, 0.5
=====  ===========  =====================  =================================================

The gradient-proportional weights are batch scalars (means over the whole batch tensor) with no
epsilon, as in the official code (``weight_eps`` adds one if wanted). The paper's variant (max
target for MFF, ½/½ SSIM weights everywhere) is available through :class:`TaskLossConfig`.

Inputs: ``fused`` raw (unclamped) network output, ``a`` and ``b`` sources in [0, 1], all float
(N, 1, H, W) (any channel count works). Output: 0-dim tensor, differentiable w.r.t. ``fused``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .gradient import gradient_loss, sobel_magnitude
from .intensity import INTENSITY_RULES, intensity_loss
from .ssim import SSIMConfig, ssim

SSIM_WEIGHTINGS = ("gradient", "equal")


@dataclass(frozen=True)
class TaskLossConfig:
    """Switches of one task-specific loss; defaults reproduce the official ``vif`` loss."""

    intensity_rule: str = "max"  # "max" | "mean"
    ssim_weighting: str = "gradient"  # "gradient" (batch mean Sobel ratio) | "equal" (½, ½)
    w_int: float = 20.0
    w_grad: float = 20.0
    w_ssim: float = 10.0
    weight_eps: float = 0.0  # added to the denominator of the gradient-proportional weights
    ssim: SSIMConfig = SSIMConfig()

    def __post_init__(self) -> None:
        if self.intensity_rule not in INTENSITY_RULES:
            raise ConfigError(f"intensity_rule must be one of {INTENSITY_RULES}, got {self.intensity_rule!r}")
        if self.ssim_weighting not in SSIM_WEIGHTINGS:
            raise ConfigError(f"ssim_weighting must be one of {SSIM_WEIGHTINGS}, got {self.ssim_weighting!r}")


#: Official configurations (code, not paper: MFF uses the mean target, IVF/MFF gradient weights).
TASK_LOSS_CONFIGS: dict[str, TaskLossConfig] = {
    "vif": TaskLossConfig(intensity_rule="max", ssim_weighting="gradient"),
    "mff": TaskLossConfig(intensity_rule="mean", ssim_weighting="gradient"),
    "mef": TaskLossConfig(intensity_rule="mean", ssim_weighting="equal"),
}


class LossTerms(NamedTuple):
    """Total and the three weighted terms, as the official functions return them (all 0-dim)."""

    total: Tensor
    grad: Tensor
    int: Tensor
    ssim: Tensor


def ssim_source_weights(a: Tensor, b: Tensor, weighting: str, eps: float = 0.0) -> tuple[Tensor, Tensor]:
    """(w_A, w_B) as 0-dim tensors: ``equal`` gives ½/½; ``gradient`` gives mean S(A)/(mean S(A)+mean S(B)).

    The weights depend only on the sources, so no gradient flows through them.
    """
    if weighting == "equal":
        half = torch.tensor(0.5, dtype=a.dtype, device=a.device)
        return half, half
    with torch.no_grad():
        ga = sobel_magnitude(a).mean()
        gb = sobel_magnitude(b).mean()
        wa = ga / (ga + gb + eps)
    return wa, 1 - wa


class TaskFusionLoss(nn.Module):
    """One task-specific objective; ``forward(fused, a, b)`` returns the 0-dim total."""

    def __init__(self, cfg: TaskLossConfig = TaskLossConfig()):
        super().__init__()
        self.cfg = cfg

    def terms(self, fused: Tensor, a: Tensor, b: Tensor) -> LossTerms:
        """All weighted terms; ``total = grad + int + ssim``."""
        cfg = self.cfg
        a = a.to(fused.dtype)
        b = b.to(fused.dtype)
        l_int = cfg.w_int * intensity_loss(fused, a, b, cfg.intensity_rule)
        l_grad = cfg.w_grad * gradient_loss(fused, a, b)
        wa, wb = ssim_source_weights(a, b, cfg.ssim_weighting, cfg.weight_eps)
        l_ssim = cfg.w_ssim * (1 - (wa * ssim(a, fused, cfg.ssim) + wb * ssim(b, fused, cfg.ssim)))
        return LossTerms(l_grad + l_int + l_ssim, l_grad, l_int, l_ssim)

    def forward(self, fused: Tensor, a: Tensor, b: Tensor) -> Tensor:
        return self.terms(fused, a, b).total

    def extra_repr(self) -> str:
        return repr(self.cfg)
