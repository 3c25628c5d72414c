"""Registers the SSIM-family metrics: SSIM (VIFB / CDDFuse), Qc, Qy, Qw and MEF-SSIM."""

from __future__ import annotations

from .functional import mef_ssim as fm
from .functional import structural as fs
from .registry import Option, register_metric

SSIM_CONVENTIONS = ("vifb", "cddfuse")
QCQY_CONVENTIONS = ("mefb", "stable")


def _ssim(a, b, f, convention: str = "vifb"):
    if convention == "cddfuse":
        return fs.ssim_cddfuse(a, b, f, data_range=2.0, float32=True)
    return fs.ssim_vifb(a, b, f)


def _qc(a, b, f, convention: str = "mefb"):
    return fs.qc(a, b, f, stable=convention == "stable")


def _qy(a, b, f, convention: str = "mefb"):
    return fs.qy(a, b, f, stable=convention == "stable")


_QCQY_OPTION = Option(
    "convention", "mefb", QCQY_CONVENTIONS,
    "mefb: the reference formula (C = 2e-16; on images with exactly flat 7x7 windows the value is "
    "rounding noise, e.g. 245 or -Inf, and not reproducible); stable: corrected, flat-window "
    "(co)variances set to exactly 0",
)

register_metric(
    "ssim", _ssim, higher_is_better=True, value_range=(-2.0, 2.0),
    cost=170,
    options=(Option(
        "convention", "vifb", SSIM_CONVENTIONS,
        "vifb: Wang's SSIM (11x11 Gaussian, L=255, 'valid') summed over the sources; cddfuse: "
        "skimage SSIM(F,X) with a 7x7 box, sample covariance and data_range=2, float32, summed",
    ),),
    description="Structural similarity with the sources, summed over the two sources (range [0, 2] in practice)",
    references=(
        "VIFB Ssim (convention='vifb'; vifb_dev.csv rel 1e-4, mefb_metrics_dev.csv vifb.Ssim 1e-11)",
        "CDDFuse SSIM (convention='cddfuse'; cddfuse_evaluator_dev.csv 2e-7)",
    ),
)
register_metric(
    "qc", _qc, higher_is_better=True, value_range=(0.0, 1.0), wrapper="mefb", options=(_QCQY_OPTION,),
    cost=270,
    description="Cvejic's SSIM-based metric weighted by the covariances with the fused image (MEFB Qc)",
    references=("MEFB Qc (mefb_metrics_dev.csv, VIFB-crop rows; ill-conditioned on flat windows)",),
)
register_metric(
    "qy", _qy, higher_is_better=True, value_range=(0.0, 1.0), wrapper="mefb", options=(_QCQY_OPTION,),
    cost=50,  # after the 7x7 moments it shares with qc
    description="Yang's SSIM-based metric (MEFB Qy)",
    references=("MEFB Qy (mefb_metrics_dev.csv, VIFB-crop rows; ill-conditioned on flat windows)",),
)
register_metric(
    "qw", fs.qw, higher_is_better=True, value_range=(-1.0, 1.0), wrapper="mefb",
    cost=300,
    description="Piella's edge-dependent fusion quality index on Prewitt edge maps (what MEFB calls Qw)",
    references=("MEFB Qw (mefb_metrics_dev.csv 1e-12)",),
)
register_metric(
    "mef_ssim", fm.mef_ssim, higher_is_better=True, value_range=(0.0, 1.0), wrapper="gray",
    cost=240,
    description="Ma et al.'s multi-scale MEF-SSIM on rgb2gray images (MEFB MEF_SSIM)",
    references=("MEFB MEF_SSIM (mefb_metrics_dev.csv 1e-12)",),
)
