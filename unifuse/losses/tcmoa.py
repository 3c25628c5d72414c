"""TC-MoA's per-task training losses (``tcmoa.md`` §5, the official code's values).

Inputs are images in [0, 1] at the input resolution: ``fused`` F (the network output after
the nearest down-sampling and :func:`recover_norm`), and the two sources ``x`` (visible /
over-exposed / far focus) and ``y`` (infrared / under-exposed / near focus), all float
(N, 3, H, W). Also the prompts of every TC-MoA module (each (B, N_tok, 1) in (0, 1)) and the
load-balancing loss L_aux summed over the modules (0-dim).

Building blocks (all 0-dim):

* ``L_AvgPixel = w_avg_pixel·mean|F − (x+y)/2|``  (w = 3)
* ``L_MaxPixel = w_max_pixel·mean|F − max(x, y)|`` (w = 1; the max is detached)
* ``L_MaxGrad  = w_grad·mean|G(F) − T_grad|``     (w = 3; G the signed gradient, T_grad the source
  value of larger |G| per pixel, ties to x)
* MFF: ``L_MaskPixel = w_mask_pixel·mean|F − T_MFF|``, ``L_MaskGrad = w_grad·mean|G(F) − G(T_MFF)|``
  with T_MFF the 16×16-patch focus-selection target (:func:`mff_mask_target`)
* ``L_SSIM2 = ((1 − SSIM(F, x)) + (1 − SSIM(F, y)))/2``
* ``L_MIR = 0.75·mean((p_x + p_y − 1)²)_enc + 0.25·mean((p_x + p_y − 1)²)_dec``

Per-task totals (``e`` the integer epoch, warm-up while ``e < warmup_epochs``)::

    warm-up  IVF, MEF:  L_AvgPixel + L_MIR + L_SSIM2 + L_aux/(e+1)
             MFF:       L_MaskPixel + L_MIR + (1 − SSIM(F, T_MFF)) + L_aux/(e+1)
    main     IVF:  1.5·L_MaxGrad + 1.5·L_MaxPixel + L_MIR + 2·L_SSIM2 + L_aux/(e+1)
             MEF:  1.8·(L_MaxGrad + L_MIR + 2·(1 − MEFSSIM(F; x, y)) + L_AvgPixel) + L_aux/(e+1)
             MFF:  20·(L_MaskGrad + L_MaskPixel) + L_MIR + 3·(1 − SSIM(F, T_MFF)) + L_aux/(e+1)

:class:`TCMoALoss` returns a dict with the official term names (``loss``, ``aux_loss``,
``prompt_loss``, ``pixel_loss``, ``ssim_loss``, ``max_grad_loss``, ``max_pixel_loss``,
``MEF_SSIM_loss``; which ones depends on task and phase), ``aux_loss`` undivided as the
official code logs it. Every weight is a :class:`TCMoALossConfig` field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, InputMismatchError
from .gradient import SOBEL_X, SOBEL_Y, signed_gradient
from .mef_ssim import mef_ssim_color
from .ssim import ssim

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: TC-MoA task index of each training task key (the official order VIF, MEF, MFF).
TASK_INDEX = {"IVF": 0, "VIF": 0, "MEF": 1, "MFF": 2}
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


@dataclass(frozen=True)
class TCMoALossConfig:
    """Weights of the TC-MoA losses; defaults = the official code (spec §5.2, §5.3)."""

    warmup_epochs: int = 2
    w_avg_pixel: float = 3.0  # PixelLoss(3)
    w_max_pixel: float = 1.0  # MaxPixelLoss(1)
    w_mask_pixel: float = 1.0  # MFF: MaxPixelLoss(1) against the mask target
    w_grad: float = 3.0  # MaxGradLoss(3), also the MFF mask-gradient term
    mir_encoder: float = 0.75
    mir_decoder: float = 0.25
    aux_epoch_decay: bool = True  # L_aux / (epoch + 1)
    mff_patch: int = 16
    vif_grad: float = 1.5
    vif_max_pixel: float = 1.5
    vif_ssim: float = 2.0
    mef_scale: float = 1.8
    mef_mefssim: float = 2.0
    mff_scale: float = 20.0
    mff_ssim: float = 3.0

    def __post_init__(self) -> None:
        if self.warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.mff_patch < 1:
            raise ConfigError(f"mff_patch must be >= 1, got {self.mff_patch}")

    @classmethod
    def from_dict(cls, data: Dict[str, object]) -> "TCMoALossConfig":
        names = {f.name for f in fields(cls)}
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ConfigError(f"unknown TC-MoA loss option {unknown[0]!r}; valid: {', '.join(sorted(names))}")
        return cls(**data)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- building blocks
def recover_norm(z: Tensor) -> Tensor:
    """ImageNet-normalised (N, 3, H, W) -> [0, 1], as the official ``recover_Norm(z)/255``
    (scale to 0..255, clip, divide; the clip stops the gradient outside the range)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=z.dtype, device=z.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=z.dtype, device=z.device).view(1, 3, 1, 1)
    return torch.clip((z * std + mean) * 255, 0, 255) / 255


