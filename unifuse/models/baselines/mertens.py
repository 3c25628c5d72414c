"""Exposure fusion after Mertens, Kautz & Van Reeth (Pacific Graphics 2007)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...errors import ConfigError
from .. import register_model
from .base import BaselineFusion, build_config
from .pyramid import collapse, gaussian_pyramid, laplacian_pyramid, max_levels


@dataclass(frozen=True)
class MertensConfig:
    """Options of :class:`MertensFusion`.

    Attributes:
        contrast_weight, saturation_weight, exposedness_weight: exponents of the three
            quality measures (the paper's omega_C, omega_S, omega_E; all 1 by default).
        sigma: width of the well-exposedness Gaussian around 0.5.
        levels: pyramid levels; ``None`` = as deep as the image allows (coarsest side >=
            ``min_size``; the default 1 goes down to 1-2 pixels like the paper and OpenCV's
            ``MergeMertens``: the deep levels are what spreads exposure over large regions).
        min_size: smallest side allowed for a reduced level.
        eps: added to every weight before normalisation (so flat, fully clipped regions fall
            back to a plain average instead of 0/0).
    """

    contrast_weight: float = 1.0
    saturation_weight: float = 1.0
    exposedness_weight: float = 1.0
    sigma: float = 0.2
    levels: int | None = None
    min_size: int = 1
    eps: float = 1e-12

    def __post_init__(self) -> None:
        for name in ("contrast_weight", "saturation_weight", "exposedness_weight"):
            if float(getattr(self, name)) < 0:
                raise ConfigError(f"mertens: {name} must be >= 0, got {getattr(self, name)!r}")
        if not float(self.sigma) > 0:
            raise ConfigError(f"mertens: sigma must be > 0, got {self.sigma!r}")
        if self.levels is not None and (not isinstance(self.levels, int) or self.levels < 1):
            raise ConfigError(f"mertens: levels must be a positive integer or None, got {self.levels!r}")
        if not isinstance(self.min_size, int) or self.min_size < 1:
            raise ConfigError(f"mertens: min_size must be a positive integer, got {self.min_size!r}")


_LAPLACE = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
_LUMA = (0.299, 0.587, 0.114)


class MertensFusion(BaselineFusion):
    """Exposure fusion of two RGB images ``(N, 3, H, W)`` in ``[0, 1]``.

    Per pixel and source: contrast ``C = |Laplacian(gray)|`` (gray = BT.601 luma, 3x3
    kernel ``[[0,1,0],[1,-4,1],[0,1,0]]``, replicate padding), saturation ``S`` = standard deviation over R, G, B, and
    well-exposedness ``E = prod_c exp(-(I_c - 0.5)^2 / (2 sigma^2))``; the weight
    ``W = C^wc * S^ws * E^we + eps`` is normalised over the two sources and the images are
    blended on a Laplacian pyramid with the Gaussian pyramid of the weights.

    Gray input ``(N, 1, H, W)`` (output ``(N, 1, H, W)``), and gray pairs stored as RGB (both
    sources with zero saturation everywhere), leave the saturation term out: it is
    identically zero there and would reduce the rule to a plain average.
    """

    input_mode = "rgb"

    def __init__(self, config: MertensConfig | None = None):
        super().__init__()
        self.config = config or MertensConfig()

    def weights(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Normalised weight maps ``(2, N, 1, H, W)`` (sum 1 over the first axis) for RGB/gray inputs."""
        cfg = self.config
        if a.shape[1] == 1:  # gray: exactly as the same image stored as RGB
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        x = torch.stack([a, b])  # (2, N, C, H, W)
        k, n, c, h, w = x.shape
        flat = x.reshape(k * n, c, h, w)
        if c == 3:  # luma, as rgb2gray in the authors' MATLAB code
            gray = (flat * flat.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        else:  # other channel counts: plain mean
            gray = flat.mean(dim=1, keepdim=True)
        lap = torch.tensor(_LAPLACE, dtype=x.dtype, device=x.device).view(1, 1, 3, 3)
        contrast = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), lap).abs()
        exposed = torch.exp(-((flat - 0.5) ** 2) / (2.0 * cfg.sigma**2)).prod(dim=1, keepdim=True)
        weight = contrast.pow(cfg.contrast_weight) * exposed.pow(cfg.exposedness_weight)
        weight = weight.reshape(k, n, 1, h, w)
        if c > 1:
            saturation = flat.std(dim=1, unbiased=False, keepdim=True).reshape(k, n, 1, h, w)
            # a pair of gray images stored as RGB has zero saturation everywhere: leave the term
            # out for such samples instead of zeroing every weight
            gray_pair = saturation.amax(dim=(0, 2, 3, 4)) <= 1e-6  # (N,)
            sat_term = saturation.pow(cfg.saturation_weight)
            weight = weight * torch.where(gray_pair.view(1, n, 1, 1, 1), torch.ones_like(sat_term), sat_term)
        weight = weight + cfg.eps
        return weight / weight.sum(dim=0, keepdim=True)

    def fuse(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        n, c, h, w = a.shape
        if c == 1:  # gray: fuse the replicated RGB image, return one channel
            return self.fuse(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1))[:, :1]
        weights = self.weights(a, b)
        deepest = max_levels(h, w, cfg.min_size)
        levels = deepest if cfg.levels is None else min(cfg.levels, deepest)
        img_pyr = laplacian_pyramid(torch.cat([a, b], dim=0), levels)  # (2N, C, ., .) per level
        w_pyr = gaussian_pyramid(weights.reshape(2 * n, 1, h, w), levels)
        fused = [(lw[:n] * li[:n] + lw[n:] * li[n:]) for li, lw in zip(img_pyr, w_pyr)]
        return collapse(fused)

    def _frame_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(1, 3, H, W)`` -> (``C^wc * E^we`` ``(1, 1, H, W)``, saturation std ``(1, 1, H, W)``), as :meth:`weights`."""
        cfg = self.config
        gray = (x * x.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        lap = torch.tensor(_LAPLACE, dtype=x.dtype, device=x.device).view(1, 1, 3, 3)
        contrast = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), lap).abs()
        exposed = (x - 0.5).square_().div_(-(2.0 * cfg.sigma**2)).exp_().prod(dim=1, keepdim=True)  # in place
        return contrast.pow(cfg.contrast_weight) * exposed.pow(cfg.exposedness_weight), x.std(dim=1, unbiased=False, keepdim=True)

    def _fuse_frames(self, frames) -> torch.Tensor:
        """K frames in two streaming passes.

        Pass 1 sums the per-frame weights (with and without the saturation term; the latter is
        used when every frame is gray, as for a gray pair); pass 2 blends frame by frame, each
        with the Gaussian pyramid of its normalised weight, into one accumulated Laplacian
        pyramid. At most one frame's pyramids are alive at a time (plus the accumulator).
        """
        cfg = self.config
        rgb = lambda t: t.float().expand(-1, 3, -1, -1) if t.shape[1] == 1 else t.float()  # noqa: E731
        gray_in = frames[0].shape[1] == 1
        total_sat = total_plain = None
        sat_max = 0.0
        for k in range(len(frames)):
            base, sat = self._frame_terms(rgb(frames[k]))
            sat_max = max(sat_max, float(sat.max()))
            ws, wp = base * sat.pow(cfg.saturation_weight) + cfg.eps, base + cfg.eps
            total_sat = ws if total_sat is None else total_sat.add_(ws)
            total_plain = wp if total_plain is None else total_plain.add_(wp)
        use_sat = sat_max > 1e-6
        total = total_sat if use_sat else total_plain
        del total_sat, total_plain
        h, w = frames[0].shape[-2:]
        deepest = max_levels(h, w, cfg.min_size)
        levels = deepest if cfg.levels is None else min(cfg.levels, deepest)
        acc = None
        for k in range(len(frames)):
            x = rgb(frames[k])
            base, sat = self._frame_terms(x)
            wk = (base * sat.pow(cfg.saturation_weight) if use_sat else base).add_(cfg.eps).div_(total)
            del base, sat
            w_pyr = gaussian_pyramid(wk, levels)
            i_pyr = laplacian_pyramid(x, levels)
            del x, wk
            if acc is None:
                acc = [li.mul_(lw) for li, lw in zip(i_pyr, w_pyr)]  # in place: no extra pyramid
            else:
                for a, li, lw in zip(acc, i_pyr, w_pyr):
                    a.addcmul_(li, lw)
            del i_pyr, w_pyr
        out = collapse(acc)
        return out[:, :1] if gray_in else out

    def extra_repr(self) -> str:
        return f"sigma={self.config.sigma}, levels={self.config.levels}"


@register_model("mertens", description="training-free baseline: Mertens et al. 2007 exposure fusion (RGB)",
                family="baseline", input_mode="rgb", trainable=False)
def mertens(**config) -> MertensFusion:
    """Mertens exposure fusion; options: see :class:`MertensConfig`."""
    return MertensFusion(build_config(MertensConfig, "mertens", config))
