"""Registers Qp, Zhao's phase-congruency fusion metric."""

from __future__ import annotations

from .functional import phase as fph
from .registry import register_metric

register_metric(
    "qp", fph.qp, higher_is_better=True, value_range=(0.0, 1.0), wrapper="mefb",
    cost=2500,
    description="Zhao et al.'s phase-congruency metric: product of PC, max- and min-moment correlations",
    references=("MEFB Qp (mefb_metrics_dev.csv 1e-12)",),
)
