"""Element-wise operations where torch's CPU kernels are slower than numpy's.

Only ``sqrt`` so far: for float64 on the CPU (torch 2.13, AVX2) ``torch.sqrt`` takes
~2.4 ns per element and is not correctly rounded (about 1 % of results differ from the
IEEE square root by an ulp), while numpy's ``sqrt`` (the hardware instruction) takes
~1.4 ns and is exact, like MATLAB's. Other functions (exp, log, pow, atan2) are faster in
torch and stay there.
"""

from __future__ import annotations

import numpy as np
import torch

from ...backend import cpu_tuned

Tensor = torch.Tensor

__all__ = ["sqrt_", "sqrt"]


def _numpy_ok(x: Tensor) -> bool:
    return cpu_tuned(x) and not x.requires_grad and x.dtype in (torch.float64, torch.float32)


def sqrt_(x: Tensor) -> Tensor:
    """In-place square root of a tensor (any shape / strides); returns ``x``."""
    if _numpy_ok(x):
        a = x.numpy()
        np.sqrt(a, out=a)
        return x
    return x.sqrt_()


def sqrt(x: Tensor) -> Tensor:
    """Square root of a tensor into a new tensor (same shape, contiguous on the CPU)."""
    if _numpy_ok(x):
        return torch.from_numpy(np.sqrt(x.numpy()))
    return torch.sqrt(x)
