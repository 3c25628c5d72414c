"""Multi-task loss weighting: ``create_weighting("famo" | "mean", n_tasks)``.

The interface and protocol are in :mod:`.base`; each weighting registers itself in its own
module (:mod:`.mean`, :mod:`.famo`), imported here. New weightings register from outside
with :func:`register_weighting`.
"""

from __future__ import annotations

from typing import Any

from .base import WEIGHTINGS, Weighting, register_weighting  # noqa: F401
from .famo import FAMO  # noqa: F401  (registers "famo")
from .mean import MeanWeighting  # noqa: F401  (registers "mean")


def create_weighting(name: str, n_tasks: int, **kw: Any) -> Weighting:
    """Build ``"famo"`` (default hyper-parameters lr=0.025, weight_decay=1e-3, eps=1e-8) or ``"mean"``."""
    return WEIGHTINGS.get(name).factory(n_tasks, **kw)


def list_weightings() -> list[str]:
    return WEIGHTINGS.names()
