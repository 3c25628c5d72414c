"""On-the-fly degradation of a training dataset (the ``degrade:`` key of a dataset config).

:class:`DegradedDataset` wraps any dataset that follows the ``get(index, seed)`` contract of
:mod:`unifuse.data.datasets`. Sample ``index`` drawn with sample seed ``seed`` becomes::

    {"A", "B"}: the degraded pair (with probability p; else the clean pair),
    {"A_clean", "B_clean"}: the clean pair, same shape,
    "prompt": the prompt text ("" when not degraded),
    "degradations": the applied types (physical order; () when not degraded),
    ... and every other entry of the base sample unchanged ("name", "task", a synthetic "GT" is never degraded).

Everything is drawn from ``SeedSequence([spec.seed, index, seed])``, so a sample is a pure function of
(dataset degrade seed, index, trainer sample seed) and :class:`~unifuse.data.multitask.MultiTaskBatches`
resumes exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ConfigError
from .compose import DegradeSpec, degrade_pair
from .prompts import generic_prompts

_MASK = (1 << 64) - 1
_TAG = 0x7472_6169  # "trai"


class DegradedDataset:
    """``base`` with its pairs degraded per :class:`DegradeSpec` (see the module docstring)."""

    def __init__(self, base: Any, spec: Any):
        self.base = base
        task = getattr(base, "task", None)
        self.spec = DegradeSpec.from_config(spec, task=task)
        if task is not None and self.spec.task != str(task).upper():
            raise ConfigError(f"degrade: task {self.spec.task} does not match the dataset's task {task}")
        self.task = task if task is not None else self.spec.task

    def __len__(self) -> int:
        return len(self.base)

    def __repr__(self) -> str:
        s = self.spec
        return f"DegradedDataset({self.base!r}, task={s.task}, n={s.n}, p={s.p}, seed={s.seed})"

    def get(self, index: int, seed: int = 0) -> dict[str, Any]:
        sample = self.base.get(index, seed) if hasattr(self.base, "get") else self.base[index]
        n = len(self)
        ss = np.random.SeedSequence([int(self.spec.seed) & _MASK, int(index % n) & _MASK, int(seed) & _MASK, _TAG])
        g = np.random.default_rng(ss)
        u_degrade, pair_seed, u_drop, k_generic = g.random(), int(g.integers(0, 2**63 - 1)), g.random(), int(g.integers(1 << 30))
        out = dict(sample)
        out["A_clean"], out["B_clean"] = sample["A"], sample["B"]
        prompt, types = "", ()
        if u_degrade < self.spec.p:
            r = degrade_pair(sample["A"], sample["B"], self.spec.task, seed=pair_seed, n=self.spec.n, types=self.spec.types,
                             n_probs=self.spec.n_probs)
            out["A"], out["B"] = r.a, r.b
            prompt, types = r.prompt, r.types
            if u_drop < self.spec.prompt_dropout:
                options = generic_prompts() + [""]
                prompt = options[k_generic % len(options)]
        out["prompt"], out["degradations"] = prompt, tuple(types)
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.get(index, 0)
