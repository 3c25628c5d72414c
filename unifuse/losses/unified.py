"""U2Fusion-style unified loss ``uni`` (TITA spec §7.3; used by the "Baseline" ablation).

ℓ_uni = w_mse · mean_n(w_A·MSE_n(A,F) + w_B·MSE_n(B,F)) + w_ssim · (1 − mean_n(w_A·ssim(A,F) + w_B·ssim(B,F)))

with (w_mse, w_ssim) = (20, 1), per-sample MSE (mean over C, H, W), batch-scalar SSIM (:mod:`.ssim`)
and per-sample source weights (w_A, w_B) = softmax(s_A, s_B) that carry no gradient.

Information scores s (two back-ends)
------------------------------------
``vgg19`` (official, needs a local weight file): each grey source is replicated to 3 channels,
ImageNet-normalised and passed through a frozen VGG19 ``features`` stack; at indices 2, 7, 16, 25, 34
(pre-ReLU conv1_2, conv2_2, conv3_4, conv4_4, conv5_4) the depth-wise 3×3 kernel with off-centre
taps 1/8 and centre −1 (zero padding) is applied, squared and averaged over C, H, W; the 5 values
are averaged and divided by c = 3000. The weight file is a torchvision ``vgg19`` state dict
(``features.N.weight`` keys; ``.pth`` or ``.safetensors``) given as ``vgg_weights`` or through the
environment variable ``UNIFUSE_VGG19_WEIGHTS``. torchvision itself is not needed.

``gradient_energy`` (substitute, used when no VGG19 weights are available — **not** in the spec or
the official code, which document no substitute): the same kernel-energy measure is applied to the
image itself at ``n_scales`` dyadic scales (2×2 average pooling between scales), averaged over the
scales, and each pair's two scores are divided by their mean, s ← s / ((s_A + s_B)/2), so that
(s_A, s_B) ∈ [0, 2] and the softmax weights lie in [0.12, 0.88] whatever the image contrast
(the VGG constant c = 3000 has no meaning for raw pixels). The weights therefore favour the source
with more multi-scale high-frequency energy, like U2Fusion's, but are not numerically equal.

Inputs: ``fused`` raw network output, ``a``/``b`` in [0, 1], float (N, 1, H, W). Output 0-dim.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, WeightsError
from .ssim import SSIMConfig, ssim

VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
#: ``features`` indices whose outputs feed the information measure (pre-ReLU conv1_2 … conv5_4).
VGG19_TAPS = (2, 7, 16, 25, 34)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENV_VGG19 = "UNIFUSE_VGG19_WEIGHTS"


@dataclass(frozen=True)
class UnifiedLossConfig:
    """Switches of the ``uni`` loss; defaults follow the spec (VGG19 when weights are given)."""

    vgg_weights: Optional[str] = None  # path to a torchvision vgg19 state dict; None -> $UNIFUSE_VGG19_WEIGHTS
    backend: str = "auto"  # "auto" (vgg19 if weights found, else gradient_energy) | "vgg19" | "gradient_energy"
    c: float = 3000.0  # divisor of the VGG scores
    w_mse: float = 20.0
    w_ssim: float = 1.0
    features_after_relu: bool = False  # take the taps after ReLU instead (in-place-ReLU variant)
    n_scales: int = 5  # substitute only
    ssim: SSIMConfig = SSIMConfig()


def vgg19_features(max_index: int = max(VGG19_TAPS)) -> nn.Sequential:
    """The torchvision-compatible ``vgg19().features`` layer stack, truncated after ``max_index`` + its ReLU."""
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
        if len(layers) > max_index + 1:
            break
    return nn.Sequential(*layers[: max_index + 2])


def load_vgg19_features(path: str | os.PathLike) -> nn.Sequential:
    """Build :func:`vgg19_features` and load it from a local torchvision ``vgg19`` state dict (.pth/.safetensors)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: VGG19 weight file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any decoding problem is a user-facing weights error
        raise WeightsError(f"{p}: cannot read VGG19 weights ({e.__class__.__name__}: {e})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    feats = vgg19_features()
    own = feats.state_dict()
    picked = {}
    for k in own:
        for cand in (f"features.{k}", k):
            if cand in sd:
                picked[k] = sd[cand]
                break
    missing = [k for k in own if k not in picked]
    if missing:
        raise WeightsError(f"{p}: not a VGG19 state dict (missing {missing[0]!r} and {len(missing) - 1} more)")
    bad = [k for k in own if tuple(picked[k].shape) != tuple(own[k].shape)]
    if bad:
        raise WeightsError(f"{p}: VGG19 tensor {bad[0]!r} has shape {tuple(picked[bad[0]].shape)}, expected {tuple(own[bad[0]].shape)}")
    feats.load_state_dict(picked)
    feats.eval().requires_grad_(False)
    return feats


def kernel_energy(x: Tensor) -> Tensor:
    """Mean over (C, H, W) of the squared depth-wise response to [[1/8]*3, [1/8, −1, 1/8], [1/8]*3]; (N,C,H,W) -> (N,)."""
    c = x.shape[1]
    k = torch.full((3, 3), 1.0 / 8, dtype=x.dtype, device=x.device)
    k[1, 1] = -1.0
    r = F.conv2d(x, k.expand(c, 1, 3, 3), padding=1, groups=c)
    return (r * r).flatten(1).mean(1)


class UnifiedLoss(nn.Module):
    """U2Fusion-style loss with adaptive per-sample weights; ``forward(fused, a, b)`` -> 0-dim."""

    def __init__(self, cfg: UnifiedLossConfig = UnifiedLossConfig()):
        super().__init__()
        self.cfg = cfg
        path = cfg.vgg_weights or os.environ.get(ENV_VGG19) or None
        backend = cfg.backend
        if backend == "auto":
            backend = "vgg19" if path else "gradient_energy"
        if backend not in ("vgg19", "gradient_energy"):
            raise ConfigError(f"uni loss: unknown backend {cfg.backend!r}; available: auto, vgg19, gradient_energy")
        if backend == "vgg19" and not path:
            raise ConfigError(f"uni loss: backend 'vgg19' needs vgg_weights or ${ENV_VGG19}")
        self.backend = backend
        self.vgg = load_vgg19_features(path) if backend == "vgg19" else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def scores(self, x: Tensor) -> Tensor:
        """Information score s of each sample of an (N, 1, H, W) source; (N,). Substitute scores are un-normalised."""
        if self.vgg is None:
            vals = []
            for k in range(self.cfg.n_scales):
                if k:
                    if min(x.shape[-2:]) < 2:
                        break
                    x = F.avg_pool2d(x, 2)
                vals.append(kernel_energy(x))
            return torch.stack(vals, 0).mean(0)
        w = self.vgg[0].weight
        h = ((x.expand(-1, 3, -1, -1).to(w.dtype) - self.mean.to(w.dtype)) / self.std.to(w.dtype))
        vals = []
        for i, layer in enumerate(self.vgg):
            h = layer(h)
            if self.cfg.features_after_relu and i - 1 in VGG19_TAPS:
                vals.append(kernel_energy(h))
            elif not self.cfg.features_after_relu and i in VGG19_TAPS:
                vals.append(kernel_energy(h))
            if len(vals) == len(VGG19_TAPS):
                break
        return (torch.stack(vals, 0).mean(0) / self.cfg.c).to(x.dtype)

    @torch.no_grad()
    def source_weights(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sample (w_A, w_B), each (N,), summing to 1; no gradient."""
        sa, sb = self.scores(a), self.scores(b)
        if self.vgg is None:
            m = (sa + sb) / 2
            m = torch.where(m > 0, m, torch.ones_like(m))  # two flat sources -> equal weights
            sa, sb = sa / m, sb / m
        w = torch.softmax(torch.stack([sa, sb], 1), dim=1)
        return w[:, 0], w[:, 1]

    def forward(self, fused: Tensor, a: Tensor, b: Tensor) -> Tensor:
        a = a.to(fused.dtype)
        b = b.to(fused.dtype)
        wa, wb = self.source_weights(a, b)
        wa, wb = wa.to(fused.dtype), wb.to(fused.dtype)
        mse_a = (a - fused).pow(2).flatten(1).mean(1)
        mse_b = (b - fused).pow(2).flatten(1).mean(1)
        l_mse = (wa * mse_a + wb * mse_b).mean()
        s_a = ssim(a, fused, self.cfg.ssim)
        s_b = ssim(b, fused, self.cfg.ssim)
        l_ssim = 1 - (wa * s_a + wb * s_b).mean()
        return self.cfg.w_mse * l_mse + self.cfg.w_ssim * l_ssim
