"""Pieces shared by the scripts that ship trained weights (``scripts/ship_*weights.py``).

Each script checks its own model; these are the steps they all take: pick the checkpoint of
a run, read its step and resolved config, hash the written file, describe the machine and
stamp the time for the model's ``.json`` description.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from ..errors import ConfigError
from .checkpoint import latest_checkpoint, list_checkpoints


def run_checkpoint(run: Path, step: Optional[int] = None) -> Path:
    """The checkpoint folder of training run ``run`` at ``step`` (default: the newest).

    Raises:
        ConfigError: the run has no such checkpoint.
    """
    root = Path(run) / "checkpoints"
    if root.is_dir():
        ckpt = latest_checkpoint(root) if step is None else dict(list_checkpoints(root)).get(step)
        if ckpt is not None:
            return ckpt
    raise ConfigError(f"{run}: no checkpoint" + (f" for step {step}" if step is not None else ""))


def checkpoint_state(ckpt: Path) -> tuple[int, dict]:
    """``(step, resolved training config)`` of a checkpoint folder (its ``state.json``)."""
    state = json.loads((Path(ckpt) / "state.json").read_text())
    return int(state["step"]), state["state"]["config"]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def machine_description(hardware: Optional[str] = None) -> str:
    """``hardware`` if given, else this machine: processor, core count, "CPU only"."""
    return hardware or f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only"


def utc_stamp() -> str:
    """The current UTC time as ``YYYY-MM-DD HH:MM UTC``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["run_checkpoint", "checkpoint_state", "file_sha256", "machine_description", "utc_stamp"]
