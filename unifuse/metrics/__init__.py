"""Fusion metrics reproducing VIFB, MEFB (MATLAB) and CDDFuse's Evaluator.

Quick use::

    from unifuse import metrics
    metrics.list_metrics()
    metrics.evaluate("fused.png", "vi.png", "ir.png")                  # default suite, native RGB
    metrics.evaluate(f, a, b, metrics=["en", "mi", "qabf"], mode="gray")
    metrics.evaluate(f, a, b, metrics={"psnr": {"convention": "standard"}})
    m = metrics.create("fmi", feature="pixel"); m(a_t, b_t, f_t)      # batched tensors

Every module in this package other than the framework (``base``, ``registry``, ``api``) and
``functional`` registers metrics on import; they are all imported here.
"""

from __future__ import annotations

import importlib
import pkgutil

from .api import evaluate, evaluate_batch, read_image, resolve_metrics, to_tensor  # noqa: F401
from .base import Metric, MetricSpec, Option  # noqa: F401
from .registry import METRICS, create, default_metrics, list_metrics, metric_info, register_metric  # noqa: F401

_FRAMEWORK = {"base", "registry", "api", "functional"}

for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _m.name not in _FRAMEWORK and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = [
    "evaluate",
    "evaluate_batch",
    "create",
    "list_metrics",
    "default_metrics",
    "metric_info",
    "register_metric",
    "Metric",
    "MetricSpec",
    "Option",
    "to_tensor",
    "read_image",
]
