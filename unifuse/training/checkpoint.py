"""Atomic, resumable training checkpoints stored as safetensors + JSON.

Layout of a run folder::

    checkpoints/
        step_00000500/
            model.safetensors     # live weights θ_G (plain state dict)
            ema.safetensors       # averaged weights θ_E (plain state dict)
            state.safetensors     # every other tensor (optimiser moments, RNG states, ...)
            state.json            # everything else; tensors replaced by references
        latest.json               # {"step": 500, "dir": "step_00000500"}

A checkpoint folder is first written under a hidden temporary name and renamed into
place, then ``latest.json`` is replaced atomically; a run killed at any moment therefore
leaves either the previous or the new checkpoint, never a half-written one.

Arbitrary nested training state (dicts with non-string keys, lists, tuples, tensors,
numbers, strings, ``None``) is split by :func:`flatten_state` into a flat tensor dict and
a JSON skeleton, and put back together by :func:`unflatten_state`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import WeightsError
from ..io.atomic import atomic_write_text, create_temp, discard, umask_mode

LATEST = "latest.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


# --------------------------------------------------------------------------- encoding
def flatten_state(obj: Any, prefix: str = "s") -> Tuple[Dict[str, torch.Tensor], Any]:
    """Split nested state into ``(tensors, skeleton)``.

    ``tensors`` maps unique keys to contiguous CPU tensors; ``skeleton`` is JSON-able and
    refers to them as ``{"__tensor__": key}``. Tuples, dicts with non-string keys and numpy
    arrays are tagged so that :func:`unflatten_state` restores them exactly.
    """
    tensors: Dict[str, torch.Tensor] = {}

    def put(path: str, t: torch.Tensor) -> str:
        key, n = path, 0
        while key in tensors:  # keys containing dots could collide with nested paths
            n += 1
            key = f"{path}#{n}"
        tensors[key] = t
        return key

    def enc(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            return {"__tensor__": put(path, x.detach().to("cpu").contiguous())}
        if isinstance(x, np.ndarray):
            return {"__ndarray__": put(path, torch.from_numpy(np.ascontiguousarray(x)))}
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in x):
                return {k: enc(v, f"{path}.{k}") for k, v in x.items()}
            return {"__items__": [[enc(k, f"{path}.k{i}"), enc(v, f"{path}.{i}")] for i, (k, v) in enumerate(x.items())]}
        if isinstance(x, tuple):
            return {"__tuple__": [enc(v, f"{path}.{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [enc(v, f"{path}.{i}") for i, v in enumerate(x)]
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"cannot store object of type {type(x).__name__} at {path!r} in a checkpoint")

    return tensors, enc(obj, prefix)


def unflatten_state(skeleton: Any, tensors: Dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""

    def dec(x: Any) -> Any:
        if isinstance(x, dict):
            if "__tensor__" in x:
                return tensors[x["__tensor__"]]
            if "__ndarray__" in x:
                return tensors[x["__ndarray__"]].numpy()
            if "__tuple__" in x:
                return tuple(dec(v) for v in x["__tuple__"])
            if "__items__" in x:
                return {dec(k): dec(v) for k, v in x["__items__"]}
            return {k: dec(v) for k, v in x.items()}
        if isinstance(x, list):
            return [dec(v) for v in x]
        return x

    return dec(skeleton)


# --------------------------------------------------------------------------- atomic io
def atomic_save_safetensors(tensors: Dict[str, torch.Tensor], path: str | os.PathLike, metadata: Optional[Dict[str, str]] = None) -> None:
    """Save a flat tensor dict as safetensors through a temporary file + ``os.replace``."""
    fd, tmp = create_temp(path)
    os.close(fd)
    try:
        save_file(_contiguous_cpu(tensors), tmp, metadata=metadata)
        os.chmod(tmp, umask_mode())  # safetensors re-creates the file private (0600)
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def _contiguous_cpu(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    # safetensors refuses shared storage (tied/aliased tensors): clone each one
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


# --------------------------------------------------------------------------- checkpoints
def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def save_checkpoint(
    ckpt_root: str | os.PathLike,
    step: int,
    model_state: Dict[str, torch.Tensor],
    ema_state: Optional[Dict[str, torch.Tensor]],
    state: Dict[str, Any],
    keep: int = 0,
) -> Path:
    """Write checkpoint ``step`` atomically and point ``latest.json`` at it.

    Args:
        ckpt_root: the ``checkpoints/`` folder of a run.
        model_state / ema_state: plain model state dicts (stored as loadable safetensors).
        state: any other nested training state (see :func:`flatten_state`).
        keep: keep only the newest ``keep`` checkpoints (0 keeps all).

    Returns:
        The checkpoint folder.
    """
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}."))
    os.chmod(tmp, umask_mode(directory=True))  # mkdtemp makes it private (0700)
    try:
        save_file(_contiguous_cpu(model_state), str(tmp / "model.safetensors"), metadata={"step": str(step)})
        if ema_state is not None:
            save_file(_contiguous_cpu(ema_state), str(tmp / "ema.safetensors"), metadata={"step": str(step)})
        tensors, skeleton = flatten_state(state)
        save_file(_contiguous_cpu(tensors), str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"step": step, "state": skeleton}, indent=1), encoding="utf-8")
        for f in tmp.iterdir():  # make the data durable before publishing it
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():  # same step written again (e.g. after a resume): replace it
            old = root / f".old-{final.name}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / LATEST, json.dumps({"step": step, "dir": final.name}) + "\n")
    if keep > 0:
        for old_step, old_dir in list_checkpoints(root)[:-keep]:
            if old_step != step:
                shutil.rmtree(old_dir, ignore_errors=True)
    return final


def list_checkpoints(ckpt_root: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoint folders ``(step, path)``, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and d.is_dir() and (d / "state.json").is_file() and (d / "model.safetensors").is_file():
            out.append((int(m.group(1)), d))
    return sorted(out)


def latest_checkpoint(ckpt_root: str | os.PathLike) -> Optional[Path]:
    """The folder named by ``latest.json`` (or the highest complete step), or ``None``."""
    root = Path(ckpt_root)
    pointer = root / LATEST
    if pointer.is_file():
        try:
            d = root / json.loads(pointer.read_text(encoding="utf-8"))["dir"]
            if (d / "state.json").is_file():
                return d
        except (ValueError, KeyError, TypeError):
            pass
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def load_checkpoint(ckpt_dir: str | os.PathLike) -> Dict[str, Any]:
    """Read a checkpoint folder written by :func:`save_checkpoint`.

    Returns:
        ``{"step", "model", "ema" (or None), "state"}``.
    """
    d = Path(ckpt_dir)
    try:
        meta = json.loads((d / "state.json").read_text(encoding="utf-8"))
        tensors = load_file(str(d / "state.safetensors"))
        model = load_file(str(d / "model.safetensors"))
        ema = load_file(str(d / "ema.safetensors")) if (d / "ema.safetensors").is_file() else None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{d}: unreadable checkpoint ({exc})") from exc
    return {"step": int(meta["step"]), "model": model, "ema": ema, "state": unflatten_state(meta["state"], tensors)}
