"""The trainer: multi-task, EMA, resumable, data-parallel; the recipe is a plug-in objective.

What one iteration does (forwards, losses, optimiser steps, schedule) is the job of the
config's ``objective`` (:mod:`unifuse.training.objectives`): ``tita`` (default; FAMO-weighted
multi-task gradient, spec ``tita.md`` §8.3), ``tcmoa`` (per-task AdamW steps on the TC-MoA
parts, ``tcmoa.md`` §6) or ``tcmoa_mae`` (TC-MoA stage 0, masked-autoencoder pretraining).
The trainer owns everything the recipes share.

Run folder (``out``)::

    config.yaml          resolved config of the run
    train_log.csv        step, time, lr, the objective's columns (TITA: loss_<T> (pre-step),
                         post_<T> (FAMO re-evaluation), weight_<T>), skipped
    conflicts.csv        step, gradnorm_<T>, angle_<T1>_<T2>   (TITA, when diagnostics_every > 0)
    events.log           non-finite batches and other warnings
    checkpoints/         see :mod:`unifuse.training.checkpoint`
    model.safetensors, model_ema.safetensors, model.json   final live / EMA weights (evaluate EMA)

Determinism: torch, python and numpy RNGs are seeded from ``seed`` (+ rank for the
per-rank streams) and saved in every checkpoint together with the sampler, optimiser and
objective states, so a resumed run reproduces an uninterrupted one bit for bit on the same
machine and thread count.

Data parallel: under ``torchrun`` each rank forwards its slice of the global batch; see
:mod:`unifuse.training.distributed`.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, UnifuseError
from ..io.atomic import atomic_write_text
from .checkpoint import atomic_save_safetensors, latest_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig, dataset_specs
from .diagnostics import conflict_fields
from .distributed import DistContext, all_gather_object, init_distributed
from .ema import ModelEMA
from .logging import CSVLog, TensorBoardLog
from .objectives import create_objective
from .objectives.tita import make_task_loss  # noqa: F401  (re-exported: older import path)

CHECKPOINT_VERSION = 1
#: options taken from the current invocation when resuming (the rest of the recipe comes from the
#: checkpoint): where and how long to run, and how often to log, diagnose and checkpoint - none of
#: them changes the weights' trajectory
RUN_OPTIONS = (
    "iterations", "device", "threads", "data_root", "num_workers", "tensorboard", "print_every",
    "log_every", "diagnostics_every", "checkpoint_every", "keep_checkpoints",
)


class NonFiniteError(UnifuseError):
    """Too many consecutive iterations had non-finite losses or gradients."""


@dataclass
class StepResult:
    """What one iteration did (passed to callbacks)."""

    step: int
    losses: Dict[str, float]
    post_losses: Dict[str, float] = field(default_factory=dict)
    weights: Dict[str, float] = field(default_factory=dict)
    skipped: bool = False
    conflicts: Dict[str, float] = field(default_factory=dict)
    extra: Dict[str, float] = field(default_factory=dict)  # objective-specific log columns


Callback = Callable[["Trainer", StepResult], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(device: torch.device) -> Dict[str, Any]:
    state: Dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)



class Trainer:
    """Trains ``cfg.model`` on ``cfg.tasks`` into the run folder ``out``.

    Args:
        cfg: validated :class:`TrainConfig`.
        out: run folder.
        resume: continue from the newest checkpoint in ``out`` (a fresh start when there
            is none). Without it, a folder that already holds checkpoints is refused.
        ctx: distributed context (default: from the environment, see
            :func:`~unifuse.training.distributed.init_distributed`).
        callbacks: called as ``cb(trainer, StepResult)`` after every iteration.
        progress: show a tqdm bar (``None``: only on a TTY, rank 0).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out: str | os.PathLike,
        resume: bool = False,
        ctx: Optional[DistContext] = None,
        callbacks: Sequence[Callback] = (),
        progress: Optional[bool] = None,
    ):
        self.cfg = cfg
        self.out = Path(out)
        self.ctx = ctx if ctx is not None else init_distributed(cfg.device)
        self.device = self.ctx.device
        self.callbacks = list(callbacks)
        self.progress = progress
        self.task_names = cfg.task_names()
        self.step = 0
        self._nonfinite_streak = 0
        self._elapsed_before = 0.0  # training seconds of the run before this process (resume)
        self._t0 = time.time()
        self._threads_before = torch.get_num_threads()
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)

        ckpt = self._find_resume(resume)
        if ckpt is not None:
            # the checkpointed recipe wins, except for the run-length and placement options
            saved = ckpt["state"]["config"]
            from .config import from_dict

            keep = {k: getattr(cfg, k) for k in RUN_OPTIONS}
            ignored = [k for k in _diff_keys(cfg.to_dict(), saved) if k.split(".")[0].split("[")[0] not in RUN_OPTIONS]
            if ignored and self.ctx.is_main:
                print(f"unifuse train: resuming with the checkpoint's recipe; ignoring changed key(s): {', '.join(ignored)}", file=sys.stderr)
            self.cfg = cfg = from_dict({**saved, **keep}, "checkpoint config")

        # ---- objective, model (identical initialisation on every rank), EMA copy, optimiser
        seed_everything(cfg.seed)
        self.objective = create_objective(cfg)
        self.model = self.objective.build_model(self.device)
        self.model.train()
        self.ema = ModelEMA(self.model, cfg.ema_decay)
        self.params = self.objective.trainable_parameters(self.model)
        if not self.params:
            raise ConfigError(f"model {cfg.model['name']!r} has no trainable parameters")
        self.optimizer = self.objective.build_optimizer(self.model, self.params)
        self.objective.setup(self)
        net = self.objective.forward_module(self.model)
        if self.ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            # one DDP forward + backward per task; unused parameters exist (TITA's dead convs)
            import inspect

            # buffers are deterministic (same seed on every rank): no per-forward buffer sync
            sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters else {"broadcast_buffers": False}
            self.forward_net: nn.Module = DDP(net, device_ids=ids, find_unused_parameters=self.objective.ddp_find_unused, **sync)
        else:
            self.forward_net = net

        # ---- data
        self.batches = self._make_batches()

        # ---- per-rank RNG streams (rank 0 == a single process)
        seed_everything(cfg.seed + self.ctx.rank)
        if ckpt is not None:
            self._restore(ckpt)
        self._open_logs(resumed=ckpt is not None)

    # objective pieces kept reachable under their TITA-era names (benchmarks/check_official_training.py)
    @property
    def weighting(self):
        return getattr(self.objective, "weighting", None)

    @property
    def losses(self):
        return getattr(self.objective, "losses", None)

    @losses.setter
    def losses(self, value) -> None:
        self.objective.losses = value

    # ------------------------------------------------------------------ set-up helpers
    def _find_resume(self, resume: bool) -> Optional[Dict[str, Any]]:
        root = self.out / "checkpoints"
        found = latest_checkpoint(root)
        if found is None:
            if resume and self.ctx.is_main:
                print(f"unifuse train: no checkpoint in {root}; starting from step 0", file=sys.stderr)
            return None
        if not resume:
            raise ConfigError(f"{self.out}: folder already holds checkpoints; pass --resume to continue or choose another --out")
        return load_checkpoint(found)

    def _make_batches(self):
        from ..data.datasets import build_dataset
        from ..data.multitask import MultiTaskBatches

        datasets: Dict[str, List[Any]] = {}
        for i, task in enumerate(self.cfg.tasks):
            built = []
            for j, spec in enumerate(dataset_specs(self.cfg, task)):
                try:
                    built.append(build_dataset(spec))
                except UnifuseError as exc:
                    raise type(exc)(f"tasks[{i}].datasets[{j}] ({task.name}): {exc}") from exc
            datasets[task.name] = built
        if self.cfg.batch_size % self.ctx.world_size:
            raise ConfigError(f"batch_size {self.cfg.batch_size} is not divisible by the {self.ctx.world_size} processes")
        return MultiTaskBatches(
            datasets, self.cfg.batch_size, self.cfg.seed, rank=self.ctx.rank, world_size=self.ctx.world_size, num_workers=self.cfg.num_workers
        )

    def _open_logs(self, resumed: bool) -> None:
        self.events_path = self.out / "events.log"
        if not self.ctx.is_main:
            self.train_log = self.conflict_log = None
            self.tb = TensorBoardLog(self.out, enabled=False)
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "config.yaml", self.cfg.to_yaml())
        t = self.task_names
        fields = ["step", "time_s", "lr", *self.objective.log_fields(t), "skipped"]
        rs = self.step if resumed else None
        self.train_log = CSVLog(self.out / "train_log.csv", fields, resume_step=rs)
        self.conflict_log = CSVLog(self.out / "conflicts.csv", ["step", *conflict_fields(t)], resume_step=rs) if self.cfg.diagnostics_every else None
        self.tb = TensorBoardLog(self.out / "tensorboard", enabled=self.cfg.tensorboard, purge_step=(self.step + 1) if resumed else None)

    def _event(self, msg: str) -> None:
        if not self.ctx.is_main:
            return
        line = f"[step {self.step}] {msg}"
        print(f"unifuse train: {line}", file=sys.stderr)
        with open(self.events_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> Dict[str, Any]:
        per_rank = {"sampler": self.batches.state_dict(), "rng": rng_state(self.device)}
        return {
            "version": CHECKPOINT_VERSION,
            "config": self.cfg.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            **self.objective.checkpoint_state(),
            "ranks": all_gather_object(self.ctx, per_rank),
            "world_size": self.ctx.world_size,
            "nonfinite_streak": self._nonfinite_streak,
            "elapsed_s": self._elapsed_before + time.time() - self._t0,
        }

    def save_checkpoint(self) -> Optional[Path]:
        """Write a checkpoint of the current step (rank 0 writes; all ranks take part)."""
        state = self._state()  # collective: every rank must call it
        path = None
        if self.ctx.is_main:
            path = save_checkpoint(
                self.out / "checkpoints", self.step, self.model.state_dict(), self.ema.state_dict(), state, keep=self.cfg.keep_checkpoints
            )
            self.objective.on_checkpoint(self)
        if self.ctx.enabled:
            torch.distributed.barrier()
        return path

    def _restore(self, ckpt: Dict[str, Any]) -> None:
        state = ckpt["state"]
        try:
            self.model.load_state_dict(ckpt["model"], strict=True)
            if ckpt["ema"] is not None:
                self.ema.load_state_dict(ckpt["ema"])
        except RuntimeError as exc:
            raise ConfigError(f"{self.out}: checkpoint does not fit the configured model ({str(exc).splitlines()[0]})") from exc
        self.optimizer.load_state_dict(state["optimizer"])
        self.objective.load_checkpoint_state(state)
        ranks = state["ranks"]
        if len(ranks) == self.ctx.world_size:
            mine = ranks[self.ctx.rank]
            self.batches.load_state_dict(mine["sampler"])
            set_rng_state(mine["rng"], self.device)
        else:
            if self.ctx.is_main:  # one warning per job, not one per process
                warnings.warn(
                    f"checkpoint was written by {len(ranks)} process(es), resuming with {self.ctx.world_size}: "
                    "data order follows rank 0's sampler and RNG streams are re-seeded (not bit-exact)",
                    stacklevel=2,
                )
            self.batches.load_state_dict(ranks[0]["sampler"])
            seed_everything(self.cfg.seed + self.ctx.rank + 1_000_003 * ckpt["step"])
        self._nonfinite_streak = int(state.get("nonfinite_streak", 0))
        self._elapsed_before = float(state.get("elapsed_s", 0.0))
        self.step = ckpt["step"]
        if self.ctx.is_main:
            print(f"unifuse train: resumed from step {self.step} ({self.out / 'checkpoints'})", file=sys.stderr)

    # ------------------------------------------------------------------ one iteration
    def _to_device(self, batches: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
        out = {}
        for name in self.task_names:
            b = batches[name]
            out[name] = {**b, "A": b["A"].to(self.device, non_blocking=True).float(), "B": b["B"].to(self.device, non_blocking=True).float()}
        return out

    def _report_nonfinite(self, what: str, values: torch.Tensor, batches: Dict[str, Dict[str, Any]], fused: Sequence[torch.Tensor]) -> None:
        bad_tasks = [n for n, v in zip(self.task_names, values.tolist()) if not math.isfinite(v)] or self.task_names
        parts = []
        for name in bad_tasks:
            t = self.task_names.index(name)
            b = batches[name]
            per_sample = torch.stack(
                [torch.isfinite(x.detach()).flatten(1).all(1) for x in (b["A"], b["B"], fused[t])]
            ).all(0)
            names = [str(n) for n in b.get("names", [])]
            suspects = [n for n, ok in zip(names, per_sample.tolist()) if not ok]
            parts.append((name, names, suspects))
        gathered = all_gather_object(self.ctx, parts)
        if not self.ctx.is_main:
            return
        msgs = []
        for i, (name, _, _) in enumerate(gathered[0]):
            names = [n for g in gathered for n in g[i][1]]
            suspects = [n for g in gathered for n in g[i][2]]
            msg = f"{name}: batch {', '.join(names) or '(unnamed)'}"
            if suspects:
                msg += f"; non-finite values in {', '.join(suspects)}"
            msgs.append(msg)
        self._event(f"non-finite {what}; iteration skipped, weights unchanged. " + " | ".join(msgs))

    def train_step(self) -> StepResult:
        """Run one iteration (advances ``self.step``): the objective's step on the next batches."""
        self.step += 1
        batches = self._to_device(next(self.batches))
        self.model.train()
        return self.objective.train_step(self, batches)

    def _skip(self, res: StepResult) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        res.skipped = True
        self._nonfinite_streak += 1
        if self.cfg.max_nonfinite and self._nonfinite_streak >= self.cfg.max_nonfinite:
            raise NonFiniteError(f"{self.out}: {self._nonfinite_streak} consecutive iterations with non-finite values (see {self.events_path})")
        return res

    # ------------------------------------------------------------------ loop
    def _log(self, res: StepResult) -> None:
        if not self.ctx.is_main:
            return
        if self.train_log is not None and (res.step % self.cfg.log_every == 0 or res.skipped):
            row: Dict[str, Any] = {"step": res.step, "time_s": round(self._elapsed_before + time.time() - self._t0, 3), "lr": self.optimizer.param_groups[0]["lr"], "skipped": int(res.skipped)}
            row.update({f"loss_{k}": v for k, v in res.losses.items()})
            row.update({f"post_{k}": v for k, v in res.post_losses.items()})
            row.update({f"weight_{k}": v for k, v in res.weights.items()})
            row.update(res.extra)
            self.train_log.write(row)
            self.tb.scalars(res.step, {**{f"loss/{k}": v for k, v in res.losses.items()}, **{f"weight/{k}": v for k, v in res.weights.items()},
                                       **{f"extra/{k}": v for k, v in res.extra.items()}})
        if res.conflicts and self.conflict_log is not None:
            self.conflict_log.write({"step": res.step, **res.conflicts})
            self.tb.scalars(res.step, {f"conflict/{k}": v for k, v in res.conflicts.items()})

    def fit(self) -> Dict[str, Any]:
        """Train up to ``cfg.iterations``; returns a summary ``{"step", "out", "seconds"}``."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        total = cfg.iterations
        show = self.ctx.is_main and (self.progress if self.progress is not None else sys.stderr.isatty())
        bar = tqdm(total=total, initial=self.step, disable=not show, desc="train", unit="it", dynamic_ncols=True)
        t0 = self._t0 = time.time()
        t_last, s_last = t0, self.step
        try:
            while self.step < total:
                res = self.train_step()
                self._log(res)
                bar.update(1)
                if show:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in res.losses.items()}, refresh=False)
                elif self.ctx.is_main and (self.step % cfg.print_every == 0 or self.step == total):
                    now = time.time()
                    rate = (now - t_last) / max(1, self.step - s_last)
                    t_last, s_last = now, self.step
                    eta = rate * (total - self.step)
                    losses = " ".join(f"{k} {v:.4g}" for k, v in res.losses.items())
                    weights = " ".join(f"{v:.3f}" for v in res.weights.values())
                    print(f"step {self.step}/{total} | loss {losses} | weights {weights} | {rate:.2f} s/it | ETA {_hms(eta)}", file=sys.stderr, flush=True)
                if self.step % cfg.checkpoint_every == 0 or self.step == total:
                    self.save_checkpoint()
                for cb in self.callbacks:
                    cb(self, res)
        finally:
            bar.close()
            self.close()
        if self.ctx.is_main:
            self.export()
        return {"step": self.step, "out": str(self.out), "seconds": time.time() - t0}

    def export(self) -> None:
        """Write the final live and EMA weights (plain state dicts) and a JSON description."""
        atomic_save_safetensors(self.model.state_dict(), self.out / "model.safetensors", {"step": str(self.step)})
        atomic_save_safetensors(self.ema.state_dict(), self.out / "model_ema.safetensors", {"step": str(self.step)})
        meta = {"model": self.cfg.model["name"], "config": {k: v for k, v in self.cfg.to_dict()["model"].items() if k != "name"},
                "step": self.step, "weights": {"ema": "model_ema.safetensors", "live": "model.safetensors"}}
        atomic_write_text(self.out / "model.json", json.dumps(meta, indent=1) + "\n")
        self.objective.export(self)

    def close(self) -> None:
        for log in (self.train_log, self.conflict_log):
            if log is not None:
                log.close()
        self.tb.close()
        if hasattr(self.batches, "close"):
            self.batches.close()
        torch.set_num_threads(self._threads_before)


def _diff_keys(a: Any, b: Any, prefix: str = "") -> List[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: List[str] = []
        for k in dict.fromkeys([*a, *b]):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [prefix]


def _hms(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}h{(s % 3600) // 60:02d}m{s % 60:02d}s"


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, **kw: Any) -> Dict[str, Any]:
    """Build a :class:`Trainer` and run it; see there for the arguments."""
    return Trainer(cfg, out, resume=resume, **kw).fit()
