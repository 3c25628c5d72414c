"""N-source fusion with any two-input model: a reduction over pairs.

A two-input network ``f(a, b)`` fuses a stack of K sources by repeated pairwise fusion:

* ``sequential``: ``F = f(x1, x2)``, then ``F = f(F, x3)``, ... ``f(F, xK)`` (K - 1 calls,
  one intermediate alive; the running result stays in the A slot);
* ``tree``: neighbours are fused in pairs, level by level, ``f(f(x1, x2), f(x3, x4))``, ...;
  an odd one out passes to the next level unchanged (K - 1 calls, about K/2 intermediates).

before which the sources are put in an ``order``:

* ``input``: as given;
* ``exposure``: by mean luma, brightest first (TITA's convention puts the over-exposed
  source in A), so neighbours in the order have neighbouring exposures;
* ``focus``: by focus measure (mean absolute Laplacian of the luma), sharpest first;
* ``auto``: ``exposure`` when the stack is an exposure bracket (mean lumas span more than
  :data:`EXPOSURE_SPREAD`), ``focus`` otherwise.

With two sources the given order is kept (A = first, B = second), as in pair mode. The
default (:data:`DEFAULT_REDUCTION`, :data:`DEFAULT_ORDER`) was chosen by measurement on
synthetic brackets and focal stacks with ground truth: ``python scripts/stacks_report.py``,
see ``docs/stacks.md``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["REDUCTIONS", "ORDERS", "EXPOSURE_SPREAD", "DEFAULT_REDUCTION", "DEFAULT_ORDER", "order_sources", "reduce_pairwise",
           "focus_measure"]

REDUCTIONS: tuple[str, ...] = ("sequential", "tree")
ORDERS: tuple[str, ...] = ("input", "exposure", "focus", "auto")
#: mean-luma span above which a stack counts as an exposure bracket (order "auto", reference rule)
EXPOSURE_SPREAD = 0.1
#: chosen from the measured comparison in docs/stacks.md
DEFAULT_REDUCTION = "tree"
DEFAULT_ORDER = "exposure"


def check_reduction(reduction: str, order: str) -> None:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"--reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if order not in ORDERS:
        raise ConfigError(f"--order must be one of {', '.join(ORDERS)}, got {order!r}")


def focus_measure(y: np.ndarray) -> float:
    """Mean absolute 4-neighbour Laplacian of a luma ``(H, W)`` (larger = sharper)."""
    y = np.asarray(y, np.float32)
    if min(y.shape) < 3:
        return 0.0
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.abs(lap).mean())


def order_sources(mean_luma: Sequence[float], focus: Sequence[float] | None, order: str) -> list[int]:
    """Indices of the sources in the requested order (stable: ties keep the input order)."""
    n = len(mean_luma)
    if order == "input" or n <= 2:
        return list(range(n))
    if order == "auto":
        order = "exposure" if max(mean_luma) - min(mean_luma) > EXPOSURE_SPREAD else "focus"
    if order == "exposure":
        return sorted(range(n), key=lambda k: -mean_luma[k])
    if order == "focus":
        if focus is None:
            raise ConfigError("order 'focus' needs focus measures")
        return sorted(range(n), key=lambda k: -focus[k])
    raise ConfigError(f"--order must be one of {', '.join(ORDERS)}, got {order!r}")


def reduce_pairwise(get: Callable[[int], torch.Tensor], indices: Sequence[int],
                    pair: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], reduction: str = DEFAULT_REDUCTION,
                    progress: Callable[[], None] | None = None) -> torch.Tensor:
    """Fuse the sources ``get(k)`` for ``k`` in ``indices`` (in that order) with the two-input ``pair``.

    Args:
        get: source ``k`` -> ``(1, C, H, W)`` float tensor in [0, 1] (produced on demand).
        indices: order of the sources (at least two).
        pair: ``(a, b)`` -> fused ``(1, C, H, W)`` (clamped to [0, 1] here).
        reduction: ``"sequential"`` or ``"tree"`` (module doc).
        progress: called after every pair fusion.
    Returns:
        ``(1, C, H, W)`` float tensor.
    """
    if len(indices) < 2:
        raise ConfigError(f"a reduction needs at least two sources, got {len(indices)}")
    step = lambda a, b: _tick(pair(a, b).clamp(0.0, 1.0), progress)  # noqa: E731
    if reduction == "sequential":
        acc = step(get(indices[0]), get(indices[1]))
        for k in indices[2:]:
            acc = step(acc, get(k))
        return acc
    if reduction == "tree":
        level: list = list(indices)  # ints (not yet loaded) or tensors (intermediates)
        load = lambda x: get(x) if isinstance(x, int) else x  # noqa: E731
        while len(level) > 1:
            nxt = [step(load(level[i]), load(level[i + 1])) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return load(level[0])
    raise ConfigError(f"--reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def _tick(x: torch.Tensor, progress: Callable[[], None] | None) -> torch.Tensor:
    if progress is not None:
        progress()
    return x