def max_gradient_target(x: Tensor, y: Tensor, kernels: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
    """T_grad: per pixel the signed gradient G of the source with the larger |G| (ties to x); (N, 1, H, W)."""
    gx, gy = signed_gradient(x, kernels), signed_gradient(y, kernels)
    return torch.where(gx.abs() >= gy.abs(), gx, gy)


def to_gray(img: Tensor) -> Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) with 0.2989R + 0.587G + 0.114B."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return (img * w).sum(1, keepdim=True)


def sobel_kernels(*, dtype=torch.float32, device=None) -> Tuple[Tensor, Tensor]:
    """The standard Sobel pair as two (1, 1, 3, 3) cross-correlation kernels."""
    kx = torch.tensor(SOBEL_X, dtype=dtype, device=device).view(1, 1, 3, 3)
    ky = torch.tensor(SOBEL_Y, dtype=dtype, device=device).view(1, 1, 3, 3)
    return kx, ky


def mff_mask_target(x: Tensor, y: Tensor, patch: int = 16, kernels: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
    """MFF pseudo-target: every ``patch``×``patch`` block copied from the source whose grey Sobel
    magnitude |Gx|+|Gy| has the larger maximum inside the block (ties to x); (N, C, H, W).

    H and W should be multiples of ``patch`` (the official code requires it); otherwise the
    last partial blocks are decided on their own pixels. ``kernels``: the (Kx, Ky) Sobel pair as
    (1, 1, 3, 3) tensors (default :func:`sobel_kernels`).
    """
    if x.shape != y.shape or x.dim() != 4:
        raise InputMismatchError(f"mff_mask_target: expected two (N,C,H,W) tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    h, w = x.shape[-2:]
    kx, ky = kernels if kernels is not None else sobel_kernels(dtype=x.dtype, device=x.device)

    def magnitude(img: Tensor) -> Tensor:
        g = to_gray(img)
        return F.conv2d(g, kx.to(g.dtype), padding=1).abs() + F.conv2d(g, ky.to(g.dtype), padding=1).abs()

    with torch.no_grad():
        gx = F.max_pool2d(magnitude(x), patch, ceil_mode=True)
        gy = F.max_pool2d(magnitude(y), patch, ceil_mode=True)
        take_x = (gx >= gy).repeat_interleave(patch, -2).repeat_interleave(patch, -1)[..., :h, :w]
    return torch.where(take_x, x, y)


def mir_loss(
    enc_x: Sequence[Tensor], enc_y: Sequence[Tensor], dec_x: Sequence[Tensor], dec_y: Sequence[Tensor],
    w_enc: float = 0.75, w_dec: float = 0.25,
) -> Tensor:
    """L_MIR = w_enc·mean((p_x + p_y − 1)²) over the encoder modules + w_dec·(same over the decoder).

    Each prompt is (B, N_tok, 1); a side without modules contributes 0.
    """
    total = None
    for px, py, w in ((enc_x, enc_y, w_enc), (dec_x, dec_y, w_dec)):
        if len(px) == 0:
            continue
        s = torch.stack(list(px)) + torch.stack(list(py))
        term = w * ((s - 1) ** 2).mean()
        total = term if total is None else total + term
    if total is None:
        raise InputMismatchError("mir_loss: no prompts given")
    return total


# ---------------------------------------------------------------------- the per-task objective
Prompts = Dict[str, Sequence[Tensor]]  # keys enc_x, enc_y, dec_x, dec_y


def task_index(task: Union[int, str]) -> int:
    if isinstance(task, int):
        if task not in (0, 1, 2):
            raise ConfigError(f"TC-MoA task index must be 0 (IVF), 1 (MEF) or 2 (MFF), got {task}")
        return task
    key = str(task).upper()
    if key not in TASK_INDEX:
        raise ConfigError(f"TC-MoA has no loss for task {task!r}; known: IVF, MEF, MFF")
    return TASK_INDEX[key]


class TCMoALoss:
    """``loss(fused, x, y, task, epoch, prompts, aux) -> dict`` of 0-dim terms (see the module doc).

    Args of the call:
        fused, x, y: (N, 3, H, W) in [0, 1] (see :func:`recover_norm`).
        task: 0/1/2 or ``IVF``/``MEF``/``MFF``.
        epoch: integer epoch index from 0 (selects the phase and divides L_aux).
        prompts: ``{"enc_x", "enc_y", "dec_x", "dec_y"}`` lists of (B, N_tok, 1) prompts.
        aux: L_aux summed over all modules (0-dim tensor or float).

    Gradient kernels: ``grad_kernels`` (Kx, Ky), each (1, 3, 3, 3), for G, and ``select_kernels``
    (Sobel x, y), each (1, 1, 3, 3), for the MFF target; defaults are the spec's constants.
    The official module keeps them as attributes of its loss modules; on a CPU run they end up
    registered as parameters in its state dict (``MaxGradLoss.sobelconv.weight{x,y}``,
    ``MFFselect.sobelconv.weight{x,y}``), and :meth:`use_official_kernels` takes them from there.
    """

    #: official state-dict keys of the gradient kernels
    OFFICIAL_KERNEL_KEYS = {
        "grad_kernels": ("MaxGradLoss.sobelconv.weightx", "MaxGradLoss.sobelconv.weighty"),
        "select_kernels": ("MFFselect.sobelconv.weightx", "MFFselect.sobelconv.weighty"),
    }

    def __init__(
        self,
        cfg: TCMoALossConfig = TCMoALossConfig(),
        grad_kernels: Optional[Tuple[Tensor, Tensor]] = None,
        select_kernels: Optional[Tuple[Tensor, Tensor]] = None,
    ):
        self.cfg = cfg
        self.grad_kernels = grad_kernels
        self.select_kernels = select_kernels

    def use_official_kernels(self, state_dict: Mapping[str, Tensor]) -> list:
        """Take the gradient kernels an official state dict carries (see the class doc); returns
        the kernel names found (an official file without them keeps the constants)."""
        found = []
        for attr, (kx, ky) in self.OFFICIAL_KERNEL_KEYS.items():
            if kx in state_dict and ky in state_dict:
                setattr(self, attr, (state_dict[kx].detach().float().clone(), state_dict[ky].detach().float().clone()))
                found.append(attr)
        return found

    def __call__(self, fused: Tensor, x: Tensor, y: Tensor, task: Union[int, str], epoch: int, prompts: Prompts, aux) -> Dict[str, Tensor]:
        cfg = self.cfg
        k = task_index(task)
        if not (fused.shape == x.shape == y.shape) or fused.dim() != 4:
            raise InputMismatchError(f"TC-MoA loss: fused, x, y must be (N,C,H,W) of one shape, got {tuple(fused.shape)}, {tuple(x.shape)}, {tuple(y.shape)}")
        x, y = x.to(fused.dtype), y.to(fused.dtype)
        aux = torch.as_tensor(aux, dtype=fused.dtype, device=fused.device)
        aux_term = aux / (epoch + 1) if cfg.aux_epoch_decay else aux
        prompt = mir_loss(prompts["enc_x"], prompts["enc_y"], prompts["dec_x"], prompts["dec_y"], cfg.mir_encoder, cfg.mir_decoder)
        warm = epoch < cfg.warmup_epochs
        gk = self.grad_kernels
        out: Dict[str, Tensor] = {"prompt_loss": prompt, "aux_loss": aux}
        if k == 2:  # MFF
            target = mff_mask_target(x, y, cfg.mff_patch, self.select_kernels)
            pixel = cfg.w_mask_pixel * F.l1_loss(fused, target)
            grad = cfg.w_grad * F.l1_loss(signed_gradient(fused, gk), signed_gradient(target, gk))
            ssim_l = 1 - ssim(fused, target)
            if warm:
                loss = pixel + prompt + ssim_l + aux_term
            else:
                loss = cfg.mff_scale * (grad + pixel) + prompt + cfg.mff_ssim * ssim_l + aux_term
            out.update(ssim_loss=ssim_l, pixel_loss=pixel)
            if not warm:
                out["max_grad_loss"] = grad
        elif warm:  # IVF and MEF share the warm-up objective
            pixel = cfg.w_avg_pixel * F.l1_loss(fused, (x + y) / 2)
            ssim_l = ((1 - ssim(fused, x)) + (1 - ssim(fused, y))) / 2
            loss = pixel + prompt + ssim_l + aux_term
            out.update(pixel_loss=pixel, ssim_loss=ssim_l)
        elif k == 0:  # IVF
            grad = cfg.w_grad * F.l1_loss(signed_gradient(fused, gk), max_gradient_target(x, y, gk).detach())
            max_pixel = cfg.w_max_pixel * F.l1_loss(fused, torch.maximum(x, y).detach())
            ssim_l = ((1 - ssim(fused, x)) + (1 - ssim(fused, y))) / 2
            loss = cfg.vif_grad * grad + cfg.vif_max_pixel * max_pixel + prompt + cfg.vif_ssim * ssim_l + aux_term
            out.update(ssim_loss=ssim_l, max_grad_loss=grad, max_pixel_loss=max_pixel)
        else:  # MEF
            pixel = cfg.w_avg_pixel * F.l1_loss(fused, (x + y) / 2)
            mef = 1 - mef_ssim_color(fused, torch.stack([x, y]))
            grad = cfg.w_grad * F.l1_loss(signed_gradient(fused, gk), max_gradient_target(x, y, gk).detach())
            loss = cfg.mef_scale * (grad + prompt + cfg.mef_mefssim * mef + pixel) + aux_term
            out.update(pixel_loss=pixel, MEF_SSIM_loss=mef, max_grad_loss=grad)
        out["loss"] = loss
        return out


__all__ = [
    "TCMoALoss", "TCMoALossConfig", "TASK_INDEX", "recover_norm", "max_gradient_target", "mff_mask_target",
    "mir_loss", "to_gray", "sobel_kernels", "task_index", "IMAGENET_MEAN", "IMAGENET_STD",
]
