"""Training-free fusion baselines, registered as ``average``, ``max``, ``laplacian``, ``mertens``."""

from .average import AverageFusion  # noqa: F401
from .base import BaselineFusion  # noqa: F401
from .laplacian import LaplacianConfig, LaplacianFusion  # noqa: F401
from .maximum import MaxFusion  # noqa: F401
from .mertens import MertensConfig, MertensFusion  # noqa: F401

__all__ = ["BaselineFusion", "AverageFusion", "MaxFusion", "LaplacianFusion", "LaplacianConfig", "MertensFusion", "MertensConfig"]
