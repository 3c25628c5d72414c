"""Degradation operators and their parameter draws (spec ``mmaif.md`` §1.7).

Every operator works on float32 ``(C, H, W)`` tensors in ``[0, 1]`` (C = 3 RGB or 1 grey), returns a
new tensor of the same shape clamped to ``[0, 1]``, and is a pure function of its parameter dict
(random parts — noise, rain/snow layers, fixed-pattern offsets — carry their own integer ``seed``).

Each type is a :class:`DegradationType` in :data:`TYPES` with

* ``draw(rng, h, w, ir)`` — parameters from the spec ranges using a numpy ``Generator`` (``ir``: the
  image is infrared, e.g. noise is then the same on all channels), JSON-serialisable;
* ``apply(x, params, ctx)`` — the operator; ``ctx`` holds shared per-pair data (the haze ``depth``
  map, cached weather ``layer``);
* ``ranges`` — the parameter ranges as text (``unifuse degrade --list``) and ``bounds`` — numeric
  ``(lo, hi)`` per scalar parameter, used by tests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .filters import convolve, gaussian_blur, line_kernel
from .weather import rain_layer, screen, snow_layer

SEED_MAX = 2**63 - 1


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, SEED_MAX))


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _normal(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(int(seed)).standard_normal(shape, dtype=np.float32))


# --------------------------------------------------------------------------------------------- operators
def op_gaussian_blur(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """Isotropic Gaussian, kernel ``2⌈3σ⌉+1``, reflect padding (separable)."""
    return gaussian_blur(x, p["sigma"]).clamp_(0, 1)


def op_motion_blur(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """Normalised anti-aliased line kernel (``length`` px, ``angle`` degrees), reflect padding."""
    return convolve(x, line_kernel(p["length"], p["angle"])).clamp_(0, 1)


def op_downsample(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """Area down-sampling by ``scale`` then bicubic up-sampling to the original size."""
    h, w = x.shape[-2:]
    s = int(p["scale"])
    small = F.adaptive_avg_pool2d(x[None], (max(1, h // s), max(1, w // s)))
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0].clamp_(0, 1)


def op_noise(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """Additive Gaussian noise of std ``sigma``: per channel, or one field on all channels."""
    c, h, w = x.shape
    n = _normal(p["seed"], (c if p["per_channel"] else 1, h, w))
    return (x + float(p["sigma"]) * n).clamp_(0, 1)


def op_jpeg(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """JPEG encode/decode in memory (Pillow, 8-bit) at ``quality``."""
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    arr = arr[0].numpy() if x.shape[0] == 1 else arr.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(p["quality"]))
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("L" if x.shape[0] == 1 else "RGB"))
    t = torch.from_numpy(out.copy()).float().div_(255)
    return (t[None] if t.dim() == 2 else t.permute(2, 0, 1)).contiguous().to(x.dtype)


def _airlight(p: dict, c: int) -> torch.Tensor:
    a = torch.tensor(p["airlight"], dtype=torch.float32)
    return (a.mean().view(1, 1, 1) if c == 1 else a.view(3, 1, 1))


def op_haze(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """Atmospheric scattering ``I = J·t + A·(1 − t)``, ``t = exp(−β·d)``, ``d = ctx["depth"]`` (1 = far)."""
    d = (ctx or {}).get("depth")
    if d is None:
        from .depth import PseudoDepth

        d = PseudoDepth()(x)
    t = torch.exp(-float(p["beta"]) * d.to(x.dtype))[None]
    return (x * t + _airlight(p, x.shape[0]) * (1 - t)).clamp_(0, 1)


def _veil(x: torch.Tensor, tv: float, light: float) -> torch.Tensor:
    return x * tv + light * (1 - tv)


def op_rain(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """Screen-composite the rain layer (``ctx["layer"]`` if shared, else generated), optional veil."""
    layer = (ctx or {}).get("layer")
    if layer is None:
        layer = rain_layer(x.shape[-2], x.shape[-1], p)
    y = screen(x, layer)
    if p["veil"] is not None:
        y = _veil(y, float(p["veil"]), 0.9)
    return y.clamp_(0, 1)


def op_snow(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """Screen-composite the snow layer, then a veil ``J·t_v + A·(1 − t_v)``."""
    layer = (ctx or {}).get("layer")
    if layer is None:
        layer = snow_layer(x.shape[-2], x.shape[-1], p)
    return _veil(screen(x, layer), float(p["veil"]), float(p["veil_light"])).clamp_(0, 1)


def op_low_exposure(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """``I = a·J^γ`` plus optional extra Gaussian noise of std ``noise_sigma`` (same on all channels)."""
    y = float(p["gain"]) * x.clamp(0, 1).pow(float(p["gamma"]))
    if p["noise_sigma"] > 0:
        y = y + float(p["noise_sigma"]) * _normal(p["seed"], (1, *x.shape[-2:]))
    return y.clamp_(0, 1)


def op_high_exposure(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """``I = clip(b·J^{1/γ})``."""
    return (float(p["gain"]) * x.clamp(0, 1).pow(1.0 / float(p["gamma"]))).clamp_(0, 1)


def op_low_contrast(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """``I = m + c·(J − m)``, ``m`` the per-channel mean of the image."""
    m = x.mean(dim=(-2, -1), keepdim=True)
    return (m + float(p["contrast"]) * (x - m)).clamp_(0, 1)


def strip_profile(length: int, bands: list[dict]) -> torch.Tensor:
    """1-D gain profile: 1 everywhere, ``factor`` inside each band, edges softened by a Gaussian σ = 1."""
    prof = torch.ones(1, 1, length)
    for b in bands:
        lo, hi = int(b["pos"]), int(b["pos"]) + int(b["width"])
        prof[..., lo:hi] = torch.minimum(prof[..., lo:hi], torch.tensor(float(b["factor"])))
    k = torch.tensor([np.exp(-0.5 * i * i) for i in range(-3, 4)], dtype=torch.float32)
    k = k / k.sum()
    mode = "reflect" if length > 3 else "replicate"
    return F.conv1d(F.pad(prof, (3, 3), mode=mode), k.view(1, 1, -1))[0, 0]


def op_ir_strips(x: torch.Tensor, p: dict, ctx: Optional[dict] = None) -> torch.Tensor:
    """Multiply dark bands (vertical or horizontal) by their factors; add a column fixed-pattern offset."""
    h, w = x.shape[-2:]
    if p["vertical"]:
        y = x * strip_profile(w, p["bands"]).view(1, 1, w)
    else:
        y = x * strip_profile(h, p["bands"]).view(1, h, 1)
    if p["fpn_std"] > 0:
        y = y + float(p["fpn_std"]) * _normal(p["seed"], (1, 1, w))
    return y.clamp_(0, 1)


# --------------------------------------------------------------------------------------------- draws
def draw_gaussian_blur(rng, h, w, ir=False):
    return {"sigma": _u(rng, 0.8, 3.0)}


def draw_ir_blur(rng):
    """The mild IR blur that accompanies weather on the visible image in IVF (σ ~ U(0.5, 1.5))."""
    return {"sigma": _u(rng, 0.5, 1.5)}


def draw_motion_blur(rng, h, w, ir=False):
    return {"length": int(rng.integers(7, 26)), "angle": _u(rng, 0.0, 180.0)}


def draw_downsample(rng, h, w, ir=False):
    return {"scale": int(rng.choice([2, 3, 4]))}


def draw_noise(rng, h, w, ir=False):
    sigma = _u(rng, 5.0, 50.0) / 255
    per_channel = bool(rng.random() < 0.6)
    return {"sigma": sigma, "per_channel": per_channel and not ir, "seed": _seed(rng)}


def draw_jpeg(rng, h, w, ir=False):
    return {"quality": int(rng.integers(15, 71))}


def draw_haze(rng, h, w, ir=False):
    a = _u(rng, 0.75, 1.0)
    jitter = rng.uniform(-0.03, 0.03, 3)
    return {"beta": _u(rng, 0.8, 2.8), "airlight": [float(min(1.0, max(0.0, a + j))) for j in jitter], "airlight_grey": a}


def draw_rain(rng, h, w, ir=False):
    def layer():
        return {"density": _u(rng, 0.001, 0.006), "length": int(rng.integers(15, 41)), "sigma": _u(rng, 0.5, 1.2),
                "seed": _seed(rng)}
    p = {"angle": 90.0 + _u(rng, -25.0, 25.0), "layers": [layer()], "scale": _u(rng, 0.5, 0.9)}
    if rng.random() < 0.5:
        p["layers"].append(layer())
    p["veil"] = _u(rng, 0.85, 0.95) if rng.random() < 0.5 else None
    return p


def draw_snow(rng, h, w, ir=False):
    layers = [{"density": _u(rng, 0.0005, 0.003), "blur_length": int(rng.integers(0, 9)),
               "blur_angle": _u(rng, 60.0, 120.0), "seed": _seed(rng)} for _ in range(int(rng.integers(2, 4)))]
    return {"layers": layers, "veil": _u(rng, 0.8, 0.95), "veil_light": _u(rng, 0.85, 1.0)}


def draw_low_exposure(rng, h, w, ir=False):
    p = {"gamma": _u(rng, 1.5, 3.0), "gain": _u(rng, 0.4, 0.8)}
    p["noise_sigma"] = _u(rng, 0.0, 5.0) / 255 if rng.random() < 0.5 else 0.0
    p["seed"] = _seed(rng)
    return p


def draw_high_exposure(rng, h, w, ir=False):
    return {"gamma": _u(rng, 1.2, 2.0), "gain": _u(rng, 1.2, 2.0)}


def draw_low_contrast(rng, h, w, ir=False):
    return {"contrast": _u(rng, 0.3, 0.7)}


def draw_ir_strips(rng, h, w, ir=True):
    vertical = bool(rng.random() < 0.7)
    length = w if vertical else h
    bands = []
    for _ in range(int(rng.integers(1, 7))):
        width = int(min(rng.integers(2, 25), length))
        bands.append({"pos": int(rng.integers(0, length - width + 1)), "width": width, "factor": _u(rng, 0.2, 0.7)})
    return {"vertical": vertical, "bands": bands, "fpn_std": _u(rng, 0.0, 0.03), "seed": _seed(rng)}


# --------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class DegradationType:
    """One degradation type: its operator, parameter draw and documented ranges."""

    name: str
    group: str  # weather | exposure | sensor | blur | resample | noise | compression
    apply: Callable[[torch.Tensor, dict, Optional[dict]], torch.Tensor]
    draw: Callable[..., dict]
    ranges: str
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return (self.apply.__doc__ or "").strip().splitlines()[0]


#: All types in the spec's physical order (haze → rain/snow → exposure/contrast → IR strips → blur →
#: down-sample → noise → JPEG); :func:`unifuse.data.degrade.compose.degrade_pair` applies them in this order.
TYPES: dict[str, DegradationType] = {t.name: t for t in [
    DegradationType("haze", "weather", op_haze, draw_haze,
                    "beta ~ U(0.8, 2.8); airlight A ~ U(0.75, 1.0) grey, per-channel jitter ±0.03; depth: pseudo (default) or user map",
                    {"beta": (0.8, 2.8), "airlight_grey": (0.75, 1.0)}),
    DegradationType("rain", "weather", op_rain, draw_rain,
                    "density ~ U(0.001, 0.006); length ~ U{15..40} px; angle 90° ± U(-25°, 25°); thickness sigma ~ U(0.5, 1.2); "
                    "scale ~ U(0.5, 0.9); 2nd layer p=0.5; veil t_v ~ U(0.85, 0.95) p=0.5",
                    {"angle": (65.0, 115.0), "scale": (0.5, 0.9)}),
    DegradationType("snow", "weather", op_snow, draw_snow,
                    "2-3 layers; density ~ U(0.0005, 0.003); flake radius ~ U(1, 4) px; brightness ~ U(0.7, 1.0); "
                    "motion length ~ U{0..8} at U(60°, 120°); veil t_v ~ U(0.8, 0.95), A ~ U(0.85, 1.0)",
                    {"veil": (0.8, 0.95), "veil_light": (0.85, 1.0)}),
    DegradationType("low_exposure", "exposure", op_low_exposure, draw_low_exposure,
                    "I = a*J^gamma; gamma ~ U(1.5, 3.0); a ~ U(0.4, 0.8); extra noise sigma ~ U(0, 5)/255 with p=0.5",
                    {"gamma": (1.5, 3.0), "gain": (0.4, 0.8), "noise_sigma": (0.0, 5 / 255)}),
    DegradationType("high_exposure", "exposure", op_high_exposure, draw_high_exposure,
                    "I = clip(b*J^(1/gamma)); gamma ~ U(1.2, 2.0); b ~ U(1.2, 2.0)",
                    {"gamma": (1.2, 2.0), "gain": (1.2, 2.0)}),
    DegradationType("low_contrast", "exposure", op_low_contrast, draw_low_contrast,
                    "I = m + c*(J - m), m per-channel mean; c ~ U(0.3, 0.7)", {"contrast": (0.3, 0.7)}),
    DegradationType("ir_strips", "sensor", op_ir_strips, draw_ir_strips,
                    "k ~ U{1..6} bands (vertical p=0.7), width ~ U{2..24} px, factor ~ U(0.2, 0.7), edges Gaussian sigma=1; "
                    "column offsets ~ N(0, s^2), s ~ U(0, 0.03)",
                    {"fpn_std": (0.0, 0.03)}),
    DegradationType("gaussian_blur", "blur", op_gaussian_blur, draw_gaussian_blur,
                    "sigma ~ U(0.8, 3.0), kernel 2*ceil(3 sigma)+1, reflect padding", {"sigma": (0.8, 3.0)}),
    DegradationType("motion_blur", "blur", op_motion_blur, draw_motion_blur,
                    "length ~ U{7..25} px, angle ~ U[0°, 180°)", {"length": (7, 25), "angle": (0.0, 180.0)}),
    DegradationType("downsample", "resample", op_downsample, draw_downsample,
                    "scale s ~ U{2, 3, 4}: area down, bicubic up", {"scale": (2, 4)}),
    DegradationType("noise", "noise", op_noise, draw_noise,
                    "sigma ~ U(5, 50)/255; per-channel p=0.6, else one field on all channels (always for IR)",
                    {"sigma": (5 / 255, 50 / 255)}),
    DegradationType("jpeg", "compression", op_jpeg, draw_jpeg,
                    "quality q ~ U{15..70} (Pillow encode/decode)", {"quality": (15, 70)}),
]}

#: Physical application order.
ORDER: tuple[str, ...] = tuple(TYPES)
