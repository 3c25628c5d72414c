"""MMAIF's training recipe (spec ``mmaif.md`` §1, §5, §6) as a trainer objective.

One iteration (every task's batch is one micro-batch of a gradient accumulation, so 3 tasks ×
``batch_size`` 8 is the paper's "batch 8, accumulation 3")::

    lr = linear warm-up over warmup_steps, then cosine to min_lr at cfg.iterations (per step)
    for each task t:
        batch: degraded A, B (the dataset's ``degrade:`` key), clean A_clean, B_clean, prompts
        GT = teacher(A_clean, B_clean)            (or the batch's own "GT"; never degraded)
        for each trained variant v (reg | flow):  ℓ = L_v + λ·L_aux + α_bal·L_bal
                                                  (unifuse.models.mmaif.objective.training_losses)
        backward(Σ_v ℓ / n_tasks)
    clip the gradient norm (grad_clip), cautious AdamW step (no decay on biases, norms, η and
    the positional-embedding MLPs), EMA update

What trains: the DiT(s) and the hash text encoder; the tokenizer is frozen (Haar and
pixel-unshuffle have no weights; a SmallKLVAE is loaded from ``tokenizer_weights``). The
latent statistics (``shift``/``scale``) are fitted once from clean training crops
(``latent_stats`` pairs per task) unless a tokenizer file brings its own.

Adding a variant to a trained model (e.g. a flow DiT next to a shipped regression DiT):
``init_weights: FILE`` loads every tensor of an MMAIF weights file that the model has (its config
must equal the model's except ``variants``; the file's latent statistics are kept, no refit), and
``variant`` names the DiT(s) that train. A DiT the model holds but does not train must come from
``init_weights`` and is frozen; ``freeze: [prefix, ...]`` freezes more parameters by name prefix
(``text_encoder`` keeps the hash encoder, and so the held variant's outputs, bit-identical).
``init_dit_from: reg`` warm-starts the trained DiT(s) from the (loaded) reg DiT: every tensor of equal
name and shape is copied; the flow DiT's input embedding takes the reg one's weights for the source
latents and zeros for ``Z_t`` (its columns are ordered (py, px, [Z_t, Z_A, Z_B], channel)); the
timestep embedding keeps its fresh initialisation.
Frozen parameters get no gradient, no optimiser state and no weight decay; their EMA copy stays
equal to them (the EMA lerp of equal values is exact).

Randomness (t, noise, prompt dropout) comes from the objective's own generator, seeded from
``cfg.seed`` + rank and saved in every checkpoint, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from ...errors import ConfigError
from ...models.mmaif.config import SAMPLING_FIELDS
from ..schedule import set_lr, warmup_cosine_lr
from . import register_objective
from .base import Objective, check_params

if TYPE_CHECKING:  # pragma: no cover
    from ..config import TrainConfig
    from ..trainer import StepResult, Trainer

VARIANT_CHOICES = {"reg": ("reg",), "flow": ("flow",), "both": ("reg", "flow")}
CLEAN_KEYS = ("A_clean", "B_clean", "GT")


@dataclass(frozen=True)
class MMAIFParams:
    """``objective: {name: mmaif, ...}`` keys (defaults: spec §5, §6)."""

    variant: str = "reg"  # reg | flow | both (the model must hold exactly these DiTs)
    teacher: Optional[str] = None  # GT teacher (registry model name); None = objective.DEFAULT_TEACHER
    lam: float = 0.1  # auxiliary pixel loss weight
    alpha_bal: float = 0.01  # MoE balance weight
    aux_mode: str = "paper"  # paper | max
    aux_every: int = 1
    prompt_dropout: float = 0.0  # extra dropout here (the dataset's degrade.prompt_dropout is the usual place)
    warmup_steps: int = 1000
    min_lr: float = 0.0
    grad_clip: float = 1.0  # 0 = off
    caution: bool = True  # cautious AdamW mask
    tokenizer_weights: Optional[str] = None  # SmallKLVAE state dict (scripts/train_mmaif_vae.py vae.safetensors)
    latent_stats: int = 8  # clean training pairs per task to fit the latent shift/scale (0 = keep)
    sample_latents: bool = False  # encode with a posterior sample (SmallKLVAE) instead of the mean
    init_weights: Optional[str] = None  # MMAIF weights file to start from (config equal except variants)
    freeze: List[str] = field(default_factory=list)  # parameter-name prefixes kept fixed (e.g. text_encoder)
    init_dit_from: Optional[str] = None  # warm start: the trained DiT(s) start from this held DiT (e.g. reg)


def no_decay(name: str, p: nn.Parameter) -> bool:
    """Spec §6: no weight decay on biases, 1-D tensors (norms, η, β/γ) and the positional-embedding MLPs."""
    parts = name.split(".")
    return p.ndim <= 1 or name.endswith(".bias") or "pos" in parts


def param_groups(model: nn.Module, params: Sequence[nn.Parameter], weight_decay: float) -> List[Dict[str, Any]]:
    wanted = {id(p) for p in params}
    decay, nodecay = [], []
    for name, p in model.named_parameters():
        if id(p) in wanted:
            (nodecay if no_decay(name, p) else decay).append(p)
    return [{"params": nodecay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


@register_objective("mmaif", "MMAIF: degraded pairs + prompts -> teacher GT in latent space; reg or flow DiT, cautious AdamW, warm-up + cosine")
class MMAIFObjective(Objective):
    name = "mmaif"
    ddp_find_unused = True  # MoE experts may see no token in a micro-batch

    def __init__(self, cfg: "TrainConfig"):
        super().__init__(cfg)
        self.p = MMAIFParams(**check_params("mmaif", cfg.objective.params, MMAIFParams()))
        p = self.p
        if p.variant not in VARIANT_CHOICES:
            raise ConfigError(f"objective mmaif: variant must be one of {list(VARIANT_CHOICES)}, got {p.variant!r}")
        if p.aux_mode not in ("paper", "max"):
            raise ConfigError(f"objective mmaif: aux_mode must be 'paper' or 'max', got {p.aux_mode!r}")
        if p.warmup_steps < 0 or p.min_lr < 0 or p.grad_clip < 0 or p.latent_stats < 0 or p.aux_every < 1:
            raise ConfigError("objective mmaif: warmup_steps, min_lr, grad_clip, latent_stats must be >= 0 and aux_every >= 1")
        if not 0.0 <= p.prompt_dropout <= 1.0:
            raise ConfigError(f"objective mmaif: prompt_dropout must be in [0, 1], got {p.prompt_dropout}")
        if cfg.model.get("name") != "mmaif":
            raise ConfigError(f"objective mmaif needs model.name: mmaif, got {cfg.model.get('name')!r}")
        self.variants = VARIANT_CHOICES[p.variant]
        self.generator = torch.Generator()
        self.generator.manual_seed(int(cfg.seed))

    # ------------------------------------------------------------------ construction
    def build_model(self, device: torch.device) -> nn.Module:
        model = super().build_model(torch.device("cpu"))
        held = tuple(model.config.variants)
        loaded = self._load_init(model, self.p.init_weights) if self.p.init_weights else set()
        extra = [v for v in held if v not in self.variants]
        untrained = [v for v in extra if not all(f"dits.{v}.{k}" in loaded for k in model.dits[v].state_dict())]
        if untrained or not set(self.variants) <= set(held):
            raise ConfigError(f"objective mmaif trains variant(s) {list(self.variants)} but the model holds {list(held)}; "
                              f"set model.variants: {list(self.variants)} (an untrained DiT must not be exported) "
                              "or load the other DiT(s) with objective.init_weights")
        if self.p.init_dit_from:
            self._warm_start(model, self.p.init_dit_from)
        names = [n for n, _ in model.named_parameters()]
        for prefix in self.p.freeze:
            if not any(n == prefix or n.startswith(prefix + ".") for n in names):
                raise ConfigError(f"objective mmaif: freeze: {prefix!r} matches no parameter (e.g. text_encoder, dits.reg)")
        for v in extra:
            model.dits[v].requires_grad_(False)
        for n, q in model.named_parameters():
            if any(n == f or n.startswith(f + ".") for f in self.p.freeze):
                q.requires_grad_(False)
        if self.p.tokenizer_weights:
            self._load_tokenizer(model, self.p.tokenizer_weights)
        elif any(q.numel() for q in model.tokenizer.parameters()):
            raise ConfigError(f"objective mmaif: tokenizer {model.config.tokenizer!r} has learned weights but none were given; "
                              "set objective.tokenizer_weights (train one with scripts/train_mmaif_vae.py) "
                              "or use model.tokenizer: haar | pixel_unshuffle")
        model.tokenizer.requires_grad_(False)
        return model.to(device)

    def _warm_start(self, model: nn.Module, source: str) -> None:
        """Copy DiT ``source``'s weights into every trained DiT (see the module docstring)."""
        if source not in model.dits or source in self.variants:
            raise ConfigError(f"objective mmaif: init_dit_from: {source!r} must be a DiT the model holds and does not train "
                              f"(holds {list(model.dits)}, trains {list(self.variants)})")
        src = model.dits[source].state_dict()
        for v in self.variants:
            dst = model.dits[v]
            own = dst.state_dict()
            new = {k: t.clone() for k, t in src.items() if k in own and own[k].shape == t.shape}
            w_src, w_dst = src.get("x_embed.weight"), own.get("x_embed.weight")
            if w_src is not None and w_dst is not None and w_src.shape != w_dst.shape:
                p, z, D = model.config.patch, dst.z_ch, w_dst.shape[0]
                n_src, n_dst = w_src.shape[1] // (p * p * z), w_dst.shape[1] // (p * p * z)
                w = torch.zeros(D, p, p, n_dst, z, dtype=w_dst.dtype)
                w[:, :, :, n_dst - n_src:] = w_src.reshape(D, p, p, n_src, z)  # sources last; Z_t (first) -> 0
                new["x_embed.weight"] = w.reshape_as(w_dst)
            dst.load_state_dict(new, strict=False)

    @staticmethod
    def _load_init(model: nn.Module, path: str) -> set:
        """Load the tensors of an MMAIF weights file that ``model`` has; returns their names."""
        from ...errors import WeightsError
        from ...models.weights_io import check_config, check_fit, load_known, read_weights

        f = Path(path).expanduser()
        if not f.is_file():
            raise ConfigError(f"objective mmaif: init_weights {f} not found")
        try:
            sd, saved, source = read_weights(f)
            check_config(saved, model.config.to_dict(), source, ignore=("variants", *SAMPLING_FIELDS))
            own = model.state_dict()
            check_fit(sd, own, source, [], [k for k in sd if k not in own])
        except WeightsError as exc:
            raise ConfigError(f"objective mmaif: init_weights: {exc}") from None
        load_known(model, sd, own)
        return set(sd)

    @staticmethod
    def _load_tokenizer(model: nn.Module, path: str) -> None:
        from safetensors.torch import load_file

        f = Path(path).expanduser()
        if not f.is_file():
            raise ConfigError(f"objective mmaif: tokenizer_weights {f} not found")
        sd = load_file(str(f))
        try:
            model.tokenizer.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise ConfigError(f"objective mmaif: {f} does not fit tokenizer {model.config.tokenizer!r} "
                              f"({str(exc).splitlines()[0]})") from None

    def trainable_parameters(self, model: nn.Module) -> List[nn.Parameter]:
        from ...models.mmaif.objective import dit_parameters

        return [q for q in dit_parameters(model) if q.requires_grad]

    def build_optimizer(self, model: nn.Module, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
        from ..cautious import CautiousAdamW

        o = self.cfg.optimizer
        return CautiousAdamW(param_groups(model, params, o.weight_decay), lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                             weight_decay=o.weight_decay, caution=self.p.caution)

    def setup(self, trainer: "Trainer") -> None:
        model = trainer.model
        m = model.pad_multiple
        if self.cfg.crop_size % m:
            raise ConfigError(f"crop_size {self.cfg.crop_size} must be a multiple of {m} (tokenizer factor × patch) for this MMAIF config")
        self.generator.manual_seed(int(self.cfg.seed) + 7919 * trainer.ctx.rank)
        if self.p.latent_stats and not self.p.tokenizer_weights and not self.p.init_weights:
            self._fit_latent_stats(trainer)

    @torch.no_grad()
    def _fit_latent_stats(self, trainer: "Trainer") -> None:
        """Per-channel mean/std of the raw latents of the first ``latent_stats`` clean pairs of every dataset."""
        from ...data.datasets import build_dataset
        from ..config import dataset_specs

        imgs = []
        for task in self.cfg.tasks:
            for spec in dataset_specs(self.cfg, task):
                spec = {k: v for k, v in spec.items() if k != "degrade"}
                ds = build_dataset(spec)
                for i in range(min(self.p.latent_stats, len(ds))):
                    s = ds.get(i, 0) if hasattr(ds, "get") else ds[i]
                    imgs += [self._rgb(s["A"]), self._rgb(s["B"])]
        x = torch.stack(imgs).float().to(trainer.device)
        trainer.model.tokenizer.fit_stats(x * 2 - 1)
        trainer.ema.module.tokenizer.load_state_dict(trainer.model.tokenizer.state_dict())

    @staticmethod
    def _rgb(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return x.expand(3, -1, -1)
        if x.shape[0] != 3:
            raise ConfigError(f"MMAIF trains on RGB pairs; got {x.shape[0]}-channel images")
        return x

    # ------------------------------------------------------------------ logs and state
    def log_fields(self, task_names: Sequence[str]) -> List[str]:
        terms = [*self.variants, "aux", "balance"]
        return [f"loss_{n}" for n in task_names] + [f"{t}_{n}" for t in terms for n in task_names] + (["grad_norm"] if self.p.grad_clip else [])

    def checkpoint_state(self) -> Dict[str, Any]:
        return {"mmaif_generator": self.generator.get_state()}

    def load_checkpoint_state(self, state: Dict[str, Any]) -> None:
        if "mmaif_generator" in state:
            self.generator.set_state(state["mmaif_generator"])

    def lr_at(self, step: int) -> float:
        p = self.p
        total = max(self.cfg.iterations, p.warmup_steps + 1)
        return warmup_cosine_lr(float(step), self.cfg.optimizer.lr, float(p.warmup_steps), float(total), p.min_lr) if p.warmup_steps \
            else warmup_cosine_lr(float(step - 1), self.cfg.optimizer.lr, 0.0, float(total), p.min_lr)

    # ------------------------------------------------------------------ one iteration
    def _prepare(self, batch: Dict[str, Any], device: torch.device) -> Dict[str, Any]:
        b = dict(batch)
        for k in ("A", "B", *CLEAN_KEYS):
            if torch.is_tensor(b.get(k)):
                x = b[k].to(device).float()
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)
                elif x.shape[1] != 3:
                    raise ConfigError(f"MMAIF trains on RGB pairs; batch {k} has {x.shape[1]} channels (set gray: false in the dataset)")
                b[k] = x
        if "prompt" not in b:
            b["prompt"] = b.get("prompts", "")
        return b

    def train_step(self, tr: "Trainer", batches: Dict[str, Dict[str, Any]]) -> "StepResult":
        from ...models.mmaif.objective import training_losses
        from ..trainer import StepResult

        p = self.p
        set_lr(tr.optimizer, self.lr_at(tr.step))
        tr.optimizer.zero_grad(set_to_none=True)
        res = StepResult(tr.step, {})
        n_tasks = len(tr.task_names)
        bad: List[str] = []
        for name in tr.task_names:
            batch = self._prepare(batches[name], tr.device)
            total = None
            parts: Dict[str, float] = {"aux": 0.0, "balance": 0.0}
            for v in self.variants:
                out = training_losses(tr.model, batch, v, lam=p.lam, alpha_bal=p.alpha_bal, aux_mode=p.aux_mode,
                                      aux_every=p.aux_every, step=tr.step, prompt_dropout=p.prompt_dropout,
                                      teacher=p.teacher, generator=self.generator, sample_latents=p.sample_latents)
                total = out["loss"] if total is None else total + out["loss"]
                parts[v] = float(out[v].detach())
                parts["aux"] += float(out["aux"].detach())
                parts["balance"] += float(out["balance"].detach())
            res.losses[name] = float(total.detach())
            for k, val in parts.items():
                res.extra[f"{k}_{name}"] = val
            if not torch.isfinite(total.detach()).item():
                bad.append(name)
                continue
            (total / n_tasks).backward()
        if bad:
            tr._event(f"non-finite MMAIF loss in {', '.join(bad)}; iteration skipped, weights unchanged")
            return tr._skip(res)
        grads = [q.grad for q in tr.params if q.grad is not None]
        if grads and not bool(torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf")))).all()):
            tr._event("non-finite MMAIF gradient; iteration skipped, weights unchanged")
            return tr._skip(res)
        if p.grad_clip:
            gn = torch.nn.utils.clip_grad_norm_(tr.params, p.grad_clip)
            res.extra["grad_norm"] = float(gn)
        tr.optimizer.step()
        tr.optimizer.zero_grad(set_to_none=True)
        tr._nonfinite_streak = 0
        tr.ema.update(tr.model)
        return res

    # ------------------------------------------------------------------ export
    def _write_single_file(self, tr: "Trainer", name: str = "mmaif.safetensors") -> None:
        from ...models.mmaif.checkpoint import save_mmaif_weights

        save_mmaif_weights(tr.ema.module, tr.out / name, {"step": str(tr.step), "objective": "mmaif",
                                                          "variant": self.p.variant, "weights": "ema"})

    def on_checkpoint(self, trainer: "Trainer") -> None:
        """Refresh ``mmaif.safetensors`` (EMA weights + config: one self-describing file) at every checkpoint."""
        self._write_single_file(trainer)

    def export(self, trainer: "Trainer") -> None:
        self._write_single_file(trainer)


__all__ = ["MMAIFObjective", "MMAIFParams", "param_groups", "no_decay"]
