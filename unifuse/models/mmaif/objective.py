"""MMAIF training step as pure functions (spec ``mmaif.md`` §1.2, §5, §6), ready for a trainer.

``training_losses(model, batch, variant="reg"|"flow")`` returns a dict of 0-dim losses whose
``"loss"`` entry is ``L_main + λ·L_aux + α_bal·L_bal``. The batch holds

* ``"A"``, ``"B"``: degraded sources ``(N, 3, H, W)`` in ``[0, 1]`` (H, W multiples of
  ``model.pad_multiple``);
* ``"GT"``: the target fused image, or it is made by ``teacher`` from the clean pair;
* ``"A_clean"``, ``"B_clean"``: the clean sources (teacher input and auxiliary-loss targets;
  the degraded sources are used when absent);
* ``"prompt"``: a string or a list of N strings (default "").

Ground-truth teachers (§1.2) are pluggable: a callable ``(a_clean, b_clean) -> GT`` or a name
of :data:`TEACHERS`; every fusion model in the library is a teacher by its registry name.
Default :data:`DEFAULT_TEACHER` = ``"laplacian"``: on all four dev splits of
``docs/benchmarks.md`` (tno, roadscene, mefb_train, mfifb_train) it has the best mean Qw, VIF
and EI (and Qabf on MEF and MFF; ``max`` leads Qabf on IVF), it beats TITA on most metrics
there, and it takes < 0.3 s per image on CPU against 30–120 s for TITA.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ...errors import ConfigError
from ...losses.mmaif import aux_fusion_loss, flow_matching_loss, flow_path, one_step_estimate, regression_loss, sample_t

DEFAULT_TEACHER = "laplacian"
GENERIC_PROMPTS = ("Fuse these images.", "")
Teacher = Callable[[Tensor, Tensor], Tensor]


class ModelTeacher:
    """A library fusion model run on the clean pair; luma models get colour back with the
    ``weighted`` chroma rule (as ``unifuse fuse`` does). ``(N, 3, H, W)`` [0, 1] -> same."""

    def __init__(self, name: str, weights: Any = None, **config: Any):
        from .. import load_model

        self.name = name
        self.model = load_model(name, weights=weights, **config)

    @torch.no_grad()
    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        from ...io import restore_colour
        from ...losses.mmaif import luminance

        if getattr(self.model, "input_mode", "luma") == "rgb":
            return self.model(a, b).clamp(0, 1)
        y = self.model(luminance(a), luminance(b)).clamp(0, 1)
        out = [restore_colour(y[i, 0].cpu().numpy(), a[i].permute(1, 2, 0).cpu().numpy(),
                              b[i].permute(1, 2, 0).cpu().numpy(), "weighted", 16) for i in range(a.shape[0])]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(a)


_TEACHER_CACHE: dict[str, Teacher] = {}


def get_teacher(teacher: str | Teacher | None = None) -> Teacher:
    """A teacher callable from a registry name (cached) or a callable; ``None`` = the default."""
    teacher = DEFAULT_TEACHER if teacher is None else teacher
    if callable(teacher):
        return teacher
    if not isinstance(teacher, str):
        raise ConfigError(f"teacher must be a model name or a callable, got {type(teacher).__name__}")
    if teacher not in _TEACHER_CACHE:
        _TEACHER_CACHE[teacher] = ModelTeacher(teacher)
    return _TEACHER_CACHE[teacher]


def make_target(batch: dict, teacher: str | Teacher | None = None) -> Tensor:
    """``batch["GT"]`` if present, else the teacher's fusion of the clean pair."""
    if batch.get("GT") is not None:
        return batch["GT"]
    return get_teacher(teacher)(batch.get("A_clean", batch["A"]), batch.get("B_clean", batch["B"]))


def degraded_batch(a_clean: Tensor, b_clean: Tensor, task: str = "ivf", seed: int = 0, n: Any = (1, 3),
                   teacher: str | Teacher | None = None) -> dict:
    """A training batch from clean pairs: every pair degraded by :func:`unifuse.data.degrade.degrade_pair`
    (seed ``seed + i`` for pair i) and the GT made by ``teacher`` from the clean pair (spec §1.2: the GT
    is never degraded).

    Args:
        a_clean, b_clean: ``(N, 3, H, W)`` in ``[0, 1]``.
    Returns:
        ``{"A", "B", "A_clean", "B_clean", "GT", "prompt" (list), "degradations" (list of type tuples)}``.
    """
    from ...data.degrade import degrade_pair

    results = [degrade_pair(a_clean[i], b_clean[i], task=task, seed=seed + i, n=n) for i in range(a_clean.shape[0])]
    expand = lambda x: x.expand(3, -1, -1) if x.shape[0] == 1 else x  # noqa: E731
    batch = {"A": torch.stack([expand(r.a) for r in results]).to(a_clean), "B": torch.stack([expand(r.b) for r in results]).to(a_clean),
             "A_clean": a_clean, "B_clean": b_clean, "prompt": [r.prompt for r in results],
             "degradations": [tuple(r.types) for r in results]}
    batch["GT"] = get_teacher(teacher)(a_clean, b_clean)
    return batch


