"""Composition of degradations for a source pair (spec ``mmaif.md`` §1.4–§1.6, §1.9).

Slot convention (the rest of unifuse, TC-MoA/TITA): **A = visible / over-exposed / far-focused**,
**B = infrared / under-exposed / near-focused**. (The MMAIF spec's own proposal orders MEF/MFF the
other way; only IVF rules depend on the slot, and there A is always the visible image.)

* Pools: common {gaussian_blur, motion_blur, downsample, noise, jpeg, haze, rain, snow}; IVF adds
  {low_exposure, low_contrast, ir_strips}; MEF adds {low_contrast}; MFF adds {low_exposure, high_exposure}.
* n ∈ {1, 2, 3} with P = (0.5, 0.3, 0.2) (renormalised over the allowed range); n distinct types drawn
  uniformly one after the other, removing a drawn type's exclusion partners ({low_exposure,
  high_exposure} and {gaussian_blur, motion_blur} are mutually exclusive).
* Physical order: haze → rain → snow → low/high exposure → low contrast → IR strips → Gaussian/motion
  blur → down-sample → noise → JPEG.
* IVF: weather (haze, rain, snow) on A only, and B gets a mild Gaussian blur σ ~ U(0.5, 1.5) once (with
  the first weather type); blur / down-sample / noise / JPEG on A always and on B with p = 0.5, each
  with its own parameters (B's noise is the same on all channels); low exposure on A only; low
  contrast on A or B (50/50); IR strips on B only.
* MEF/MFF: every type on both sources with the same parameters; weather layers and the haze depth map
  are shared; noise realisations (and the optional low-exposure noise) are independent per source.

Everything is drawn from ``numpy.random.default_rng(SeedSequence([seed, ...]))``: the same seed gives
bit-identical outputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from ...errors import ConfigError, InputMismatchError
from .depth import as_depth_estimator, luma
from .operators import ORDER, TYPES, draw_ir_blur, op_gaussian_blur
from .prompts import make_prompt
from .weather import rain_layer, snow_layer

TASKS = ("IVF", "MEF", "MFF")
_TASK_ALIASES = {"VIF": "IVF", "IVIF": "IVF", "IRVIS": "IVF", "MEIF": "MEF", "MFIF": "MFF"}
COMMON = ("haze", "rain", "snow", "gaussian_blur", "motion_blur", "downsample", "noise", "jpeg")
EXTRA = {"IVF": ("low_exposure", "low_contrast", "ir_strips"), "MEF": ("low_contrast",), "MFF": ("low_exposure", "high_exposure")}
EXCLUSIVE = (frozenset({"low_exposure", "high_exposure"}), frozenset({"gaussian_blur", "motion_blur"}))
WEATHER = ("haze", "rain", "snow")
GENERIC = ("gaussian_blur", "motion_blur", "downsample", "noise", "jpeg")
N_PROBS = (0.5, 0.3, 0.2)
_SEED_TAG = 0x6465_6772  # "degr": separates this generator from other uses of the same seed


def canonical(task: str) -> str:
    """``"ivf"``/``"VIF"``/... -> ``"IVF"``; unknown task -> :class:`ConfigError` naming the choices."""
    t = str(task).strip().upper()
    t = _TASK_ALIASES.get(t, t)
    if t not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(x.lower() for x in TASKS)}")
    return t


def list_types(task: Optional[str] = None) -> list[str]:
    """Type names in physical order (those of ``task``'s pool if given)."""
    return list(ORDER) if task is None else task_pool(task)


def task_pool(task: str) -> list[str]:
    """The degradation types a task can draw, in physical order."""
    pool = set(COMMON) | set(EXTRA[canonical(task)])
    return [t for t in ORDER if t in pool]


def possible_targets(task: str, name: str) -> list[tuple[str, ...]]:
    """The source sets ``("a",)``, ``("b",)``, ``("a", "b")`` type ``name`` can hit in ``task``."""
    if canonical(task) != "IVF":
        return [("a", "b")]
    if name in WEATHER or name == "low_exposure":
        return [("a",)]
    if name == "ir_strips":
        return [("b",)]
    if name == "low_contrast":
        return [("a",), ("b",)]
    return [("a",), ("a", "b")]


def parse_n(n: Union[int, Sequence[int], str]) -> tuple[int, int]:
    """``2`` / ``(1, 3)`` / ``"1-3"`` -> inclusive ``(lo, hi)`` within 1..3, else :class:`ConfigError`."""
    try:
        if isinstance(n, str):
            parts = n.replace(",", "-").split("-")
            lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (None, None)
        elif isinstance(n, (int, np.integer)):
            lo = hi = int(n)
        else:
            lo, hi = (int(v) for v in n)
    except (TypeError, ValueError):
        lo = hi = None
    if lo is None or not 1 <= lo <= hi <= 3:
        raise ConfigError(f"n must be 1, 2, 3 or a range lo-hi within 1-3, got {n!r}")
    return lo, hi


def check_types(task: str, types: Sequence[str]) -> list[str]:
    """Validate explicit type names for ``task`` (known, in the pool, distinct, no exclusion broken); physical order."""
    task = canonical(task)
    names = [str(t).strip().lower() for t in types]
    if not names:
        raise ConfigError("give at least one degradation type")
    for t in names:
        if t not in TYPES:
            raise ConfigError(f"unknown degradation type {t!r}; valid types: {', '.join(ORDER)}")
    pool = task_pool(task)
    for t in names:
        if t not in pool:
            raise ConfigError(f"degradation type {t!r} is not in the {task} pool; valid for {task.lower()}: {', '.join(pool)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"degradation types repeat: {', '.join(names)}")
    for ex in EXCLUSIVE:
        if len(ex & set(names)) > 1:
            raise ConfigError(f"degradation types {' and '.join(sorted(ex))} exclude each other")
    return [t for t in ORDER if t in names]


def draw_types(task: str, rng: np.random.Generator, n: Union[int, Sequence[int], str] = (1, 3),
               n_probs: Sequence[float] = N_PROBS) -> list[str]:
    """Draw n (from ``n_probs`` restricted to the range) distinct types with the exclusions; physical order."""
    lo, hi = parse_n(n)
    probs = np.asarray(n_probs, dtype=float)[lo - 1:hi]
    if probs.size != hi - lo + 1 or (probs < 0).any() or probs.sum() <= 0:
        raise ConfigError(f"n_probs must give 3 non-negative probabilities for n = 1, 2, 3, got {list(n_probs)!r}")
    k = lo + int(rng.choice(hi - lo + 1, p=probs / probs.sum()))
    avail = task_pool(task)
    chosen: list[str] = []
    for _ in range(k):
        t = avail[int(rng.integers(len(avail)))]
        chosen.append(t)
        drop = {t}.union(*[ex for ex in EXCLUSIVE if t in ex])
        avail = [x for x in avail if x not in drop]
    return [t for t in ORDER if t in chosen]


@dataclass
class DegradeResult:
    """A degraded pair and its record (spec §1.9).

    Attributes:
        a, b: degraded sources, same shape/dtype as the inputs, in [0, 1].
        types: applied type names in physical order.
        params: ``{type: {"a": params or None, "b": params or None}}`` — every drawn parameter
            (JSON-serialisable); in IVF the weather entries' ``"b"`` is ``{"ir_blur": {"sigma": s}}``
            for the one mild IR blur (on the first weather type), ``None`` on the others.
        prompt: the prompt text; prompt_parts: its clauses in order.
        seed, task: what produced it.
    """

    a: torch.Tensor
    b: torch.Tensor
    types: tuple[str, ...]
    params: dict[str, Any]
    prompt: str
    seed: int
    task: str
    prompt_parts: tuple[str, ...] = field(default_factory=tuple)

    def applied_to(self) -> dict[str, tuple[str, ...]]:
        """``{type: ("a",) / ("b",) / ("a", "b")}`` — which sources each type changed."""
        return {t: tuple(s for s in ("a", "b") if self.params[t][s] is not None) for t in self.types}

    def records(self) -> list[dict[str, Any]]:
        """Spec §1.9 list of ``{"type", "params", "applied_to"}``."""
        app = self.applied_to()
        return [{"type": t, "params": self.params[t], "applied_to": list(app[t])} for t in self.types]


def _as_image(x: Any, what: str) -> torch.Tensor:
    t = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise InputMismatchError(f"{what}: expected a (3, H, W) or (1, H, W) image tensor, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise InputMismatchError(f"{what}: expected a float tensor in [0, 1], got {t.dtype}")
    if not torch.isfinite(t).all():
        raise InputMismatchError(f"{what}: contains NaN or infinite values")
    return t.detach().float().clamp(0, 1)


def derive_seed(seed: int, key: str) -> int:
    """A 63-bit seed from a base seed and a text key (e.g. a file stem), stable across runs and platforms."""
    import hashlib

    h = hashlib.sha256(f"{int(seed)}\x00{key}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def _rng_pair(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    ss = np.random.SeedSequence([int(seed) & ((1 << 64) - 1), _SEED_TAG])
    p, q = ss.spawn(2)
    return np.random.default_rng(p), np.random.default_rng(q)


def _plan(task: str, types: list[str], rng: np.random.Generator, h: int, w: int) -> dict[str, dict]:
    """Per-type parameters for A and B following the per-modality rules."""
    params: dict[str, dict] = {}
    ir_blur_done = False
    for t in types:
        draw = TYPES[t].draw
        if task != "IVF":
            pa = draw(rng, h, w, False)
            pb = copy.deepcopy(pa)
            if "seed" in pa and t in ("noise", "low_exposure"):  # independent realisations
                pb["seed"] = int(rng.integers(0, 2**63 - 1))
            params[t] = {"a": pa, "b": pb}
        elif t in WEATHER:
            pb = None
            if not ir_blur_done:
                pb, ir_blur_done = {"ir_blur": draw_ir_blur(rng)}, True
            params[t] = {"a": draw(rng, h, w, False), "b": pb}
        elif t in GENERIC:
            pa = draw(rng, h, w, False)
            pb = draw(rng, h, w, True) if rng.random() < 0.5 else None
            params[t] = {"a": pa, "b": pb}
        elif t == "low_exposure":
            params[t] = {"a": draw(rng, h, w, False), "b": None}
        elif t == "low_contrast":
            p = draw(rng, h, w, False)
            params[t] = {"a": p, "b": None} if rng.random() < 0.5 else {"a": None, "b": p}
        elif t == "ir_strips":
            params[t] = {"a": None, "b": draw(rng, h, w, True)}
        else:  # pragma: no cover - every pool type is handled above
            raise ConfigError(f"no IVF rule for {t!r}")
    return params


def degrade_pair(a: torch.Tensor, b: torch.Tensor, task: str = "ivf", seed: int = 0,
                 n: Union[int, Sequence[int], str] = (1, 3), types: Optional[Sequence[str]] = None, *,
                 depth: Any = None, n_probs: Sequence[float] = N_PROBS) -> DegradeResult:
    """Degrade a source pair reproducibly from ``seed``.

    Args:
        a: source A, float (3, H, W) or (1, H, W) in [0, 1] — visible (IVF) / over-exposed (MEF) /
            far-focused (MFF).
        b: source B, same H, W — infrared / under-exposed / near-focused.
        task: ``"ivf"`` | ``"mef"`` | ``"mff"`` (case-insensitive, aliases such as ``"vif"`` accepted).
        seed: integer; the whole result is a pure function of the inputs and the seed.
        n: number of types, an int or inclusive ``(lo, hi)`` within 1..3 (ignored when ``types`` is given).
        types: ``None`` to draw from the task pool, or the exact list of types to apply.
        depth: haze depth: ``None`` (pseudo-depth), a :class:`~unifuse.data.degrade.depth.DepthEstimator`,
            a callable, or a depth map (H, W) in any range (normalised; 1 = far).
        n_probs: P(n = 1, 2, 3).

    Returns:
        :class:`DegradeResult` (``.a``, ``.b``, ``.types``, ``.params``, ``.prompt``, ``.seed``).
    """
    task = canonical(task)
    xa, xb = _as_image(a, "source A"), _as_image(b, "source B")
    if xa.shape[-2:] != xb.shape[-2:]:
        raise InputMismatchError(f"sources differ in size: A is {xa.shape[-2]}x{xa.shape[-1]}, B is {xb.shape[-2]}x{xb.shape[-1]}")
    rng, prompt_rng = _rng_pair(seed)
    chosen = check_types(task, types) if types is not None else draw_types(task, rng, n, n_probs)
    h, w = xa.shape[-2:]
    params = _plan(task, chosen, rng, h, w)
    for t in chosen:
        ctx: dict[str, Any] = {}
        pa, pb = params[t]["a"], params[t]["b"]
        if t == "haze":
            est = as_depth_estimator(depth)
            src = xa if task == "IVF" else (0.5 * (luma(xa) + luma(xb)))[None]
            ctx["depth"] = est(src).float()
            if tuple(ctx["depth"].shape) != (h, w):
                raise InputMismatchError(f"depth map is {tuple(ctx['depth'].shape)}, expected ({h}, {w})")
            for p in (pa, pb):
                if p is not None and "beta" in p:
                    p["depth"] = getattr(est, "name", "depth")
        elif t in ("rain", "snow") and task != "IVF":
            ctx["layer"] = (rain_layer if t == "rain" else snow_layer)(h, w, pa)  # shared by both sources
        op = TYPES[t].apply
        if pa is not None:
            xa = op(xa, pa, ctx)
        if pb is not None:
            xb = op_gaussian_blur(xb, pb["ir_blur"]) if "ir_blur" in pb else op(xb, pb, ctx)
    res = DegradeResult(a=xa, b=xb, types=tuple(chosen), params=params, prompt="", seed=int(seed), task=task)
    targets = res.applied_to()
    if task == "IVF":  # the mild IR blur that goes with weather is not what the prompt asks to remove
        targets.update({t: ("a",) for t in chosen if t in WEATHER})
    res.prompt, res.prompt_parts = make_prompt(task, chosen, targets, prompt_rng)
    in_a, in_b = a if isinstance(a, torch.Tensor) else None, b if isinstance(b, torch.Tensor) else None
    if in_a is not None:
        res.a = res.a.reshape(in_a.shape).to(in_a.dtype)
    if in_b is not None:
        res.b = res.b.reshape(in_b.shape).to(in_b.dtype)
    return res


@dataclass
class DegradeSpec:
    """On-the-fly degradation of a training dataset (the ``degrade:`` key of a dataset config).

    ``task``: ivf | mef | mff (default: the dataset's task); ``n``: int or [lo, hi] within 1..3;
    ``p``: probability that a sample is degraded (otherwise the prompt is ``""``); ``seed``: the
    dataset's degradation seed; ``types``: restrict to an explicit list (applied together) or
    ``None``; ``n_probs``: P(n = 1, 2, 3); ``prompt_dropout``: probability that a degraded sample's
    prompt is replaced by a generic prompt or ``""`` (spec §1.8 proposes 0.1; default 0 here so the
    model trainer decides).
    """

    task: Optional[str] = None
    n: Any = (1, 3)
    p: float = 1.0
    seed: int = 0
    types: Optional[list[str]] = None
    n_probs: tuple[float, ...] = N_PROBS
    prompt_dropout: float = 0.0

    KEYS = ("task", "n", "p", "seed", "types", "n_probs", "prompt_dropout")

    @classmethod
    def from_config(cls, cfg: Any, task: Optional[str] = None) -> "DegradeSpec":
        """From a mapping (unknown keys -> :class:`ConfigError`), ``True`` (defaults) or a spec."""
        if isinstance(cfg, DegradeSpec):
            spec = copy.copy(cfg)
        elif cfg is True:
            spec = cls()
        elif isinstance(cfg, dict):
            unknown = set(cfg) - set(cls.KEYS)
            if unknown:
                raise ConfigError(f"degrade: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(cls.KEYS)}")
            spec = cls(**cfg)
        else:
            raise ConfigError(f"degrade must be a mapping like {{task: ivf, n: [1, 3], p: 0.8, seed: 0}}, got {cfg!r}")
        if spec.task is None:
            spec.task = task
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.task is None:
            raise ConfigError("degrade: task is required (ivf, mef or mff)")
        self.task = canonical(self.task)
        self.n = parse_n(self.n)
        if not isinstance(self.p, (int, float)) or not 0.0 <= float(self.p) <= 1.0:
            raise ConfigError(f"degrade: p must be a probability in [0, 1], got {self.p!r}")
        if not 0.0 <= float(self.prompt_dropout) <= 1.0:
            raise ConfigError(f"degrade: prompt_dropout must be in [0, 1], got {self.prompt_dropout!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ConfigError(f"degrade: seed must be an integer, got {self.seed!r}")
        if self.types is not None:
            self.types = check_types(self.task, [self.types] if isinstance(self.types, str) else self.types)
        self.n_probs = tuple(float(v) for v in self.n_probs)
        if len(self.n_probs) != 3 or min(self.n_probs) < 0 or sum(self.n_probs) <= 0:
            raise ConfigError(f"degrade: n_probs must be 3 non-negative numbers, got {self.n_probs!r}")
