"""Which implementation a computation takes: the CPU-tuned one or the accelerator one.

Several models and metrics have two implementations of the same values:

* **CPU-tuned** (CPU tensors): oneDNN linears with reordered weights, the C++ kernels of
  :mod:`unifuse.native`, scipy / numpy transforms, work in cache-sized bands, pieces shared
  out to worker threads (:mod:`unifuse.parallel`);
* **accelerator** (every other device, e.g. CUDA): whole-tensor PyTorch operations.

Every such branch asks :func:`cpu_tuned`. On a machine without an accelerator the
accelerator branches would never run, so :func:`accelerator_paths` makes CPU tensors take them
too: the tests run them on the CPU and compare with the CPU-tuned values (the logic that a
CUDA run executes, checked without a GPU; the tests that need a real GPU skip without one).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator, Union

import torch

__all__ = ["cpu_tuned", "accelerator_paths"]

_ACCELERATOR_PATHS: contextvars.ContextVar[bool] = contextvars.ContextVar("unifuse_accelerator_paths", default=False)


def cpu_tuned(x: Union[torch.Tensor, torch.device, str]) -> bool:
    """Whether a tensor (or a tensor on this device) takes the CPU-tuned implementations:
    True for the CPU unless inside :func:`accelerator_paths`, False for any other device."""
    device = x.device if isinstance(x, torch.Tensor) else torch.device(x)
    return device.type == "cpu" and not _ACCELERATOR_PATHS.get()


@contextlib.contextmanager
def accelerator_paths() -> Iterator[None]:
    """Inside the block, CPU tensors take the accelerator implementations (tests). A context
    variable: it holds in this thread and in the items :func:`unifuse.parallel.parallel_map`
    runs for it."""
    token = _ACCELERATOR_PATHS.set(True)
    try:
        yield
    finally:
        _ACCELERATOR_PATHS.reset(token)
