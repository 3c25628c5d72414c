"""Training losses.

``create_loss(name, **kw)`` returns a callable ``loss(fused, a, b) -> 0-dim Tensor`` for

* ``vif``, ``mff``, ``mef``: TITA's task-specific objectives (:mod:`.tita`, spec §7.2);
* ``uni``: the U2Fusion-style unified loss of the "Baseline" ablation (:mod:`.unified`, spec §7.3).

All take float (N, 1, H, W) tensors: ``fused`` is the raw (unclamped) network output, ``a`` and
``b`` the sources in [0, 1]. They are differentiable w.r.t. ``fused`` and work in float32/float64.
``TASK_LOSS`` maps the training task keys to their official loss. Add losses with
``register_loss(name, description)`` on a factory ``(**kw) -> callable``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from torch import Tensor

from ..registry import Registry
from .gradient import gradient_loss, sobel_magnitude, sobel_xy
from .intensity import intensity_loss, intensity_target
from .ssim import SSIMConfig, gaussian_window, ssim, ssim_map
from .tita import TASK_LOSS_CONFIGS, LossTerms, TaskFusionLoss, TaskLossConfig
from .unified import UnifiedLoss, UnifiedLossConfig

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]

LOSSES: Registry[LossFn] = Registry("loss")
register_loss = LOSSES.register

#: Training task key -> official loss name.
TASK_LOSS = {"IVF": "vif", "MFF": "mff", "MEF": "mef"}


def _task_factory(key: str) -> Callable[..., LossFn]:
    def factory(**kw: Any) -> LossFn:
        return TaskFusionLoss(replace(TASK_LOSS_CONFIGS[key], **kw))

    return factory


register_loss("vif", "IVF: 20·L1(F,max(A,B)) + 20·grad + 10·(1−SSIM), gradient-weighted SSIM", task="IVF")(_task_factory("vif"))
register_loss("mff", "MFF: 20·L1(F,(A+B)/2) + 20·grad + 10·(1−SSIM), gradient-weighted SSIM", task="MFF")(_task_factory("mff"))
register_loss("mef", "MEF: 20·L1(F,(A+B)/2) + 20·grad + 10·(1−SSIM), SSIM weights ½/½", task="MEF")(_task_factory("mef"))


@register_loss("uni", "U2Fusion-style unified loss (VGG19 weights from a local file, else a gradient-energy substitute)")
def _uni(**kw: Any) -> LossFn:
    return UnifiedLoss(UnifiedLossConfig(**kw))


def create_loss(name: str, **kw: Any) -> LossFn:
    """Build the loss ``name`` (see :func:`list_losses`); keyword arguments override config fields."""
    return LOSSES.get(name).factory(**kw)


def list_losses() -> list[str]:
    """Names of the registered losses."""
    return LOSSES.names()


names = list_losses

__all__ = [
    "LOSSES", "TASK_LOSS", "create_loss", "list_losses", "register_loss", "names",
    "TaskFusionLoss", "TaskLossConfig", "TASK_LOSS_CONFIGS", "LossTerms", "UnifiedLoss", "UnifiedLossConfig",
    "SSIMConfig", "ssim", "ssim_map", "gaussian_window", "sobel_xy", "sobel_magnitude", "gradient_loss",
    "intensity_loss", "intensity_target",
]