def _prompts(batch: dict, n: int, dropout: float, rng: random.Random) -> list[str]:
    p = batch.get("prompt", "")
    prompts = [p] * n if isinstance(p, str) else list(p)
    if len(prompts) != n:
        raise ConfigError(f"batch has {len(prompts)} prompts for {n} pairs")
    return [rng.choice(GENERIC_PROMPTS) if dropout and rng.random() < dropout else q for q in prompts]


def dit_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters trained in the DiT stage: the DiT(s) and a trainable text encoder
    (the tokenizer is frozen)."""
    params = [p for d in model.dits.values() for p in d.parameters()]
    if not getattr(model.text_encoder, "frozen", True):
        params += list(model.text_encoder.parameters())
    return params


def training_losses(model, batch: dict, variant: str = "reg", *, lam: float = 0.1, alpha_bal: float = 0.01,
                    aux_mode: str = "paper", aux_every: int = 1, step: int = 0, prompt_dropout: float = 0.0,
                    teacher: str | Teacher | None = None, generator: torch.Generator | None = None,
                    sample_latents: bool = False) -> dict[str, Tensor]:
    """One MMAIF training step's losses (no backward, no optimiser).

    Args:
        model: an :class:`~unifuse.models.mmaif.MMAIF` holding ``variant``.
        variant: ``"reg"`` (``L_reg`` on the predicted latent) or ``"flow"`` (``L_flow``;
            the auxiliary loss uses the one-step estimate ``Z_t + (1 − t)·v̂``).
        lam, alpha_bal: weights of the auxiliary pixel loss and of the MoE balance term.
        aux_mode: ``"paper"`` or ``"max"`` (see :func:`unifuse.losses.mmaif.aux_fusion_loss`).
        aux_every: compute the (decoder-backpropagating) auxiliary loss every this many steps.
        step: the training step (for ``aux_every``).
        prompt_dropout: probability of replacing a prompt by a generic one or "" (spec: 0.1).
        teacher: ground-truth teacher when the batch has no ``"GT"``.
        generator: RNG for t, noise and prompt dropout (reproducible steps).
        sample_latents: encode with a posterior sample instead of the mean.

    Returns:
        ``{"loss", "reg" | "flow", "aux", "balance"}`` (0-dim tensors; ``aux`` is 0 on skipped steps).
    """
    if variant not in ("reg", "flow"):
        raise ConfigError(f"variant must be 'reg' or 'flow', got {variant!r}")
    a, b = batch["A"], batch["B"]
    n = a.shape[0]
    rng = random.Random(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else None)
    gt = make_target(batch, teacher)
    with torch.no_grad():  # the tokenizer is frozen
        z_a, z_b, z_g = model.encode_images(a, b, gt.to(a), sample=sample_latents)
    text = model.encode_prompts(_prompts(batch, n, prompt_dropout, rng), a.device)
    out: dict[str, Tensor] = {}
    if variant == "reg":
        res = model.predict(z_a, z_b, text)
        z_hat = res.out
        out["reg"] = main = regression_loss(z_hat, z_g)
    else:
        t = sample_t(n, model.config.t_eps, generator, a.device)
        if model.config.prior == "gaussian":
            noise = torch.randn(z_g.shape, generator=generator, device=z_g.device, dtype=z_g.dtype)
        else:  # the path starts where sampling starts (a source latent or their mean)
            noise = model.prior_sample(z_a, z_b)
        z_t, _ = flow_path(z_g, noise, t)
        res = model.velocity(z_t, t, z_a, z_b, text)
        z_hat = one_step_estimate(z_t, t, res.out)
        out["flow"] = main = flow_matching_loss(res.out, z_g, noise)
    if lam and aux_every >= 1 and step % aux_every == 0:
        fused = model.decode(z_hat)
        out["aux"] = aux_fusion_loss(fused, batch.get("A_clean", a), batch.get("B_clean", b), aux_mode)
    else:
        out["aux"] = torch.zeros((), device=a.device)
    out["balance"] = res.balance
    out["loss"] = main + lam * out["aux"] + alpha_bal * res.balance
    return out


__all__ = ["training_losses", "degraded_batch", "make_target", "get_teacher", "ModelTeacher", "dit_parameters", "DEFAULT_TEACHER"]
