"""Registers Qabf, the Xydeas-Petrovic gradient-preservation metric."""

from __future__ import annotations

from .functional import qabf as fq
from .registry import Option, register_metric


def _qabf(a, b, f, convention: str = "vifb"):
    return fq.qabf(a, b, f)


register_metric(
    "qabf", _qabf, higher_is_better=True, value_range=(0.0, 1.0),
    cost=230,
    wrapper=lambda o: o["convention"],
    options=(Option("convention", "vifb", ("vifb", "mefb"),
                    "same core (VIFB and MEFB share the code); selects the VIFB or MEFB RGB wrapper"),),
    description="Xydeas-Petrovic edge (gradient strength and orientation) preservation",
    references=("VIFB Qabf (vifb_dev.csv rel 1e-4)", "MEFB Qabf (mefb_metrics_dev.csv 1e-12)",
                "CDDFuse Qabf (float32 there; 2e-7)"),
)
