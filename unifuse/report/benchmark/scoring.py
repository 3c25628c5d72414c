"""Scoring for the benchmark report: published fused images (cached) and our models.

Every score is one :func:`unifuse.metrics.evaluate` call on ``(fused, a, b)`` in the suite's
source order, the machinery behind ``unifuse eval``. Our models fuse the two source *files*
with :class:`unifuse.inference.fuse.Fuser` (colour restored by the fuser's default
``weighted`` chroma rule) and are scored on the 8-bit image the fuser returns, i.e. the PNG a
user would save — as the published methods are scored on their published 8-bit files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from tqdm import tqdm

from .cache import MetricCache, triple_key
from .suites import Suite

Row = Dict[str, Any]  # {"method", "image", "kind", <metric>: float, ["fuse_s": float]}


@dataclass
class ModelSpec:
    """A model of ours to fuse with: registry ``name`` and ``weights`` (for :class:`Fuser`)."""

    name: str
    weights: Any = None
    label: Optional[str] = None
    kind: str = "baseline"  # "ours" (the model the report ranks) or "baseline"
    options: Optional[Dict[str, Any]] = None  # forward options of the model (Fuser model_options), e.g. {"mode": "flow"}

    @property
    def title(self) -> str:
        return self.label or self.name


def _bar(items: Sequence, desc: str, progress: bool):
    return tqdm(items, desc=desc, unit="img", disable=not progress, leave=False, dynamic_ncols=True)


def score_published(suite: Suite, metrics: Sequence[str], mode: str, cache: MetricCache,
                    progress: bool = True, on_update: Optional[Callable[[], None]] = None) -> List[Row]:
    """Scores of every published method in ``suite``, from ``cache`` where the files are unchanged."""
    from ...metrics import evaluate

    rows: List[Row] = []
    jobs = [(m, p) for m in suite.published for p in suite.pairs]
    for method, pair in _bar(jobs, f"{suite.name} published", progress):
        fused = suite.published[method][pair.stem]
        key = triple_key(fused, pair.a, pair.b, mode)
        vals = cache.get(method, pair.stem, key, metrics)
        todo = [m for m in metrics if m not in vals]
        if todo:
            vals.update(evaluate(fused, pair.a, pair.b, metrics=todo, mode=mode))
            cache.put(method, pair.stem, key, vals)
            if on_update is not None:
                on_update()
        rows.append({"method": method, "image": pair.stem, "kind": "published", **{m: vals[m] for m in metrics}})
    return rows


def make_fuser(spec: ModelSpec):
    from ...inference.fuse import Fuser

    return Fuser(spec.name, weights=spec.weights, model_options=spec.options)


def score_model(suite: Suite, spec: ModelSpec, metrics: Sequence[str], mode: str, fuser=None,
                progress: bool = True) -> List[Row]:
    """Fuse every pair of ``suite`` with ``spec`` and score the results; ``fuse_s`` = fusion time."""
    from ...metrics import evaluate

    from ..pairs import with_task

    fuser = with_task(fuser if fuser is not None else make_fuser(spec), suite.task)
    rows: List[Row] = []
    for pair in _bar(suite.pairs, f"{suite.name} {spec.title}", progress):
        t0 = time.perf_counter()
        fused = fuser(pair.a, pair.b, output="pil")
        dt = time.perf_counter() - t0
        vals = evaluate(fused, pair.a, pair.b, metrics=list(metrics), mode=mode)
        rows.append({"method": spec.title, "image": pair.stem, "kind": spec.kind, **vals, "fuse_s": dt})
    return rows
