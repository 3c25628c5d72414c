"""Common base of the training-free fusion baselines."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence, TypeVar

import torch
from torch import nn

from ...errors import ConfigError, InputMismatchError

T = TypeVar("T")


@dataclass(frozen=True)
class NoOptions:
    """Config of rules without options."""


class BaselineFusion(nn.Module):
    """A fusion rule without learned weights.

    Subclasses implement :meth:`fuse` on float32 ``(N, C, H, W)`` tensors in ``[0, 1]`` of
    equal shape; :meth:`forward` checks the inputs and clamps the result to ``[0, 1]``.
    Computation is always float32 (the rules are cheap), whatever the requested precision.

    Attributes:
        input_mode: ``"luma"`` (C = 1, colour restored by the pipeline) or ``"rgb"`` (C = 3).
        trainable: always ``False``.
    """

    input_mode = "luma"
    trainable = False

    def fuse(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` x 2 in ``[0, 1]`` -> fused ``(N, C, H, W)`` in ``[0, 1]`` (input dtype)."""
        if a.dim() != 4 or a.shape != b.shape:
            raise InputMismatchError(
                f"{type(self).__name__} expects two (N, C, H, W) tensors of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        dtype = a.dtype
        out = self.fuse(a.float(), b.float())
        return out.clamp_(0.0, 1.0).to(dtype)

    def fuse_frames(self, frames: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fuse ``K >= 2`` sources natively (the N-source form of the rule).

        Args:
            frames: a sequence whose item ``k`` is source ``k`` as a float32 ``(1, C, H, W)``
                tensor in ``[0, 1]``; items are produced on demand (e.g. decoded from a compact
                8-bit copy) and may be requested more than once, so only a few are alive at a
                time: implementations accumulate frame by frame.
        Returns:
            ``(1, C, H, W)`` in ``[0, 1]``. With two frames, equal to :meth:`forward` on them.
        """
        if len(frames) < 2:
            raise InputMismatchError(f"{type(self).__name__}: a stack needs at least two sources, got {len(frames)}")
        with torch.no_grad():
            return self._fuse_frames(frames).clamp_(0.0, 1.0)

    def _fuse_frames(self, frames: Sequence[torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def set_precision(self, precision: str) -> "BaselineFusion":
        """Accepted for API compatibility (``fp32``/``bf16``/``fp16``); computation stays float32."""
        from .. import PRECISIONS

        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        return self

    def extra_repr(self) -> str:
        return f"input_mode={self.input_mode!r}"


def build_config(cls: type[T], model: str, options: dict[str, Any]) -> T:
    """Instantiate the config dataclass ``cls`` from keyword options; unknown keys -> ConfigError."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"model {model!r}: unknown option(s) {', '.join(unknown)} (accepted: {accepted})")
    return cls(**options)
