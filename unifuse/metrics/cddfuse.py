"""Registers the metrics found only in CDDFuse's Evaluator: CC, SCD, VIFF, SSIM (skimage)."""

from __future__ import annotations

from .functional import cddfuse as fc
from .registry import Option, register_metric

register_metric(
    "cc", fc.correlation_coefficient, higher_is_better=True, value_range=(-1.0, 1.0),
    description="Pearson correlation with the sources, mean over the sources",
    references=("CDDFuse CC",),
)
register_metric(
    "scd", fc.scd, higher_is_better=True, value_range=(-2.0, 2.0),
    description="Sum of the correlations of differences r(A, F-B) + r(B, F-A)",
    references=("CDDFuse SCD",),
)
register_metric(
    "viff", fc.viff, higher_is_better=True, value_range=(0.0, float("inf")),
    cost=60,  # after the VIF pyramid it shares with vif (scheduled later, so it finds it ready)
    description="Sheikh's pixel VIF summed over the sources (CDDFuse 'VIF'; not MEFB's VIF)",
    references=("CDDFuse VIFF",),
)
register_metric(
    "ssim_cddfuse", fc.ssim_cddfuse, higher_is_better=True, value_range=(-2.0, 2.0), default=False,
    options=(Option("data_range", 2.0, None, "skimage data_range; 2 reproduces CDDFuse (skimage < 0.20)"),),
    description="skimage SSIM(F,A)+SSIM(F,B) with data_range=2 in float32, as reported by CDDFuse "
                "(same implementation as ssim with convention='cddfuse')",
    references=("CDDFuse SSIM (cddfuse_evaluator_dev.csv 2e-7)",),
)
