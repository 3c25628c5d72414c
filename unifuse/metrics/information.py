"""Registers the information-theory metrics: EN, CE, MI, NMI, FMI (+ variants), TE, Qncie."""

from __future__ import annotations

from .functional import information as fi
from .registry import Option, register_metric

register_metric(
    "en", fi.entropy, higher_is_better=True, value_range=(0.0, 8.0), fused_only=True,
    description="Entropy of the fused image (bits, 256-bin histogram)",
    references=("VIFB Entropy", "MEFB Entropy", "CDDFuse EN (identical)"),
)
register_metric(
    "ce", fi.cross_entropy, higher_is_better=False, value_range=(0.0, float("inf")),
    description="Cross entropy KL(source||fused), bits, mean over the sources",
    references=("VIFB Cross_entropy", "MEFB Cross_entropy"),
)
register_metric(
    "mi", fi.mutual_information, higher_is_better=True, value_range=(0.0, float("inf")),
    description="Mutual information MI(A,F)+MI(B,F) in nats (VIFB Mutinf)",
    references=("VIFB Mutinf", "CDDFuse MI (identical on the same gray images)"),
)
register_metric(
    "nmi", fi.nmi, higher_is_better=True, value_range=(0.0, 2.0), wrapper="mefb",
    description="Hossny's normalised mutual information (MEFB NMI)",
    references=("MEFB NMI",),
)
_FMI_FEATURE = Option("feature", "edge", ("edge", "pixel", "gradient"),
                      "edge: MATLAB edge() Sobel maps (MEFB default); pixel: raw values; gradient: x-gradient")
_FMI_WINDOW = Option("window", 3, None, "odd sliding-window size (MEFB: 3)")
register_metric(
    "fmi", fi.fmi, higher_is_better=True, value_range=(0.0, 1.0), wrapper="mefb",
    cost=100,
    options=(_FMI_FEATURE, _FMI_WINDOW),
    description="Feature mutual information (Haghighat fast-FMI, edge features, 3x3 windows)",
    references=("MEFB FMI (edge, w=3)", "harness extra.FMI_pixel / extra.FMI_gradient"),
)
register_metric(
    "fmi_pixel", fi.fmi, higher_is_better=True, value_range=(0.0, 1.0), wrapper="mefb",
    options=(_FMI_WINDOW,), preset={"feature": "pixel"}, default=False,
    description="FMI on raw pixels (fmi with feature='pixel')",
    references=("harness extra.FMI_pixel",),
)
register_metric(
    "fmi_gradient", fi.fmi, higher_is_better=True, value_range=(0.0, 1.0), wrapper="mefb",
    options=(_FMI_WINDOW,), preset={"feature": "gradient"}, default=False,
    description="FMI on x-gradients (fmi with feature='gradient')",
    references=("harness extra.FMI_gradient",),
)
register_metric(
    "te", fi.tsallis_entropy, higher_is_better=True, value_range=(float("-inf"), float("inf")), wrapper="mefb",
    options=(
        Option("variant", "benchmark", ("benchmark", "corrected"),
               "benchmark: MEFB's transposed marginals (values in the thousands); corrected: p_X(i) p_F(j)"),
        Option("q", 1.85, None, "Tsallis order"),
    ),
    description="Tsallis entropy TE(A,F)+TE(B,F), q=1.85 (benchmark variant copies MEFB's marginal bug)",
    references=("MEFB TE (variant='benchmark')",),
)
register_metric(
    "qncie", fi.qncie, higher_is_better=True, value_range=(0.0, 1.0), wrapper="mefb",
    description="Nonlinear correlation information entropy (MEFB Qncie)",
    references=("MEFB Qncie",),
)
