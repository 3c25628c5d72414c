"""Typed training configuration, loaded from YAML and validated key by key.

A config file is a mapping; every key is checked against the dataclasses below and a bad
one raises :class:`~unifuse.errors.ConfigError` naming the file and the dotted key, e.g.
``configs/x.yaml: optimizer.lr must be a number, got 'fast'``. A file may start from
another one with ``base: other.yaml`` (path relative to the file); mappings are merged
recursively and everything else (lists included) is replaced.

Example (the paper recipe is ``configs/tita.yaml``)::

    name: tita
    seed: 17
    iterations: 20000
    batch_size: 8            # global, per task (all ranks together)
    crop_size: 64
    data_root: ../shared/data   # relative: to the repository root (folder with pyproject.toml)
    model: {name: tita, drop_path_rate: 0.1}
    loss: task_specific      # or uni
    weighting: famo          # or mean, or {name: famo, lr: 0.025, weight_decay: 0.001}
    optimizer: {lr: 2.0e-5}
    ema_decay: 0.999
    tasks:
      - name: IVF
        datasets: [{type: folder, root: ivf/roadscene, sub_a: vi, sub_b: ir}]
"""

from __future__ import annotations

import copy
import os
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from ..errors import ConfigError

LOSS_MODES = ("task_specific", "uni")
DEFAULT_DATA_ROOT = "../shared/data"


@dataclass
class OptimConfig:
    """Adam for the network (spec §8.3: lr 2e-5 constant, default betas, no weight decay)."""

    lr: float = 2e-5
    betas: Tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def validate(self, where: str) -> None:
        _check(self.lr > 0, where, "lr", f"must be > 0, got {self.lr}")
        _check(all(0 <= b < 1 for b in self.betas), where, "betas", f"must be two numbers in [0, 1), got {list(self.betas)}")
        _check(self.eps > 0, where, "eps", f"must be > 0, got {self.eps}")
        _check(self.weight_decay >= 0, where, "weight_decay", f"must be >= 0, got {self.weight_decay}")


