"""Argument helpers shared by CLI sub-commands."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..io import CHROMA_RULES
from ..models import PRECISIONS


def add_model_args(p: argparse.ArgumentParser, default_model: str = "tita") -> None:
    p.add_argument("--model", default=default_model, help=f"model name (see `unifuse models`; default {default_model})")
    p.add_argument("--weights", default=None, help="weights file (.safetensors, or an official .pth); default: shipped weights")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    p.add_argument("--precision", default="fp32", choices=sorted(PRECISIONS), help="internal precision (default fp32)")


def add_fuse_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--color", "--colour", dest="color", default="weighted", choices=CHROMA_RULES,
                   help="chroma rule: weighted (official |c-128| rule, default), from-a, from-b, gray")
    p.add_argument("--tile", type=int, default=None,
                   help="tile size in pixels for large images (default: auto above 1024x1024; 0 = never tile)")
    p.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels (default 64)")
    p.add_argument("--resize-to", choices=("a", "b"), default=None,
                   help="resize the other source to this one's size when sizes differ (default: error)")


def model_call_flags() -> dict[str, dict]:
    """Command-line flags of the registered models' forward options.

    A model class (``factory.model_class``) lists the keyword arguments its ``forward``
    takes beyond the two sources in ``call_options`` and may describe each as a flag in
    ``call_option_flags = {"task": {"help": ..., "type": ...}}`` (argparse keywords). The
    flags are collected from every registered model, so a model registered from outside
    gets its flags too. Returns ``{name: argparse keywords}`` with the models that take
    each flag appended to its help.
    """
    from ..models import MODELS, _ensure_builtin

    _ensure_builtin()
    flags: dict[str, dict] = {}
    users: dict[str, list[str]] = {}
    for entry in MODELS:
        cls = getattr(entry.factory, "model_class", None)
        for name, kw in getattr(cls, "call_option_flags", {}).items():
            flags.setdefault(name, dict(kw))
            users.setdefault(name, []).append(entry.name)
    for name, kw in flags.items():
        kw["help"] = f"{kw.get('help', '')} (models: {', '.join(users[name])})".strip()
    return flags


def add_model_call_args(p: argparse.ArgumentParser) -> None:
    """Add the registered models' forward options (:func:`model_call_flags`) to ``p``.

    Every flag defaults to ``None`` (not given) and reaches the model only when given;
    ``Fuser`` refuses, in one line, a flag the chosen model does not take.
    """
    flags = model_call_flags()
    if not flags:
        return
    g = p.add_argument_group("model options", "passed to the model's forward; only the models named take them")
    for name, kw in flags.items():
        g.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **kw)


def model_call_options(args: argparse.Namespace) -> dict:
    """The model forward options given on the command line (``None`` = not given)."""
    return {n: getattr(args, n) for n in model_call_flags() if getattr(args, n, None) is not None}


def is_folder_mode(args: argparse.Namespace) -> bool:
    """Whether ``args`` ask for folder mode (``--a DIR --b DIR``) rather than one pair (two ``sources``).

    Raises:
        ConfigError: both or neither given, one folder only, or not exactly two images.
    """
    batch = args.dir_a is not None or args.dir_b is not None
    if batch and args.sources:
        raise ConfigError("give either two images or --a DIR --b DIR, not both")
    if batch and (args.dir_a is None or args.dir_b is None):
        raise ConfigError("folder mode needs both --a DIR and --b DIR")
    if not batch and len(args.sources) != 2:
        raise ConfigError(f"expected two source images, got {len(args.sources)}")
    return batch


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; on a busy machine 1 is often fastest)")


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's intra-op thread count from ``--threads`` (if given)."""
    n = getattr(args, "threads", None)
    if n is None:
        return
    if n < 1:
        raise ConfigError(f"--threads must be a positive integer, got {n}")
    import torch

    torch.set_num_threads(n)
