"""Registers the image-feature / difference metrics: SD, SF, AG, EI, PSNR, RMSE, MSE."""

from __future__ import annotations

from .functional import feature as ff
from .registry import Option, register_metric


def _sf(a, b, f, convention="vifb"):
    # vifb and mefb share the 2-D formula; they differ in the RGB wrapper only
    return ff.spatial_frequency(a, b, f, "cddfuse" if convention == "cddfuse" else "benchmark")


register_metric(
    "sd", ff.standard_deviation, higher_is_better=True, value_range=(0.0, 127.5), fused_only=True,
    description="Standard deviation of the fused image (VIFB 'Variance', MEFB SD)",
    references=("VIFB Variance", "MEFB SD", "CDDFuse SD (float32, ~1e-7)"),
)
register_metric(
    "sf", _sf, higher_is_better=True, value_range=(0.0, float("inf")), fused_only=True,
    wrapper=lambda o: "side_by_side" if o["convention"] == "vifb" else "vifb",
    options=(Option("convention", "vifb", ("vifb", "mefb", "cddfuse"),
                    "vifb: RGB channels side by side (VIFB quirk); mefb: per-channel mean; "
                    "cddfuse: means over the differences"),),
    description="Spatial frequency sqrt(RF + CF)",
    references=("VIFB Spatial_frequency (convention='vifb')", "MEFB Spatial_frequency ('mefb')", "CDDFuse SF ('cddfuse')"),
)
register_metric(
    "ag", ff.average_gradient, higher_is_better=True, value_range=(0.0, float("inf")), fused_only=True,
    options=(Option("convention", "benchmark", ("benchmark", "cddfuse"),
                    "benchmark: sum / ((M-1)(N-1)); cddfuse: mean over M*N"),),
    description="Average gradient sqrt((gx^2 + gy^2)/2)",
    references=("VIFB Avg_gradient", "MEFB Avg_gradient", "CDDFuse AG ('cddfuse')"),
)
register_metric(
    "ei", ff.edge_intensity, higher_is_better=True, value_range=(0.0, float("inf")), fused_only=True,
    description="Edge intensity: mean Sobel magnitude (replicate padding)",
    references=("VIFB Edge_intensity", "MEFB Edge_intensity"),
)
register_metric(
    "psnr", ff.psnr, higher_is_better=True, value_range=(0.0, float("inf")),
    options=(Option("convention", "benchmark", ("benchmark", "standard", "cddfuse"),
                    "benchmark: VIFB/MEFB 20log10(255/sqrt(MES)) (~55-62 dB); standard: 10log10(255^2/MSE); "
                    "cddfuse: 10log10(max(F)^2/MSE)"),),
    description="Peak signal-to-noise ratio against the sources (dB)",
    references=("VIFB Psnr", "MEFB Psnr", "CDDFuse PSNR ('cddfuse')"),
)
register_metric(
    "rmse", ff.rmse, higher_is_better=False, value_range=(0.0, float("inf")),
    options=(Option("convention", "benchmark", ("benchmark", "standard"),
                    "benchmark: VIFB's sqrt(sum)/MN (not an RMSE); standard: true RMSE"),),
    description="Root mean squared error against the sources (mean over the sources)",
    references=("VIFB Rmse",),
)
register_metric(
    "mse", ff.mse, higher_is_better=False, value_range=(0.0, 65025.0),
    description="Mean squared error against the sources (mean over the sources)",
    references=("CDDFuse MSE",),
)
