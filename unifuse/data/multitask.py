"""Multi-task batching, official "mixed_equal" (stub; implementation in progress)."""

from __future__ import annotations

from typing import Any, Union


class MultiTaskBatches:
    """Infinite iterator: ``next()`` -> {task: {"A": (b,1,h,w), "B": ..., "names": [...]}} with one batch per task.

    ``batch_size`` is the GLOBAL per-task batch; rank ``rank`` of ``world_size`` gets its contiguous slice.
    ``state_dict()`` / ``load_state_dict()`` resume exactly.
    """

    def __init__(self, datasets: dict[str, Union[list, Any]], batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0):
        raise NotImplementedError

    def __iter__(self) -> "MultiTaskBatches":
        return self

    def __next__(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
