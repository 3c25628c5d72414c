"""Han et al. (2013) fusion VIF, as MEFB's ``metricsVIF`` computes it.

Not Sheikh's VIF/VIFp and not CDDFuse's ``VIFF`` (a sum of two VIFp values with
``sigma_n^2 = 2``): the names collide, the values are unrelated (spec section 3).

Core: ``vif_han(a, b, f)`` with float64 ``(N, H, W)`` tensors holding 0..255 values (source
1, source 2, fused); returns ``(N,)``, higher is better (typically [0, 1]).
For each source X against F and each scale s = 1..4 (Gaussian window of size
``2^(5-s) + 1`` = 17, 9, 5, 3 -- the reference's ``2^(4-scale+1)+1`` -- and sigma ``size/5``;
for s > 1 both images are first low-passed with that scale's window, ``filter2 'valid'``,
and decimated by 2):

* local statistics with ``filter2 'valid'``; ``g = s_XF / (s_X^2 + 1e-10)``,
  ``s_v^2 = s_F^2 - g s_XF`` with Sheikh's clamps (negative variances -> 0;
  ``s_X^2 < 1e-10`` -> g = 0, s_v^2 = s_F^2, s_X^2 = 0; ``s_F^2 < 1e-10`` -> g = 0, s_v^2 = 0;
  ``g < 0`` -> s_v^2 = s_F^2, g = 0; ``s_v^2 <= 1e-10`` -> 1e-10);
* ``VID = log10(1 + g^2 s_X^2 / (s_v^2 + s_n^2))``, ``VIND = log10(1 + s_X^2 / s_n^2)``,
  visual noise ``s_n^2 = 0.005 * 255^2``;
* per pixel the source with the **smaller g** supplies VID and VIND (ties: source 2);
* ``F_s = sum(VID + 1e-7) / sum(VIND + 1e-7)``; ``VIF = sum_s p_s F_s`` with
  ``p = [1, 0, 0.15, 1] / 2.15``.
"""

from __future__ import annotations

import torch

from .matlab import separable_filter2
from .shared import memo
from .structural import gaussian_1d

Tensor = torch.Tensor

__all__ = ["vif_han", "vif_pyramid", "SCALE_WEIGHTS", "VISUAL_NOISE"]

SCALE_WEIGHTS = (1.0 / 2.15, 0.0, 0.15 / 2.15, 1.0 / 2.15)
VISUAL_NOISE = 0.005 * 255.0 * 255.0
_C = 1e-7


def _vid_vind_g(sx: Tensor, sf: Tensor, sxf: Tensor, sigma_nsq: float):
    """Sheikh-style clamped VID, VIND and g maps for one source (all ``(N, h, w)``).

    The reference's chain of clamps (negative variances -> 0; ``s_X^2 < 1e-10``: g = 0,
    s_v^2 = s_F^2, s_X^2 = 0; ``s_F^2 < 1e-10``: g = 0, s_v^2 = 0; ``g < 0``: s_v^2 = s_F^2,
    g = 0; ``s_v^2 <= 1e-10`` -> 1e-10) folded into three selections (same values)."""
    zero = torch.zeros((), dtype=sx.dtype, device=sx.device)
    sx = torch.where(sx < 0, zero, sx)
    sf = torch.where(sf < 0, zero, sf)
    g = sxf / (sx + 1e-10)
    sv = sf - g * sxf
    low_x = sx < 1e-10
    low_f = sf < 1e-10
    # g < 0 is tested on g after the two clamps above, i.e. only where neither applies
    keep = ~(low_x | low_f | (g < 0))
    g = torch.where(keep, g, zero)
    sv = torch.where(keep, sv, torch.where(low_f, zero, sf))
    sx = torch.where(low_x, zero, sx)
    sv = torch.where(sv <= 1e-10, torch.full_like(sv, 1e-10), sv)
    vid = torch.log10(1.0 + g * g * sx / (sv + sigma_nsq))
    vind = torch.log10(1.0 + sx / sigma_nsq)
    return vid, vind, g


def vif_pyramid(a: Tensor, b: Tensor, f: Tensor):
    """Local statistics of the 4-scale pyramid shared by Han's VIF and Sheikh's VIFp (CDDFuse
    ``VIFF``): for scale s = 1..4 (Gaussian window ``2^(5-s)+1``, sigma ``size/5``; for
    s > 1 the images are low-passed with that window, ``'valid'``, and decimated by 2) the
    ``'valid'`` maps ``(var_src, var_f, cov_src_f)`` with ``src = [a; b]`` stacked along the
    batch: shapes ``(2N, h, w)``, ``(N, h, w)``, ``(2N, h, w)`` (variances unclamped).
    Computed once per triple inside :func:`.shared.shared_cache`."""

    def compute():
        n = a.shape[0]
        x = torch.cat([a, b, f]).double()  # (3n, H, W): the three images travel together
        out = []
        for s in range(1, 5):
            size = 2 ** (5 - s) + 1
            g = gaussian_1d(size, size / 5.0, device=a.device)
            if s > 1:
                x = separable_filter2(x, g, g, shape="valid")[..., ::2, ::2]
            xa, xb, xf = x.split(n)
            src = torch.cat([xa, xb])
            ff = torch.cat([xf, xf])
            stack = torch.cat([src, xf, src * src, xf * xf, src * ff])
            m = separable_filter2(stack, g, g, shape="valid")
            mu_s, mu_f, e_ss, e_ff, e_sf = m.split([2 * n, n, 2 * n, n, 2 * n])
            var_s = e_ss - mu_s * mu_s
            var_f = e_ff - mu_f * mu_f
            cov = e_sf - mu_s * mu_f.repeat(2, 1, 1)
            out.append((var_s, var_f, cov))
        return tuple(out)

    return memo("vif_pyramid", (a, b, f), None, compute)


def vif_han(a: Tensor, b: Tensor, f: Tensor, sigma_nsq: float = VISUAL_NOISE) -> Tensor:
    """Han's fusion VIF core (MEFB). ``(N, H, W)`` float64 0..255 -> ``(N,)``.

    Every scale has a non-empty valid region only if both sides are at least 41 px;
    smaller inputs give NaN (0/0, as in the reference)."""
    if not (a.shape == b.shape == f.shape) or a.ndim != 3:
        raise ValueError(f"expected three (N, H, W) tensors of equal shape, got {a.shape}, {b.shape}, {f.shape}")
    n = a.shape[0]
    total = torch.zeros(n, dtype=torch.float64, device=a.device)
    for s, (var_s, var_f, cov) in enumerate(vif_pyramid(a, b, f), start=1):
        vid, vind, gg = _vid_vind_g(var_s, var_f.repeat(2, 1, 1), cov, sigma_nsq)
        vid_a, vid_b = vid.split(n)
        vind_a, vind_b = vind.split(n)
        g_a, g_b = gg.split(n)
        pick_a = g_a < g_b
        vid_m = torch.where(pick_a, vid_a, vid_b)
        vind_m = torch.where(pick_a, vind_a, vind_b)
        fs = (vid_m + _C).sum(dim=(-2, -1)) / (vind_m + _C).sum(dim=(-2, -1))
        total = total + SCALE_WEIGHTS[s - 1] * fs
    return total
