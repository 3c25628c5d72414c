"""Multi-task batching as the official ``mixed_equal`` loader (TITA spec §8.1, §9.2).

Every call to ``next()`` returns **one batch of every task**, in the order of the ``datasets``
mapping. Each task has its own stream of shuffled epochs with ``drop_last``; when a task's epoch
is exhausted only that task is reshuffled. Several datasets of one task are concatenated (e.g.
RealMFF + MFI-WHU for MFF).

Determinism: the permutation and the per-sample crop seeds of epoch ``e`` of task ``t`` are drawn
from a generator seeded with ``(seed, crc32(t), e)``, and datasets produce samples as a pure
function ``get(index, crop_seed)``. The whole sequence of batches is therefore a function of
``seed`` alone, and the position (epoch, batch) of every stream is all the state there is —
``state_dict()``/``load_state_dict()`` resume exactly, even with a different ``world_size``.

Distributed: ``batch_size`` is the **global** per-task batch. Rank ``r`` of ``K`` loads only the
contiguous slice ``[r·b, (r+1)·b)`` with ``b = batch_size / K`` (``ConfigError`` if not divisible),
so the K ranks together see exactly the single-process batch.
"""

from __future__ import annotations

import bisect
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError, InputMismatchError


class ConcatPairs:
    """Concatenation of datasets following the ``get(index, seed)`` contract."""

    def __init__(self, datasets: Sequence[Any]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ConfigError("ConcatPairs: no datasets given")
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.offsets[-1]

    def get(self, index: int, seed: int = 0) -> dict[str, Any]:
        k = bisect.bisect_right(self.offsets, index) - 1
        ds = self.datasets[k]
        i = index - self.offsets[k]
        return ds.get(i, seed) if hasattr(ds, "get") else ds[i]


def collate(samples: Sequence[dict[str, Any]], task: str = "") -> dict[str, Any]:
    """Stack the tensor entries of sample dicts to (b, C, h, w); gather ``"name"`` into ``"names"``.

    Only tensor entries present in every sample are batched (a task mixing folder pairs with
    synthetic pairs drops the synthetic ``"GT"``). Degraded samples (:mod:`unifuse.data.degrade`):
    ``"A_clean"``/``"B_clean"`` fall back to ``"A"``/``"B"`` for samples without them, and the text
    entries become ``"prompts"`` (list of str, ``""`` if absent; also under ``"prompt"``) and
    ``"degradations"`` (list of tuples)."""
    if any("A_clean" in s for s in samples):
        samples = [s if "A_clean" in s else {**s, "A_clean": s["A"], "B_clean": s["B"]} for s in samples]
    out: dict[str, Any] = {}
    for key, val in samples[0].items():
        if isinstance(val, torch.Tensor) and all(isinstance(s.get(key), torch.Tensor) for s in samples):
            shapes = {tuple(s[key].shape) for s in samples}
            if len(shapes) > 1:
                raise InputMismatchError(f"task {task}: cannot batch samples of different sizes {sorted(shapes)} (set a crop size)")
            out[key] = torch.stack([s[key] for s in samples], 0)
    out["names"] = [str(s.get("name", "")) for s in samples]
    if any("prompt" in s or "degradations" in s for s in samples):
        out["prompts"] = [str(s.get("prompt", "")) for s in samples]
        out["prompt"] = out["prompts"]  # the same list under the sample key (what the MMAIF objective reads)
        out["degradations"] = [tuple(s.get("degradations", ())) for s in samples]
    return out


class _TaskStream:
    """Shuffled epochs with drop_last over one task's (concatenated) dataset, in global-batch units."""

    def __init__(self, task: str, dataset: ConcatPairs, batch_size: int, seed: int):
        self.task, self.dataset, self.batch_size, self.seed = task, dataset, batch_size, seed
        self.n = len(dataset)
        self.batches_per_epoch = self.n // batch_size
        if self.batches_per_epoch < 1:
            raise ConfigError(f"task {task}: {self.n} samples is fewer than the batch size {batch_size}")
        self.epoch, self.batch = 0, 0
        self._plan_epoch: Optional[int] = None
        self._perm = self._seeds = np.empty(0, dtype=np.int64)

    def _plan(self) -> None:
        if self._plan_epoch != self.epoch:
            key = zlib.crc32(self.task.encode())
            rng = np.random.default_rng([self.seed & ((1 << 64) - 1), key, self.epoch])
            self._perm = rng.permutation(self.n)
            self._seeds = rng.integers(0, 2**62, size=self.n)
            self._plan_epoch = self.epoch

    def take(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """(index, crop_seed) for positions [lo, hi) of the current global batch, then advance the stream."""
        self._plan()
        start = self.batch * self.batch_size
        items = [(int(self._perm[start + j]), int(self._seeds[start + j])) for j in range(lo, hi)]
        self.batch += 1
        if self.batch == self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        return items


class MultiTaskBatches:
    """Infinite iterator of ``{task: {"A": (b,C,h,w), "B": ..., "names": [...]}}`` with one batch per task.

    ``datasets``: ``{task: dataset | [dataset, ...]}`` (order = task order); each dataset has ``len``
    and ``get(index, seed)`` (see :mod:`unifuse.data.datasets`). Extra tensor entries (``"GT"``)
    are batched too. ``num_workers > 0`` loads the samples of a batch in a thread pool (same result).
    """

    def __init__(self, datasets: dict[str, Union[Sequence[Any], Any]], batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0):
        if not isinstance(datasets, dict) or not datasets:
            raise ConfigError("MultiTaskBatches: datasets must be a non-empty mapping task -> dataset(s)")
        batch_size, world_size, rank = int(batch_size), int(world_size), int(rank)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not valid for world_size {world_size}")
        if batch_size % world_size:
            raise ConfigError(f"global batch_size {batch_size} is not divisible by world_size {world_size}")
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, int(seed), rank, world_size
        self.local_batch_size = batch_size // world_size
        self.streams: dict[str, _TaskStream] = {}
        for task, ds in datasets.items():
            parts = list(ds) if isinstance(ds, (list, tuple)) else [ds]
            self.streams[str(task)] = _TaskStream(str(task), ConcatPairs(parts), batch_size, self.seed)
        self.iteration = 0
        self.num_workers = int(num_workers)
        self._pool = ThreadPoolExecutor(self.num_workers) if self.num_workers > 0 else None

    @property
    def tasks(self) -> list[str]:
        return list(self.streams)

    @property
    def batches_per_epoch(self) -> dict[str, int]:
        """Batches in one epoch of each task (⌊n / batch_size⌋)."""
        return {t: s.batches_per_epoch for t, s in self.streams.items()}

    @property
    def epoch_length(self) -> int:
        """Iterations in one "epoch" as the official loop counts it: the largest task's batches per epoch."""
        return max(self.batches_per_epoch.values())

    def __iter__(self) -> "MultiTaskBatches":
        return self

    def __next__(self) -> dict[str, dict[str, Any]]:
        lo = self.rank * self.local_batch_size
        hi = lo + self.local_batch_size
        out: dict[str, dict[str, Any]] = {}
        for task, stream in self.streams.items():
            items = stream.take(lo, hi)
            if self._pool is not None:
                samples = list(self._pool.map(lambda it: stream.dataset.get(*it), items))
            else:
                samples = [stream.dataset.get(i, s) for i, s in items]
            out[task] = collate(samples, task)
        self.iteration += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        """Position of every task stream (plus what must match on resume)."""
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "iteration": self.iteration,
            "tasks": {t: {"epoch": s.epoch, "batch": s.batch, "size": s.n} for t, s in self.streams.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`; seed, global batch size, tasks and dataset sizes must match."""
        for key in ("seed", "batch_size"):
            if int(state[key]) != getattr(self, key):
                raise ConfigError(f"cannot resume batching: {key} was {state[key]}, now {getattr(self, key)}")
        tasks = state["tasks"]
        if list(tasks) != self.tasks:
            raise ConfigError(f"cannot resume batching: tasks were {list(tasks)}, now {self.tasks}")
        for t, st in tasks.items():
            s = self.streams[t]
            if int(st["size"]) != s.n:
                raise ConfigError(f"cannot resume batching: task {t} had {st['size']} samples, now {s.n}")
            s.epoch, s.batch = int(st["epoch"]), int(st["batch"])
        self.iteration = int(state["iteration"])

    def close(self) -> None:
        """Shut the thread pool down (if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
