"""A run's training log summarised as a Markdown table (per block of iterations).

:func:`loss_table` reads ``train_log.csv`` of a ``unifuse train`` run folder and gives, for
each block of ``block`` consecutive iterations, the mean per-task loss, the task weights at
the block's last iteration and the mean training time per iteration — the table the training
docs show next to the curves (``unifuse plot-training DIR --table N``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List

import numpy as np

from ..errors import ConfigError
from .logging import prefixed_columns, read_columns


def _prefixed(cols: Dict[str, List[float]], prefix: str) -> Dict[str, np.ndarray]:
    return {name: np.asarray(v, dtype=np.float64) for name, v in prefixed_columns(cols, prefix).items()}


def _mean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def loss_table(run_dir: str | os.PathLike, block: int) -> str:
    """Markdown table of ``run_dir``'s training log in blocks of ``block`` iterations.

    Columns: iterations ``a–b``; mean loss per task over the block's logged, non-skipped
    iterations; task weights at the block's last logged iteration; mean seconds per iteration
    (from the cumulative ``time_s`` column). A last, shorter block is included.
    """
    if block < 1:
        raise ConfigError(f"block must be >= 1, got {block}")
    path = Path(run_dir) / "train_log.csv"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no train_log.csv here (not a `unifuse train` run folder)")
    cols = read_columns(path)
    steps = np.asarray(cols.get("step", []), dtype=np.float64)
    if steps.size == 0:
        raise ConfigError(f"{path}: the log has no rows yet")
    losses, weights = _prefixed(cols, "loss_"), _prefixed(cols, "weight_")
    skipped = np.asarray(cols.get("skipped", [0.0] * steps.size)) == 1
    time_s = np.asarray(cols.get("time_s", [math.nan] * steps.size), dtype=np.float64)
    tasks = list(losses)
    head = ["iterations", *[f"mean {t} loss" for t in tasks], f"weights ({' / '.join(weights)}) at the end", "s / iteration"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    last = int(steps.max())
    prev_time, prev_step = 0.0, 0
    for lo in range(1, last + 1, block):
        hi = min(lo + block - 1, last)
        rows = (steps >= lo) & (steps <= hi)
        if not rows.any():
            continue
        ok = rows & ~skipped
        means = [_mean(losses[t][ok]) for t in tasks]
        end = np.nonzero(rows)[0][-1]
        w = " / ".join(f"{weights[t][end]:.3f}" for t in weights)
        t_end, s_end = time_s[end], steps[end]
        per_it = (t_end - prev_time) / (s_end - prev_step) if math.isfinite(t_end) else math.nan
        prev_time, prev_step = t_end, s_end
        cells = [f"{lo}–{hi}", *[f"{m:.2f}" for m in means], w, f"{per_it:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
