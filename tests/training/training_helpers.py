"""Helpers for trainer tests: a tiny stochastic stand-in fusion model, tiny image folders, a config."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from unifuse.models import MODELS, register_model

TASKS = {"IVF": ("vi", "ir"), "MFF": ("a", "b"), "MEF": ("over", "under")}


class ToyFuser(nn.Module):
    """(N,1,H,W) x2 -> (N,1,H,W): convs with dropout (train-mode randomness, like DropPath)
    and one never-used layer (like TITA's dead ``conv_first*_B``)."""

    input_mode = "luma"
    trainable = True

    def __init__(self, width: int = 6, dropout: float = 0.2):
        super().__init__()
        self.inp = nn.Conv2d(2, width, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Conv2d(width, 1, 3, padding=1)
        self.unused = nn.Linear(3, 3)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.inp(torch.cat([a, b], 1))))
        return 0.5 * (a + b) + 0.1 * self.out(h)


if "toy_fuser" not in MODELS:
    register_model("toy_fuser", "test stand-in fusion model")(ToyFuser)


def write_pairs(root: Path, n: int = 6, size: int = 24, seed: int = 0) -> Path:
    """Three task folders (IVF vi/ir, MFF a/b, MEF over/under) with ``n`` smooth gray pairs each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for t, (sa, sb) in TASKS.items():
        for sub in (sa, sb):
            (root / t / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            base = 0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * xx + rng.uniform(0.5, 2) * yy + rng.uniform()))
            noise = rng.normal(0, 0.05, (2, size, size))
            a = np.clip(base + noise[0], 0, 1)
            b = np.clip(1 - base + noise[1], 0, 1) if t == "IVF" else np.clip(0.7 * base + noise[1], 0, 1)
            Image.fromarray((a * 255).astype(np.uint8)).save(root / t / sa / f"p{i}.png")
            Image.fromarray((b * 255).astype(np.uint8)).save(root / t / sb / f"p{i}.png")
    return root


def tiny_config_dict(data_root: Path, **over) -> dict:
    """A config mapping for a few fast iterations of the toy model on ``tiny_data``."""
    cfg = {
        "name": "toy",
        "seed": 5,
        "iterations": 6,
        "batch_size": 4,
        "crop_size": 16,
        "data_root": str(data_root),
        "model": {"name": "toy_fuser"},
        "weighting": "famo",
        "optimizer": {"lr": 1e-3},
        "ema_decay": 0.9,
        "checkpoint_every": 3,
        "device": "cpu",
        "tensorboard": False,
        "tasks": [{"name": t, "datasets": [{"type": "folder", "root": t, "sub_a": sa, "sub_b": sb}]} for t, (sa, sb) in TASKS.items()],
    }
    cfg.update(over)
    return cfg


def ddp_config_dict(data_root: Path, iterations: int) -> dict:
    """Deterministic toy recipe (no dropout: ranks draw different random numbers) for DDP tests."""
    return tiny_config_dict(
        data_root, iterations=iterations, checkpoint_every=2, diagnostics_every=1, threads=1, model={"name": "toy_fuser", "dropout": 0.0}
    )


def poison_batches(trainer, at_step: int, task: str, global_index: int) -> None:
    """Put a NaN into sample ``global_index`` of the global ``task`` batch of iteration ``at_step``
    (only the rank holding that sample changes its slice)."""
    inner = trainer.batches
    local = trainer.cfg.batch_size // trainer.ctx.world_size

    class Poisoned:
        def __next__(self):
            batch = next(inner)
            rank, idx = divmod(global_index, local)
            if trainer.step == at_step and rank == trainer.ctx.rank:
                batch[task]["A"][idx, 0, 0, 0] = float("nan")
            return batch

        def __getattr__(self, name):
            return getattr(inner, name)

    trainer.batches = Poisoned()


def run_gloo_ranks(argv: list[str], world_size: int = 2, cwd: Path | None = None, timeout: float = 240) -> list[str]:
    """Run ``argv`` as ``world_size`` torchrun-style ranks (env:// rendezvous on a free localhost port,
    gloo over ``lo``, one OpenMP thread each) and return their combined stdout/stderr, rank order.
    Fails the test when a rank times out (all are killed) or exits non-zero."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(world_size):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
               "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("DDP workers timed out")
    assert all(p.returncode == 0 for p in procs), "\n".join(outs)
    return outs


def interrupt_after(cfg, out: Path, step: int) -> None:
    """Train ``cfg`` into ``out`` and stop right after ``step`` (after that step's checkpoint, as a kill
    between steps would); the test then resumes it its own way."""
    from unifuse.training.trainer import Trainer

    class Stop(Exception):
        pass

    def stop(trainer, res):
        if res.step == step:
            raise Stop

    with pytest.raises(Stop):
        Trainer(cfg, out, callbacks=[stop], progress=False).fit()
