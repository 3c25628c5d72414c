"""The metric registry: ``register_metric``, ``create``, ``list_metrics``, ``metric_info``.

Register a core (see :mod:`unifuse.metrics.base`)::

    from unifuse.metrics.registry import register_metric, Option

    register_metric(
        "qabf", qabf_core, higher_is_better=True, value_range=(0.0, 1.0),
        description="Xydeas-Petrovic gradient preservation",
        references=("VIFB Qabf", "MEFB Qabf", "CDDFuse Qabf"),
    )
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..registry import Registry
from .base import Metric, MetricSpec, Option, WRAPPERS

METRICS: Registry[Metric] = Registry("metric")


def register_metric(
    name: str,
    core: Callable,
    *,
    higher_is_better: Optional[bool],
    value_range: Tuple[float, float],
    description: str,
    wrapper: Union[str, Callable[[Dict[str, Any]], str]] = "vifb",
    options: Sequence[Option] = (),
    references: Sequence[str] = (),
    fused_only: bool = False,
    default: bool = True,
    preset: Optional[Dict[str, Any]] = None,
    cost: float = 50.0,
) -> MetricSpec:
    """Register ``core`` under ``name`` (lowercase). Returns the :class:`MetricSpec`.

    ``wrapper``: 'vifb', 'mefb', 'side_by_side', 'gray' or a callable of the options.
    ``default``: include it in the default suite of :func:`unifuse.metrics.evaluate`.
    ``preset``: options fixed for this name (aliases of a variant).
    ``cost``: relative run time (scheduling hint: the slowest metrics start first).
    """
    if isinstance(wrapper, str) and wrapper not in WRAPPERS:
        raise ValueError(f"unknown wrapper {wrapper!r}")
    spec = MetricSpec(
        name=name.lower(),
        core=core,
        higher_is_better=higher_is_better,
        value_range=tuple(value_range),
        description=description,
        wrapper=wrapper,
        options=tuple(options),
        references=tuple(references),
        fused_only=fused_only,
        default=default,
        preset=dict(preset or {}),
        cost=float(cost),
    )

    def factory(**opts: Any) -> Metric:
        return Metric(spec, **opts)

    factory.spec = spec  # type: ignore[attr-defined]
    METRICS.register(spec.name, description, spec=spec, higher_is_better=higher_is_better)(factory)
    return spec


def create(name: str, **options: Any) -> Metric:
    """Create a configured :class:`Metric` by name, e.g. ``create('psnr', convention='standard')``.

    Raises :class:`unifuse.errors.ConfigError` for an unknown name or option.
    """
    return METRICS.get(name).factory(**options)


def metric_info(name: str) -> MetricSpec:
    """The :class:`MetricSpec` of a registered metric."""
    return METRICS.get(name).tags["spec"]


def list_metrics(default_only: bool = False) -> List[str]:
    """Sorted names of the registered metrics (only the default suite if ``default_only``)."""
    return [e.name for e in METRICS if not default_only or e.tags["spec"].default]


def default_metrics() -> List[str]:
    """Names evaluated when ``metrics=None``."""
    return list_metrics(default_only=True)


__all__ = ["METRICS", "register_metric", "create", "metric_info", "list_metrics", "default_metrics", "Option"]
