"""Where the numbers of a report come from: date, machine, and the TITA weights used."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any, Dict, Optional

from .cache import file_sha256

#: metadata keys that may give the number of training iterations of a weights file
_STEP_KEYS = ("step", "iterations", "train_iterations", "steps")


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} at start"
    return (f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with "
            f"{torch.get_num_threads()} thread(s), Python {platform.python_version()}, {platform.system()}{load}")


def today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _steps_from(meta: Dict[str, Any]) -> Optional[int]:
    for src in (meta, meta.get("training") if isinstance(meta.get("training"), dict) else {}):
        for k in _STEP_KEYS:
            try:
                return int(src[k])
            except (KeyError, TypeError, ValueError):
                continue
    return None


def _file_metadata(path: Path) -> Dict[str, Any]:
    meta: Dict[str, Any] = {}
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta.update(f.metadata() or {})
        except Exception:  # noqa: BLE001 - unreadable metadata is reported as absent
            pass
    card = path.with_suffix(".json")  # a model card beside the weights (e.g. tita.json)
    if card.is_file():
        try:
            meta.update(json.loads(card.read_text()))
        except ValueError:
            pass
    return meta


def describe_weights(weights: Any) -> Dict[str, Any]:
    """``{"given", "path", "sha256", "steps"}`` of the weights ``Fuser('tita', weights=...)`` loads."""
    from ...models import read_run_dir
    from ...models.tita.checkpoint import shipped_weights_path

    info: Dict[str, Any] = {"given": "default (shipped)" if weights is None else str(weights), "path": None,
                            "sha256": None, "steps": None}
    if isinstance(weights, str) and weights == "random":
        info["path"] = "random initialisation (untrained)"
        return info
    meta: Dict[str, Any] = {}
    if weights is None:
        path = shipped_weights_path()
    elif Path(weights).is_dir():
        _, _, path = read_run_dir(weights, "tita")
        try:
            meta = json.loads((Path(weights) / "model.json").read_text())
        except (OSError, ValueError):
            meta = {}
    else:
        path = Path(weights)
    if path is None or not Path(path).is_file():
        return info
    path = Path(path)
    meta = {**_file_metadata(path), **meta}
    info.update(path=str(path), sha256=file_sha256(path), steps=_steps_from(meta))
    return info
