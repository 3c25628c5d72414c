"""Registers the human-perception metrics: Qcb (Chen-Blum), Qcv (Chen-Varshney), VIF (Han)."""

from __future__ import annotations

from .functional import perception as fp
from .functional import vif as fv
from .registry import Option, register_metric

BENCHMARK_CONVENTIONS = ("vifb", "mefb")


def _qcv(a, b, f, convention: str = "vifb"):
    return fp.qcv(a, b, f)


register_metric(
    "qcb", fp.qcb, higher_is_better=True, value_range=(0.0, 1.0),
    cost=400,
    wrapper=lambda o: o["convention"],
    options=(Option(
        "convention", "vifb", BENCHMARK_CONVENTIONS,
        "vifb: VIFB's code; mefb: MEFB's copy, which first divides uint8 images by 255 "
        "(im2double) so normalize1 rounds differently (<1e-3 relative), and MEFB's RGB wrapper",
    ),),
    description="Chen-Blum perceptual contrast-preservation metric (CSF + local contrast)",
    references=("VIFB Qcb (vifb_dev.csv rel 1e-4; mefb_metrics_dev.csv vifb.Qcb 1e-11)",
                "MEFB Qcb (convention='mefb'; mefb_metrics_dev.csv 1e-11)"),
)
register_metric(
    "qcv", _qcv, higher_is_better=False, value_range=(0.0, float("inf")),
    cost=160,
    wrapper=lambda o: o["convention"],
    options=(Option("convention", "vifb", BENCHMARK_CONVENTIONS,
                    "same core; selects the VIFB or MEFB RGB wrapper"),),
    description="Chen-Varshney CSF-weighted regional difference (lower is better; values in the hundreds)",
    references=("VIFB Qcv (vifb_dev.csv rel 1e-4)", "MEFB Qcv (mefb_metrics_dev.csv 1e-11)"),
)
register_metric(
    "vif", fv.vif_han, higher_is_better=True, value_range=(0.0, float("inf")), wrapper="mefb",
    cost=400,
    description="Han et al.'s fusion VIF (MEFB VIF; not CDDFuse's VIFF)",
    references=("MEFB VIF (mefb_metrics_dev.csv; <1e-6 where flat regions make the 1e-10 clamps rounding-dependent)",),
)