@dataclass
class WeightingConfig:
    """Task weighting: ``famo`` (TITA) or ``mean`` (ablation "w/o MO"); ``params`` go to its factory."""

    name: str = "famo"
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ObjectiveConfig:
    """The training recipe plugged into the trainer (:mod:`unifuse.training.objectives`):
    ``tita`` (default), ``tcmoa``, ``tcmoa_mae``; ``params`` are validated by the objective."""

    name: str = "tita"
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskConfig:
    """One training task.

    Attributes:
        name: task key, ``IVF``, ``MFF`` or ``MEF`` (also the dataset ``task``).
        loss: loss name; ``None`` = the task's own loss (``TASK_LOSS``), or ``uni`` when
            the run's ``loss`` is ``uni``.
        datasets: dataset specs for :func:`unifuse.data.datasets.build_dataset`; a relative
            ``root`` is taken relative to ``data_root``; ``task`` and ``crop`` default to
            the task name and the run's ``crop_size``. Several datasets are concatenated.
    """

    name: str = ""
    loss: Optional[str] = None
    datasets: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class TrainConfig:
    """A complete training recipe (defaults = the paper's, spec §9.1)."""

    name: str = "tita"
    seed: int = 17
    iterations: int = 20000
    batch_size: int = 8
    crop_size: int = 64
    data_root: str = DEFAULT_DATA_ROOT
    model: Dict[str, Any] = field(default_factory=lambda: {"name": "tita"})
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    tasks: List[TaskConfig] = field(default_factory=list)
    loss: str = "task_specific"
    loss_params: Dict[str, Any] = field(default_factory=dict)
    weighting: WeightingConfig = field(default_factory=WeightingConfig)
    optimizer: OptimConfig = field(default_factory=OptimConfig)
    ema_decay: float = 0.999
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 1
    print_every: int = 200
    diagnostics_every: int = 0
    max_nonfinite: int = 10
    num_workers: int = 0
    threads: int = 0
    device: str = "auto"
    tensorboard: bool = True

    # ------------------------------------------------------------------ validation
    def validate(self, where: str = "config") -> "TrainConfig":
        for key in ("iterations", "batch_size", "crop_size", "checkpoint_every", "log_every", "print_every"):
            _check(getattr(self, key) >= 1, where, key, f"must be >= 1, got {getattr(self, key)}")
        for key in ("keep_checkpoints", "diagnostics_every", "num_workers", "threads", "max_nonfinite", "seed"):
            _check(getattr(self, key) >= 0, where, key, f"must be >= 0, got {getattr(self, key)}")
        _check(0 <= self.ema_decay < 1, where, "ema_decay", f"must be in [0, 1), got {self.ema_decay}")
        _check(self.loss in LOSS_MODES, where, "loss", f"must be one of {list(LOSS_MODES)}, got {self.loss!r}")
        _check(isinstance(self.model.get("name"), str) and self.model["name"] != "", where, "model.name", "is required (a registered model name)")
        self.optimizer.validate(f"{where}: optimizer")
        from .weighting import list_weightings

        _check(self.weighting.name in list_weightings(), where, "weighting", f"must be one of {list_weightings()}, got {self.weighting.name!r}")
        from .objectives import list_objectives

        _check(self.objective.name in list_objectives(), where, "objective", f"must be one of {list_objectives()}, got {self.objective.name!r}")
        _check(len(self.tasks) >= 1, where, "tasks", "must list at least one task")
        seen = set()
        for i, t in enumerate(self.tasks):
            k = f"tasks[{i}]"
            _check(bool(t.name), where, f"{k}.name", "is required (IVF, MFF or MEF)")
            _check(t.name not in seen, where, f"{k}.name", f"duplicates task {t.name!r}")
            seen.add(t.name)
            _check(len(t.datasets) >= 1, where, f"{k}.datasets", "must list at least one dataset")
            for j, d in enumerate(t.datasets):
                _check(isinstance(d, dict), where, f"{k}.datasets[{j}]", "must be a mapping")
                _check("type" in d, where, f"{k}.datasets[{j}].type", "is required (folder or synthetic)")
        return self

    def task_names(self) -> List[str]:
        return [t.name for t in self.tasks]

    def to_dict(self) -> Dict[str, Any]:
        """Plain, YAML-able dict (tuples as lists) that :func:`from_dict` reads back."""
        return _plain(asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _check(ok: bool, where: str, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{where}: {key} {msg}")


# ---------------------------------------------------------------------- parsing
def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Convert a YAML value to the annotated type ``tp`` or raise a ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, where)
    if is_dataclass(tp):
        if isinstance(value, str) and tp in (WeightingConfig, ObjectiveConfig):
            return tp(name=value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        if tp in (WeightingConfig, ObjectiveConfig):  # {name: famo, lr: ...} -> params
            value = dict(value)
            name = value.pop("name", tp().name)
            params = value.pop("params", {}) or {}
            return tp(name=_coerce(name, str, f"{key}.name", where), params={**params, **value})
        return _from_mapping(tp, value, key, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e-5" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
        return value
    if origin in (tuple, Tuple):
        if not isinstance(value, (list, tuple)) or (args and args[-1] is not Ellipsis and len(value) != len(args)):
            raise ConfigError(f"{where}: {key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, args[i] if args[-1] is not Ellipsis else args[0], f"{key}[{i}]", where) for i, v in enumerate(value))
    if origin in (list, List):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value)] if args else list(value)
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping, got {value!r}")
        return copy.deepcopy(value)
    if tp is Any:
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # pragma: no cover


def _from_mapping(cls: Any, data: Dict[str, Any], prefix: str, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        k = unknown[0]
        full = f"{prefix}.{k}" if prefix else str(k)
        raise ConfigError(f"{where}: unknown key {full!r}; valid keys: {', '.join(names)}")
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            full = f"{prefix}.{f.name}" if prefix else f.name
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], full, where)
    return cls(**kwargs)


def merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    """Recursive merge of mappings (``override`` wins; non-mappings are replaced)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def key_value(text: str, form: str = "KEY=VALUE") -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value read as a YAML scalar (``5`` an int, ``flow`` a
    string, ``[1, 2]`` a list): the ``--set`` items of ``unifuse train`` and the options of report
    model specs. Raises :class:`ConfigError` (``"'x' is not KEY=VALUE"``, ``form`` naming the syntax)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{text!r} is not {form}")
    try:
        return key.strip(), yaml.safe_load(value.strip())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key.strip()}: value is not valid YAML ({exc})") from None


def set_dotted(data: Dict[str, Any], dotted: str, value: Any) -> None:
    """``set_dotted(d, "model.drop_path_rate", 0.0)``; intermediate mappings are created."""
    keys = dotted.split(".")
    cur = data
    for k in keys[:-1]:
        if not isinstance(cur.get(k), dict):
            cur[k] = {}
        cur = cur[k]
    cur[keys[-1]] = value


def read_yaml(path: str | os.PathLike, _seen: Optional[set] = None) -> Dict[str, Any]:
    """Read a config mapping, following ``base:`` chains."""
    p = Path(path)
    seen = set() if _seen is None else _seen
    rp = p.resolve()
    if rp in seen:
        raise ConfigError(f"{p}: circular 'base' chain")
    seen.add(rp)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config ({exc.strerror or exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config must be a mapping of keys to values")
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{p}: base must be a file name, got {base!r}")
        data = merge(read_yaml(p.parent / base, seen), data)
    return data


def from_dict(data: Dict[str, Any], where: str = "config") -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a plain mapping."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a config must be a mapping")
    return _from_mapping(TrainConfig, data, "", where).validate(where)


def load_config(path: str | os.PathLike, overrides: Optional[Dict[str, Any]] = None) -> TrainConfig:
    """Read ``path`` (with its ``base`` chain), apply dotted ``overrides`` and validate.

    A relative ``data_root`` is made absolute against the repository root (the nearest
    folder above the config file holding ``pyproject.toml``), or the working directory.
    """
    data = read_yaml(path)
    for k, v in (overrides or {}).items():
        set_dotted(data, k, v)
    cfg = from_dict(data, where=str(path))
    cfg.data_root = str(resolve_data_root(cfg.data_root, Path(path)))
    return cfg


def project_root(start: Path) -> Optional[Path]:
    for d in [start.resolve(), *start.resolve().parents]:
        if (d / "pyproject.toml").is_file():
            return d
    return None


def resolve_data_root(data_root: str, config_path: Optional[Path] = None) -> Path:
    p = Path(os.path.expanduser(data_root))
    if p.is_absolute():
        return p
    root = project_root(config_path.parent) if config_path is not None else None
    return ((root or Path.cwd()) / p).resolve()


def dataset_specs(cfg: TrainConfig, task: TaskConfig) -> List[Dict[str, Any]]:
    """The task's dataset specs with ``root`` made absolute and ``task``/``crop`` filled in."""
    out = []
    for d in task.datasets:
        d = dict(d)
        if "root" in d and d["root"] is not None:
            r = Path(os.path.expanduser(str(d["root"])))
            d["root"] = str(r if r.is_absolute() else Path(cfg.data_root) / r)
        d.setdefault("task", task.name)
        d.setdefault("crop", cfg.crop_size)
        out.append(d)
    return out


__all__ = [
    "TrainConfig", "TaskConfig", "OptimConfig", "WeightingConfig", "ObjectiveConfig", "load_config", "from_dict", "read_yaml",
    "merge", "set_dotted", "resolve_data_root", "dataset_specs", "DEFAULT_DATA_ROOT",
]
